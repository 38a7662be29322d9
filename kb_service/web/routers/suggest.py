"""POST /api/suggest: suggestions for the customer's open question(s) in a live conversation.

The chat tool (or the embedded panel on its behalf) sends the recent turns; the answer groups hits
per detected question, in /api/search's hit shape. Logged like a search, with source
'conversation', so suggestions count in the reports; the customer's text is masked when stored.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from kb_service.assist.conversation import Suggestions, parse_turns, suggest, suggestions_dict
from kb_service.models import CATEGORIES
from kb_service.usage_log.store import Impression, QueryLog
from kb_service.web.deps import AGENT, AgentId, Engine, SessionId, Store, stored_id
from kb_service.web.errors import log_failure, unprocessable
from kb_service.web.schemas import ERROR_RESPONSES, SuggestIn, SuggestOut

router = APIRouter(tags=["agent"], dependencies=AGENT, responses=ERROR_RESPONSES)


@router.post("/api/suggest", response_model=SuggestOut)
async def suggest_route(  # noqa: PLR0913 - FastAPI parameters
    request: Request, engine: Engine, store: Store, body: SuggestIn, agent_id: AgentId, session_id: SessionId,
) -> dict[str, Any]:
    """Suggestions for what the customer asked since the agent last spoke (see kb_service.assist)."""
    category = (body.category or "").strip() or None
    if category is not None and category not in CATEGORIES:
        raise unprocessable(f"未知分类 {category!r}，可选：{', '.join(CATEGORIES)}")
    try:
        turns = parse_turns(turn.model_dump() for turn in body.turns)
    except ValueError as exc:
        raise unprocessable(str(exc)) from exc
    started = time.perf_counter()
    try:
        result: Suggestions = await run_in_threadpool(suggest, engine, turns, body.k, category)
    except ValueError as exc:  # ConversationError, or the engine's QueryError
        raise unprocessable(str(exc)) from exc
    took_ms = (time.perf_counter() - started) * 1000
    if result.response is None:  # greetings only: nothing searched, nothing logged
        return {"query_id": None, **suggestions_dict(result), "took_ms": round(took_ms, 2)}
    query_id = uuid.uuid4().hex
    who = stored_id(body.agent_id) or agent_id
    session = stored_id(body.session_id) or session_id
    log_suggestion(store, query_id, result, who, session, took_ms, str(engine.info().get("index_version", "")))
    return {"query_id": query_id, **suggestions_dict(result), "took_ms": round(took_ms, 2)}


def log_suggestion(  # noqa: PLR0913 - one record's fields
    store: Any, query_id: str, result: Suggestions, agent_id: str | None, session_id: str | None,
    took_ms: float, index_version: str,
) -> None:
    """Queue the suggestion as a query of source 'conversation'; a broken log never costs the answer."""
    response = result.response
    assert response is not None  # callers log only what was searched
    try:
        store.record_query(QueryLog(
            query_id=query_id, ts=time.time(), agent_id=agent_id, session_id=session_id,
            query_text=result.open_question.text,  # masked by the store (scrub_query)
            confident=response.confident, n_hits=len(response.hits), latency_ms=took_ms,
            index_version=index_version,
            impressions=[Impression(rank, h.article_id, h.version, h.passage_id, float(h.score))
                         for rank, h in enumerate(response.hits, start=1)],
            source="conversation",
        ))
    except Exception as exc:
        log_failure("could not log suggestion %s", exc, query_id)
