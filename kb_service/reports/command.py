"""`kb report`: everything the command does, so cli.py only parses flags and calls this."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from kb_service.reports.build import PeriodError, build_report, make_period
from kb_service.reports.export import report_to_json, write_csv
from kb_service.reports.html import render_html

ReportFormat = Literal["html", "csv", "json"]
FORMATS: tuple[str, ...] = ("html", "csv", "json")


def load_article_catalog(settings: Any) -> dict[str, dict[str, Any]]:
    """article id → {title, category, version}: from the serving index if built, else the articles folder.

    The index's list is what agents could actually be shown, so it is preferred; the folder is
    the fallback before the first `kb index`.
    """
    from kb_service.index.builder import current_generation, read_manifest

    generation = current_generation(Path(settings.index_dir)) if getattr(settings, "index_dir", None) else None
    if generation is not None:
        entries = read_manifest(generation).get("articles", {})
        return {aid: {"title": e.get("title", aid), "category": e.get("category"), "version": e.get("version")}
                for aid, e in entries.items()}
    catalog: dict[str, dict[str, Any]] = {}
    articles_dir = Path(settings.articles_dir)
    if articles_dir.is_dir():
        from kb_service.content.articles import load_articles

        for article in load_articles(articles_dir).articles:
            catalog[article.id] = {"title": article.title, "category": article.category, "version": article.version}
    return catalog


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def run_report_command(
    settings: Any,
    since: str | None,
    until: str | None,
    fmt: str = "html",
    out_dir: Path | str | None = None,
    echo: Callable[[str], None] = _stderr,
) -> list[Path]:
    """Build the report for [since, until] from settings.log_db and write it as html, csv or json.

    Returns the files written (report.html / report.json / one CSV per table) under out_dir
    (default ./reports). Raises PeriodError (a ValueError) for a bad date and ValueError for an
    unknown format; an empty period still writes a report that says 所选时间段内没有日志.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    try:
        make_period(since, until)  # a bad date fails here, before anything is read or written
    except OverflowError as exc:  # e.g. --until 9999-12-31: the day after does not exist
        raise PeriodError(f"date out of range (0001-01-02 to 9999-12-30): since={since!r} until={until!r}") from exc
    out = Path(out_dir) if out_dir is not None else Path.cwd() / "reports"
    report = build_report(settings.log_db, since, until, article_catalog=load_article_catalog(settings))
    if report.empty:
        echo(report.message or "所选时间段内没有日志")
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        paths = write_csv(report, out)
    elif fmt == "json":
        path = out / "report.json"
        path.write_text(json.dumps(report_to_json(report), ensure_ascii=False, indent=1), encoding="utf-8")
        paths = [path]
    else:
        path = out / "report.html"
        path.write_text(render_html(report), encoding="utf-8")
        paths = [path]
    echo(f"{report.summary.queries:,} queries in {report.period.label}; wrote {', '.join(str(p) for p in paths)}")
    return paths
