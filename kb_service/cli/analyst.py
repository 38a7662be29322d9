"""`kb report` and `kb flags`: what analysts and editors read from the usage log."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from kb_service.cli.common import (
    app,
    fail,
    settings_from,
)


@app.command()
def report(
    since: Annotated[str | None, typer.Option("--since", help="YYYY-MM-DD")] = None,
    until: Annotated[str | None, typer.Option("--until", help="YYYY-MM-DD")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, csv or json")] = "html",
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("reports"),
    log_db: Annotated[
        str | None, typer.Option("--log-db", help="usage log: SQLite file or postgresql:// URL (KB_LOG_DB)")
    ] = None,
) -> None:
    """Analyst reports from the usage log: frequency, article performance, content gaps."""
    from kb_service.reports.build import make_period
    from kb_service.reports.command import (
        ReportLogError,
        check_log_file,
        load_report_embedder,
        run_report_command,
    )

    if fmt not in ("html", "csv", "json"):
        raise typer.BadParameter("--format must be html, csv or json")
    settings = settings_from(log_db=log_db)
    try:
        check_log_file(settings.log_db)  # before loading a model for nothing
        make_period(since, until)
        embedder = load_report_embedder(settings, lambda m: print(m, file=sys.stderr))
        paths = run_report_command(settings, since, until, fmt, out, embedder=embedder)
    except ReportLogError as exc:
        raise fail(str(exc), 2) from exc
    except ValueError as exc:  # bad or inverted dates
        raise typer.BadParameter(str(exc)) from exc
    for path in paths:
        print(path)


@app.command()
def flags(
    article: Annotated[str | None, typer.Option("--article", help="only this article id")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="at most this many flags (1–1000)")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    log_db: Annotated[
        str | None, typer.Option("--log-db", help="usage log: SQLite file or postgresql:// URL (KB_LOG_DB)")
    ] = None,
) -> None:
    """Editors' queue: articles agents flagged as 内容有误 / 已过时, newest first."""
    from kb_service.assist.flags import flag_dict, still_open
    from kb_service.content.articles import load_articles
    from kb_service.usage_log.store import log_exists, open_log_store

    settings = settings_from(log_db=log_db)
    if not log_exists(settings.log_db):
        raise fail(f"no usage log at {settings.log_db}")
    articles_dir = Path(settings.articles_dir)
    current = {a.id: a for a in load_articles(articles_dir).articles} if articles_dir.is_dir() else {}
    store = open_log_store(settings.log_db)
    try:
        rows = [flag_dict(f, current.get) for f in store.list_flags(article, limit)]
    finally:
        store.close()
    for row in rows:
        if as_json:
            print(json.dumps(row, ensure_ascii=False))
            continue
        now = "deleted" if row["current_version"] is None else f"now v{row['current_version']}"
        state = "open" if still_open(row) else "edited since"
        print(f"#{row['id']} {row['article_id']} v{row['article_version']} ({now}, {state}) "
              f"{row['reason_label']}: {row['comment'] or ''}".rstrip())
    if not as_json:
        print(f"{len(rows)} flags")

if __name__ == "__main__":
    app()
