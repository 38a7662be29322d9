"""`kb eval`, `kb calibrate` and `kb impact`: measuring search before a change lands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kb_service.cli.common import (
    app,
    fail,
    require_folder,
    settings_from,
)

DEFAULT_MODELS = "m3e-small,m3e-small:torch,use-multilingual"


# The confidence model is fitted on these (with eval/queries.jsonl), never on the report half.
CONFIDENCE_POOL = ("eval/blind/selection.jsonl", "eval/blind/weak-styles-1.jsonl", "eval/blind/weak-styles-2.jsonl",
                   "eval/blind/selection-2.jsonl")
# Selection side: designs are decided on these. workplace-1 and the fresh out-of-scope sample are not
# fitted on: adding them to the pool measured neutral and worse held out (docs/evaluation.md,
# fifteenth and twenty-second sessions), so the pool stayed as it was.
SELECTION_SETS = (*CONFIDENCE_POOL, "eval/blind/workplace-1.jsonl", "eval/blind/out-of-scope-fresh.jsonl")
# Reported only: the report half, and the second workplace sample (measured fresh, then after the changes).
DEFAULT_FACT_SETS = ("../shared/eval/dev.jsonl", "../shared/eval/dev-styles.jsonl", *SELECTION_SETS,
                     "eval/blind/report.jsonl", "eval/blind/workplace-2.jsonl")


@app.command("eval")
def eval_command(
    own: Annotated[Path, typer.Option("--own", help="our article-labelled set")] = Path("eval/queries.jsonl"),
    sets: Annotated[list[Path] | None, typer.Option("--set", help="a fact-judged set (repeat); default: dev, "
                                                     "dev-styles and both blind halves, those that exist")] = None,
    models: Annotated[str, typer.Option("--models", help="comma-separated model[:runtime]")] = DEFAULT_MODELS,
    out: Annotated[Path | None, typer.Option("--out", help="also write the tables as Markdown")] = None,
    per_kind: Annotated[bool, typer.Option("--per-kind/--no-per-kind", help="a row per style (kind)")] = True,
) -> None:
    """Recall@1/3/5, MRR@10, rejection rates and wrong-section counts per set, design and style."""
    from kb_service.evaluation.runner import evaluate, load_dev_set, load_own_set, metrics_table

    settings = settings_from()
    named = {}
    if own.exists():
        named[f"own set ({own})"] = load_own_set(own)
    for path in sets or [Path(p) for p in DEFAULT_FACT_SETS]:
        if path.exists():
            named[f"{path.stem} ({path})"] = load_dev_set(path)
        elif sets:
            raise typer.BadParameter(f"no such query set: {path}")
    if not named:
        raise typer.BadParameter("no query set found: give --own and/or --set")
    results = evaluate(settings, named, [m.strip() for m in models.split(",") if m.strip()])
    text = "\n\n".join(f"### {name}\n\n{metrics_table(designs, per_kind)}" for name, designs in results.items())
    print(text)
    if out:
        out.write_text(text + "\n", encoding="utf-8")


@app.command()
def calibrate(
    own: Annotated[Path, typer.Option("--own", help="our article-labelled set")] = Path("eval/queries.jsonl"),
    pool: Annotated[list[Path] | None, typer.Option("--pool", help="fact-judged sets to fit on too (repeat)")] = None,
    models: Annotated[str, typer.Option("--models", help="comma-separated model[:runtime]; models: m3e-small, use-multilingual or a local folder; runtimes: onnx-int8, torch")] = DEFAULT_MODELS,
    max_false_rejection: Annotated[float, typer.Option(help="allowed share of answerable queries rejected")] = 0.03,
) -> None:
    """Fit the confidence model on our own set plus the blind selection side (the selection half
    and the weak-styles samples), by style (never on the dev sets or the blind report half)."""
    from kb_service.evaluation.runner import calibrate as fit
    from kb_service.evaluation.runner import load_dev_set, load_own_set

    settings = settings_from()
    paths = pool if pool is not None else [Path(p) for p in CONFIDENCE_POOL]
    queries = load_own_set(own) + [q for path in paths if path.exists() for q in load_dev_set(path)]
    label = f"{len(queries)} queries: {own}, {', '.join(map(str, paths))}"
    for line in fit(settings, queries, [m.strip() for m in models.split(",") if m.strip()], max_false_rejection, label):
        print(line)


@app.command()
def impact(
    base: Annotated[str, typer.Option("--base", help="git ref to compare the working tree's articles with")] = "HEAD",
    own: Annotated[Path, typer.Option("--own", help="article-labelled set to replay")] = Path("eval/queries.jsonl"),
    sets: Annotated[list[Path] | None, typer.Option("--set", help="fact-judged set to replay (repeat); default: "
                                                     "dev, dev-styles and both blind halves, those that exist")] = None,
    log_queries: Annotated[int, typer.Option("--log-queries", help="also replay this many of the most frequent "
                                             "logged queries (KB_LOG_DB)")] = 500,
    log_db: Annotated[str | None, typer.Option("--log-db", help="usage log: file or postgresql:// URL (KB_LOG_DB)")] = None,
) -> None:
    """What an article change does to search: queries whose top answer, section or confidence
    changes between --base and the working tree; exit 1 when a labelled query gets worse."""
    from kb_service.evaluation.impact import ReplayQuery, logged_queries, run_impact
    from kb_service.evaluation.runner import load_dev_set, load_own_set

    settings = settings_from(log_db=log_db)
    require_folder(settings.articles_dir, "articles folder")
    labelled = load_own_set(own) if own.exists() else []
    for path in sets or [Path(p) for p in DEFAULT_FACT_SETS]:
        if path.exists():
            labelled += load_dev_set(path)
        elif sets:
            raise fail(f"no such query set: {path}", 2)
    queries = [ReplayQuery(q.query, q) for q in labelled] + logged_queries(settings.log_db, log_queries)
    try:
        report = run_impact(settings, base, queries)
    except ValueError as exc:  # a bad ref, or articles outside a git checkout
        raise fail(str(exc), 2) from exc
    for change in report.changes:
        print(change.describe())
    better = sum(c.verdict == "better" for c in report.changes)
    print(f"replayed {report.replayed} queries ({len(labelled)} labelled) against {base}: "
          f"{len(report.worse)} worse, {better} better, {len(report.changes) - len(report.worse) - better} changed")
    if report.worse:
        raise typer.Exit(1)
