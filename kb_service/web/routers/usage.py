"""POST /api/events and /api/feedback: what agents did with a search's results."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from kb_service.web.deps import AGENT, Engine, Store, known_article, require_known_query
from kb_service.web.schemas import ERROR_RESPONSES, NOT_FOUND, EventIn, FeedbackIn, RecordedOut

router = APIRouter(tags=["agent"], dependencies=AGENT, responses={**ERROR_RESPONSES, **NOT_FOUND})


@router.post("/api/events", response_model=RecordedOut)
async def event(request: Request, engine: Engine, store: Store, body: EventIn) -> RecordedOut:
    """An agent opened an article or copied a script from it."""
    await require_known_query(request, body.query_id)

    def record() -> None:
        known_article(engine, body.article_id)
        store.record_event(body.query_id, body.article_id, body.type)

    await run_in_threadpool(record)
    return RecordedOut()


@router.post("/api/feedback", response_model=RecordedOut)
async def feedback(request: Request, engine: Engine, store: Store, body: FeedbackIn) -> RecordedOut:
    """Did an article (or, with article_id null, the search as a whole) resolve the customer's question?"""
    await require_known_query(request, body.query_id)

    def record() -> None:
        if body.article_id is not None:
            known_article(engine, body.article_id)
        comment = (body.comment or "").strip() or None  # never logged, only stored (masked)
        store.record_feedback(body.query_id, body.article_id, body.resolved, comment)

    await run_in_threadpool(record)
    return RecordedOut()
