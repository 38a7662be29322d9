"""`kb` command line: a thin layer over the package's functions."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from kb_service.editorial.commands import questions_app
from kb_service.models import CATEGORIES
from kb_service.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="车险客服知识库 kb_service")
app.add_typer(questions_app, name="questions")  # kb questions list|adopt (editorial/commands.py)
console = Console(stderr=True)

ArticlesOpt = Annotated[Path | None, typer.Option("--articles", help="articles folder (KB_ARTICLES_DIR)")]
IndexOpt = Annotated[Path | None, typer.Option("--index-dir", help="index folder (KB_INDEX_DIR)")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="embedding model (KB_EMBEDDING_MODEL)")]
RuntimeOpt = Annotated[str | None, typer.Option("--runtime", help="onnx-int8 or torch (KB_EMBEDDING_RUNTIME)")]


def _settings(**overrides: object) -> Settings:
    return Settings().with_overrides(**overrides)


def _fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr and a non-zero exit: what a script or an editor can act on."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _open_engine(settings: Settings):  # type: ignore[no-untyped-def]
    """The search engine, or one line saying why the index cannot be served (none built, damaged)."""
    from kb_service.index.integrity import IndexDamagedError
    from kb_service.search.engine import IndexNotBuiltError, SearchEngine

    try:
        return SearchEngine.open(settings)
    except (IndexNotBuiltError, IndexDamagedError) as exc:
        raise _fail(str(exc)) from exc


def _require_folder(path: Path, what: str) -> None:
    if not Path(path).is_dir():
        raise _fail(f"no {what} at {path}", 2)


@app.command()
def check(
    path: Annotated[Path | None, typer.Argument(help="articles folder")] = None,
) -> None:
    """Validate every article (and the lexicon); exit 1 on any problem."""
    from kb_service.content.validation import check_knowledge_base

    settings = _settings(articles_dir=path)
    _require_folder(settings.articles_dir, "articles folder")
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
          f"{asked} 相似问, {len(report.notes)} of {sections} sections without"
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

    settings = _settings(articles_dir=articles, index_dir=index_dir, embedding_model=model, embedding_runtime=runtime)
    _require_folder(settings.articles_dir, "articles folder")
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
            raise _fail(str(exc)) from None
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
    if report.problems:  # the rest went live; the broken articles kept their last good version
        raise _fail(f"{len(report.problems)} problems: broken articles were not updated (see above)")


def _print_human(response: dict) -> None:
    state = "confident" if response["confident"] else "NOT confident: 知识库中没有找到可靠答案"
    print(f"「{response['query']}」 — {state} (p={response.get('confidence', 0):.2f})")
    for rank, hit in enumerate(response["hits"], start=1):
        badge = CATEGORIES.get(hit["category"], hit["category"])
        print(f"\n{rank}. [{badge}] {hit['title']} › {hit['heading']}  ({hit['article_id']} v{hit['version']}, {hit['score']:.4f})")
        text = hit["text"]
        if hit["highlights"]:
            pattern = "|".join(re.escape(t) for t in sorted(hit["highlights"], key=len, reverse=True))
            text = re.sub(pattern, lambda m: f"【{m.group(0)}】", text)
        print("   " + text.replace("\n", "\n   "))


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="query text")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="number of articles shown")] = 5,
    category: Annotated[str | None, typer.Option("--category", help=f"only this category: {', '.join(CATEGORIES)}")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="only articles with this tag (repeat: all must match)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of text")] = False,
    queries_file: Annotated[Path | None, typer.Option("--queries-file", help="one query per line")] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, lexical or semantic")] = "hybrid",
    index_dir: IndexOpt = None,
    model: ModelOpt = None,
    runtime: RuntimeOpt = None,
) -> None:
    """Search the knowledge base (loads the model and indexes once for all queries)."""
    from kb_service.search.engine import QueryError

    if category and category not in CATEGORIES:
        raise typer.BadParameter(f"unknown category {category!r}; one of {', '.join(CATEGORIES)}")
    if (query is None) == (queries_file is None):
        raise typer.BadParameter("give a query or --queries-file, not both")
    settings = _settings(index_dir=index_dir, embedding_model=model, embedding_runtime=runtime)
    engine = _open_engine(settings)
    queries = [query] if query is not None else [q.rstrip("\n") for q in queries_file.read_text(encoding="utf-8").splitlines()]
    failed = False
    for text in queries:
        if queries_file is not None and not text.strip():
            continue
        try:
            response = engine.search(text, k=top_k, category=category, tags=tag, mode=mode).to_dict()
        except QueryError as exc:
            failed = True
            response = {"query": text, "confident": False, "hits": [], "error": str(exc)}
        if as_json:
            print(json.dumps(response, ensure_ascii=False))
        elif "error" in response:
            print(f"error: {response['error']}", file=sys.stderr)
        else:
            _print_human(response)
    if failed and query is not None:
        raise typer.Exit(2)


DEFAULT_MODELS = "m3e-small,m3e-small:torch,use-multilingual"


DEFAULT_FACT_SETS = ("../shared/eval/dev.jsonl", "../shared/eval/dev-styles.jsonl", "eval/blind/selection.jsonl",
                     "eval/blind/report.jsonl")


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

    settings = _settings()
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
    """Fit the confidence model on our own set plus the blind selection half, by style
    (never on the dev sets or the blind report half)."""
    from kb_service.evaluation.runner import calibrate as fit
    from kb_service.evaluation.runner import load_dev_set, load_own_set

    settings = _settings()
    paths = pool if pool is not None else [Path("eval/blind/selection.jsonl")]
    queries = load_own_set(own) + [q for path in paths if path.exists() for q in load_dev_set(path)]
    label = f"{len(queries)} queries: {own}, {', '.join(map(str, paths))}"
    for line in fit(settings, queries, [m.strip() for m in models.split(",") if m.strip()], max_false_rejection, label):
        print(line)


@app.command()
def explain(
    query: Annotated[str, typer.Argument(help="query text")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="number of articles shown")] = 5,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, lexical or semantic")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of text")] = False,
) -> None:
    """Why each hit ranks where it does: how the query was read, each hit's lexical, semantic,
    相似问 and coverage parts, and each confidence feature's contribution."""
    from dataclasses import asdict

    from kb_service.search.engine import QueryError
    from kb_service.search.explain import explain as explain_query
    from kb_service.search.explain import render

    if mode not in ("hybrid", "lexical", "semantic"):
        raise _fail(f"--mode must be hybrid, lexical or semantic, not {mode!r}", 2)
    engine = _open_engine(_settings())
    try:
        reading, questions = explain_query(engine, query, top_k, mode)
    except QueryError as exc:
        raise _fail(str(exc), 2) from exc
    if as_json:
        print(json.dumps({"reading": reading, "questions": [asdict(q) for q in questions]}, ensure_ascii=False))
    else:
        print(render(reading, questions, engine.confidence[mode].bias))


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

    settings = _settings(log_db=log_db)
    _require_folder(settings.articles_dir, "articles folder")
    labelled = load_own_set(own) if own.exists() else []
    for path in sets or [Path(p) for p in DEFAULT_FACT_SETS]:
        if path.exists():
            labelled += load_dev_set(path)
        elif sets:
            raise _fail(f"no such query set: {path}", 2)
    queries = [ReplayQuery(q.query, q) for q in labelled] + logged_queries(settings.log_db, log_queries)
    try:
        report = run_impact(settings, base, queries)
    except ValueError as exc:  # a bad ref, or articles outside a git checkout
        raise _fail(str(exc), 2) from exc
    for change in report.changes:
        print(change.describe())
    better = sum(c.verdict == "better" for c in report.changes)
    print(f"replayed {report.replayed} queries ({len(labelled)} labelled) against {base}: "
          f"{len(report.worse)} worse, {better} better, {len(report.changes) - len(report.worse) - better} changed")
    if report.worse:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="address to listen on (KB_HOST); beyond 127.0.0.1 only with API keys")] = None,
    port: Annotated[int | None, typer.Option("--port", help="port (KB_PORT)")] = None,
    workers: Annotated[int, typer.Option("--workers", help="worker processes (about one per core)")] = 1,
    watch: Annotated[bool, typer.Option("--watch", help="re-index and reload when articles/ changes")] = False,
    index_dir: IndexOpt = None,
) -> None:
    """Start the search API and the side panel (http://127.0.0.1:8000/)."""
    from kb_service.web.auth import UnsafeBindError
    from kb_service.web.serve import serve as run_server

    settings = _settings(host=host, port=port, index_dir=index_dir)
    try:
        run_server(settings, settings.host, settings.port, workers=workers, watch=watch)
    except UnsafeBindError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


