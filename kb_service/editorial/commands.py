"""`kb questions list|adopt`: proposed 相似问 from the usage log, and adopting one into an article."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from kb_service.settings import Settings

questions_app = typer.Typer(no_args_is_help=True, help="相似问 proposed from the usage log; adopt one into an article")

SinceOpt = Annotated[str | None, typer.Option("--since", help="YYYY-MM-DD")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="YYYY-MM-DD")]
LogOpt = Annotated[str | None, typer.Option("--log-db", help="usage log: SQLite file or postgresql:// URL (KB_LOG_DB)")]
ArticlesOpt = Annotated[Path | None, typer.Option("--articles", help="articles folder (KB_ARTICLES_DIR)")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _proposals(settings: Settings, since: str | None, until: str | None):  # type: ignore[no-untyped-def]
    from kb_service.editorial.proposals import find_proposals, load_current_articles
    from kb_service.reports.build import PeriodError, make_period
    from kb_service.reports.command import ReportLogError, check_log_file

    try:
        check_log_file(settings.log_db)
        period = make_period(since, until)
    except (ReportLogError, PeriodError) as exc:
        raise _fail(str(exc), 2) from exc
    if not Path(settings.articles_dir).is_dir():
        raise _fail(f"no articles folder at {settings.articles_dir}", 2)
    from kb_service.reports.command import load_report_embedder

    embedder = load_report_embedder(settings, lambda m: print(m, file=sys.stderr))
    return find_proposals(settings.log_db, period, load_current_articles(settings.articles_dir),
                          embedder=embedder, vector_cache=_cache_file(settings, embedder))


def _cache_file(settings: Settings, embedder: object) -> Path | None:
    from kb_service.reports.command import report_vector_cache
    from kb_service.reports.gap_topics import vector_cache_path

    folder = report_vector_cache(settings)
    return vector_cache_path(folder, embedder) if folder and embedder is not None else None  # type: ignore[arg-type]


@questions_app.command("list")
def list_proposals(since: SinceOpt = None, until: UntilOpt = None, log_db: LogOpt = None,
                   articles: ArticlesOpt = None,
                   as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False) -> None:
    """Real queries that reached an article only the hard way, proposed as its 相似问 (most-backed first)."""
    settings = Settings().with_overrides(log_db=log_db, articles_dir=articles)
    found = _proposals(settings, since, until)
    for p in found:
        if as_json:
            print(json.dumps(asdict(p), ensure_ascii=False))
        else:
            print(f"{p.proposal_id}  {p.queries:>4}×  {p.text}  →  {p.article_id} §{p.section}"
                  f"  (opened then resolved {p.in_query}, after a gap {p.after_gap})")
    if not as_json:
        print(f"{len(found)} proposals", file=sys.stderr)


@questions_app.command("adopt")
def adopt(
    what: Annotated[str, typer.Argument(help="a proposal id (p-…) from `kb questions list`, or the question text")],
    article: Annotated[str | None, typer.Option("--article", help="article id (needed for a question text)")] = None,
    section: Annotated[str | None, typer.Option("--section", help="section heading (default: the proposal's)")] = None,
    since: SinceOpt = None, until: UntilOpt = None, log_db: LogOpt = None, articles: ArticlesOpt = None,
) -> None:
    """Write a 相似问 into the article's front matter (version bumped); review and commit the diff."""
    from kb_service.editorial.adopt import AdoptError
    from kb_service.editorial.service import AdoptRequestError, adopt_proposal_or_text

    settings = Settings().with_overrides(log_db=log_db, articles_dir=articles)
    proposals = _proposals(settings, since, until) if what.startswith("p-") or (article and not section) else []
    try:
        result = adopt_proposal_or_text(settings.articles_dir, proposals, what, article, section)
    except (AdoptError, AdoptRequestError) as exc:
        raise _fail(str(exc)) from exc
    if not result.added:
        print(f"unchanged: {result.article_id} §{result.section} already has 「{result.question}」")
        return
    print(result.diff, end="")
    print(f"adopted 「{result.question}」 into {result.path} §{result.section} (version {result.version}); "
          "review the diff and commit it", file=sys.stderr)
