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
    from kb_service.index.store import current_generation, read_manifest

    generation = current_generation(Path(settings.index_dir)) if getattr(settings, "index_dir", None) else None
    if generation is not None:
        entries = read_manifest(generation).articles
        return {aid: {"title": e.title, "category": e.category, "version": e.version} for aid, e in entries.items()}
    catalog: dict[str, dict[str, Any]] = {}
    articles_dir = Path(settings.articles_dir)
    if articles_dir.is_dir():
        from kb_service.content.articles import load_articles

        for article in load_articles(articles_dir).articles:
            catalog[article.id] = {"title": article.title, "category": article.category, "version": article.version}
    return catalog


def load_report_embedder(settings: Any, echo: Callable[[str], None] | None = None) -> Any:
    """The search engine's embedder for gap topics, or None (the report then says it used bigrams)."""
    from kb_service.index.embedding import load_embedder

    try:
        return load_embedder(settings.embedding_model, settings.embedding_runtime,
                             Path(settings.index_dir) / "models", settings.query_embedding_threads())
    except Exception as exc:  # noqa: BLE001 - any model problem only downgrades the grouping
        if echo:
            echo(f"gap topics grouped by character bigrams: embedding model unavailable ({type(exc).__name__})")
        return None


def report_vector_cache(settings: Any) -> Path | None:
    """Where gap-query vectors are kept between reports: beside the index's passage-vector cache."""
    return Path(settings.index_dir) / "cache" if getattr(settings, "index_dir", None) else None


def load_report_lexicon(settings: Any) -> Any:
    from kb_service.content.lexicon import Lexicon, load_lexicon

    path = Path(settings.lexicon_path) if getattr(settings, "lexicon_path", None) else None
    return load_lexicon(path) if path and path.exists() else Lexicon()


class ReportLogError(RuntimeError):
    """The usage log named by --log-db / KB_LOG_DB is missing or is not a usage log.

    A typo in the path must stop the command: an empty report written with exit status 0 reads
    as "nobody searched", which is wrong and silent.
    """


def check_log_file(log: Path | str) -> None:
    """Raise ReportLogError unless `log` is an SQLite file holding the usage log's queries table, or
    a `postgresql://` URL of a database that holds it (the message never shows the password)."""
    import sqlite3

    from kb_service.usage_log.postgres import is_postgres_url

    if is_postgres_url(log):
        _check_postgres_log(str(log))
        return
    path = Path(log)
    if not path.exists():
        raise ReportLogError(f"no usage log at {path} (check --log-db or KB_LOG_DB)")
    if not path.is_file():
        raise ReportLogError(f"{path} is not a file (--log-db must name the SQLite usage log)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queries'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ReportLogError(f"{path} is not a usage log ({exc})") from exc
    if not found:
        raise ReportLogError(f"{path} is not a usage log (it has no queries table)")


def _check_postgres_log(url: str) -> None:
    import psycopg

    from kb_service.usage_log.postgres import redact_url

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            found = conn.execute("SELECT to_regclass('queries')").fetchone()[0]
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReportLogError(f"cannot read the usage log at {redact_url(url)}: {reason}") from exc
    if found is None:
        raise ReportLogError(f"{redact_url(url)} is not a usage log (it has no queries table)")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def run_report_command(
    settings: Any,
    since: str | None,
    until: str | None,
    fmt: str = "html",
    out_dir: Path | str | None = None,
    echo: Callable[[str], None] = _stderr,
    embedder: Any = None,
) -> list[Path]:
    """Build the report for [since, until] from settings.log_db and write it as html, csv or json.

    Returns the files written (report.html / report.json / one CSV per table) under out_dir
    (default ./reports). Raises PeriodError (a ValueError) for a bad date and ValueError for an
    unknown format, ReportLogError when the log file is missing or not a log (nothing is
    written then); an empty period still writes a report that says 所选时间段内没有日志.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    try:
        make_period(since, until)  # a bad date fails here, before anything is read or written
    except OverflowError as exc:  # e.g. --until 9999-12-31: the day after does not exist
        raise PeriodError(f"date out of range (0001-01-02 to 9999-12-30): since={since!r} until={until!r}") from exc
    check_log_file(settings.log_db)
    out = Path(out_dir) if out_dir is not None else Path.cwd() / "reports"
    report = build_report(settings.log_db, since, until, article_catalog=load_article_catalog(settings),
                          embedder=embedder, lexicon=load_report_lexicon(settings),
                          vector_cache_dir=report_vector_cache(settings))
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
    echo(f"{report.summary.queries:,} queries in {report.period_label or report.period.label}; wrote {', '.join(str(p) for p in paths)}")
    return paths