@app.command()
def reload(
    url: Annotated[str | None, typer.Option("--url", help="server base URL")] = None,
    key: Annotated[str | None, typer.Option("--key", help="editor API key (KB_EDITOR_KEY)")] = None,
) -> None:
    """Ask a running server to switch to the newest built index (after `kb index`)."""
    import httpx

    settings = _settings()
    base = url or f"http://{settings.host}:{settings.port}"
    key = key or settings.editor_key
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.post(f"{base}/api/admin/reload", headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        raise _fail(f"no server answered at {base} ({type(exc).__name__}): start it with `kb serve`") from exc
    print(response.text)
    if response.status_code >= 400:
        raise typer.Exit(1)


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
    settings = _settings(log_db=log_db)
    try:
        check_log_file(settings.log_db)  # before loading a model for nothing
        make_period(since, until)
        embedder = load_report_embedder(settings, lambda m: print(m, file=sys.stderr))
        paths = run_report_command(settings, since, until, fmt, out, embedder=embedder)
    except ReportLogError as exc:
        raise _fail(str(exc), 2) from exc
    except ValueError as exc:  # bad or inverted dates
        raise typer.BadParameter(str(exc)) from exc
    for path in paths:
        print(path)


@app.command()
def flags(
    article: Annotated[str | None, typer.Option("--article", help="only this article id")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    log_db: Annotated[
        str | None, typer.Option("--log-db", help="usage log: SQLite file or postgresql:// URL (KB_LOG_DB)")
    ] = None,
) -> None:
    """Editors' queue: articles agents flagged as 内容有误 / 已过时, newest first."""
    from kb_service.assist.flags import flag_dict, still_open
    from kb_service.content.articles import load_articles
    from kb_service.usage_log.postgres import is_postgres_url
    from kb_service.usage_log.store import open_log_store

    settings = _settings(log_db=log_db)
    if not is_postgres_url(settings.log_db) and not Path(settings.log_db).exists():
        raise _fail(f"no usage log at {settings.log_db}")
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
