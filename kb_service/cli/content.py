"""`kb check` and `kb index`: the editors' commands over the articles folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from kb_service.cli.common import (
    ArticlesOpt,
    IndexOpt,
    ModelOpt,
    RuntimeOpt,
    app,
    console,
    fail,
    require_folder,
    settings_from,
)
from kb_service.settings import Settings


@app.command()
def check(
    path: Annotated[Path | None, typer.Argument(help="articles folder")] = None,
) -> None:
    """Validate every article (and the lexicon); exit 1 on any problem."""
    from kb_service.content.validation import check_knowledge_base

    settings = settings_from(articles_dir=path)
    require_folder(settings.articles_dir, "articles folder")
    report = check_knowledge_base(settings.articles_dir, settings)
    for problem in report.problems:
        print(problem)
    for note in report.notes:
        print(f"note: {note}")
    from kb_service.editorial.stale import review_due, warning_line

    overdue = review_due(settings.articles_dir)  # warnings only: an article past review still serves
    for item in overdue:
        print(warning_line(item))
    per_category: dict[str, int] = {}
    for passage in report.passages:
        per_category[passage.category] = per_category.get(passage.category, 0) + 1
    longest = max((len(p.text) for p in report.passages), default=0)
    summary = ", ".join(f"{c} {n}" for c, n in sorted(per_category.items()))
    sections = sum(len(a.sections) for a in report.articles)
    asked = sum(len(s.questions) for a in report.articles for s in a.sections)
    print(f"{len(report.articles)} articles, {len(report.passages)} passages ({summary}); longest passage {longest} chars; "
          f"{asked} 相似问, {len(report.unasked_sections)} of {sections} sections without"
          + (f"; {len(overdue)} articles due for review" if overdue else ""))
    if report.problems:
        print(f"{len(report.problems)} problems in {len(report.broken_paths) or 'the lexicon'} files")
        raise typer.Exit(1)
    print("ok")


@app.command()
def index(
    articles: ArticlesOpt = None,
    index_dir: IndexOpt = None,
    model: ModelOpt = None,
    runtime: RuntimeOpt = None,
    full: Annotated[bool, typer.Option("--full", help="rebuild everything")] = False,
    lock_timeout: Annotated[float | None, typer.Option("--lock-timeout", help="seconds to wait for another build "
                                                       "of this index (KB_BUILD_LOCK_TIMEOUT, default 600)")] = None,
) -> None:
    """Build or update the indexes (incremental; atomic switch when complete). A damaged index is rebuilt."""
    from kb_service.index.builder import build_and_merge
    from kb_service.index.store import BuildLockTimeout

    settings = settings_from(articles_dir=articles, index_dir=index_dir, embedding_model=model, embedding_runtime=runtime)
    require_folder(settings.articles_dir, "articles folder")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            report = build_and_merge(settings, full=full, progress=progress, lock_timeout=lock_timeout,
                                     on_live=lambda: console.print("many outdated rows: merging everything into "
                                                                   "one segment (vectors from the cache)"))
        except BuildLockTimeout as exc:
            raise fail(str(exc)) from None
    for line in report.repaired:
        print(f"{line.split(' — ')[0]}: rebuilt")
    if report.cleaned:
        print(f"removed leftovers of interrupted builds: {', '.join(report.cleaned)}")
    for problem in report.problems:
        print(problem)
    if report.kept_last_good:
        print(f"kept last good version of: {', '.join(report.kept_last_good)}")
    if report.unchanged:
        print(f"index {report.generation} is up to date ({report.articles} articles, {report.passages} passages)")
    else:
        kind = "full build" if report.full else ("incremental update, small segments merged" if report.merged else "incremental update")
        print(f"{kind} → {report.generation}: {report.articles} articles, {report.passages} passages; "
              f"added {len(report.added)}, changed {len(report.changed)}, removed {len(report.removed)}; "
              f"embedded {report.embedded} new texts (passages, 相似问) in {report.seconds:.1f}s")
    if settings.generation_store and report.generation:
        _publish(settings, report.generation)
    if report.problems:  # the rest went live; the broken articles kept their last good version
        raise fail(f"{len(report.problems)} problems: broken articles were not updated (see above)")


def _publish(settings: Settings, generation: str) -> None:
    """KB_GENERATION_STORE: every replica fetches what is published there (docs/operations.md)."""
    from kb_service.index.following import publish_and_announce
    from kb_service.index.integrity import IndexDamagedError
    from kb_service.index.publishing import GenerationStoreError

    try:
        published = publish_and_announce(settings, generation)
    except (GenerationStoreError, IndexDamagedError, OSError) as exc:
        raise fail(f"publishing {generation} failed: {exc}") from None
    print(f"published {generation} to {settings.generation_store}: {len(published.segments_copied)} segments copied, "
          f"{len(published.segments_present)} already there ({published.seconds:.1f}s)")
