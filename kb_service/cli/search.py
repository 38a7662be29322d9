"""`kb search` and `kb explain`: what agents would see, and why."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from kb_service.cli.common import (
    IndexOpt,
    ModelOpt,
    RuntimeOpt,
    app,
    fail,
    open_engine,
    settings_from,
)
from kb_service.models import CATEGORIES


def _print_human(response: dict) -> None:
    state = "confident" if response["confident"] else "NOT confident: 知识库中没有找到可靠答案"
    print(f"「{response['query']}」 — {state} (p={response.get('confidence', 0):.2f})")
    if response.get("not_covered"):
        print(f"   近似知识库未收录的问题：{response['not_covered']}")
    for rank, hit in enumerate(response["hits"], start=1):
        badge = CATEGORIES.get(hit["category"], hit["category"])
        why = "nearest section question" if hit.get("via_section_question") else f"{hit['score']:.4f}"
        print(f"\n{rank}. [{badge}] {hit['title']} › {hit['heading']}  ({hit['article_id']} v{hit['version']}, {why})")
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
    settings = settings_from(index_dir=index_dir, embedding_model=model, embedding_runtime=runtime)
    engine = open_engine(settings)
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
        raise fail(f"--mode must be hybrid, lexical or semantic, not {mode!r}", 2)
    engine = open_engine(settings_from())
    try:
        reading, questions = explain_query(engine, query, top_k, mode)
    except QueryError as exc:
        raise fail(str(exc), 2) from exc
    if as_json:
        print(json.dumps({"reading": reading, "questions": [asdict(q) for q in questions]}, ensure_ascii=False))
    else:
        print(render(reading, questions, engine.confidence[mode].bias))
