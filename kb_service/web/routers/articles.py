"""GET /api/articles/{id}: the whole article as safe HTML; opening it from a search is logged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from kb_service.models import CATEGORIES
from kb_service.web.deps import AGENT, Engine, Store, known_article, query_logged
from kb_service.web.guards import HEAD_SCOPE_KEY
from kb_service.web.rendering import render_article_html
from kb_service.web.schemas import ERROR_RESPONSES, MAX_ID_CHARS, NOT_FOUND, ArticleOut

router = APIRouter(tags=["agent"], dependencies=AGENT, responses={**ERROR_RESPONSES, **NOT_FOUND})


@router.get("/api/articles/{article_id}", response_model=ArticleOut)
async def article(
    request: Request,
    engine: Engine,
    store: Store,
    article_id: str,
    query_id: Annotated[str | None, Query(max_length=MAX_ID_CHARS, description="logs an 'open' event")] = None,
) -> dict[str, Any]:
    """Full article. An unknown `query_id` does not block reading: the event is just not logged."""
    art = await run_in_threadpool(known_article, engine, article_id)
    recorded = False
    if query_id and not request.scope.get(HEAD_SCOPE_KEY) and await query_logged(request, query_id):
        await run_in_threadpool(store.record_event, query_id, art.id, "open")
        recorded = True
    html = await run_in_threadpool(render_article_html, art.markdown)
    return {
        "id": art.id,
        "title": art.title,
        "category": art.category,
        "category_label": CATEGORIES.get(art.category, art.category),
        "tags": list(art.tags),
        "aliases": list(art.aliases),
        "updated": str(art.updated),
        "version": art.version,
        "owner": art.owner,
        "markdown": art.markdown,
        "html": html,
        "open_recorded": recorded,
    }
