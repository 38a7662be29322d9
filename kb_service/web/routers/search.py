"""GET /api/search: what agents type, read and searched; the query and what it showed are logged."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from kb_service.models import CATEGORIES, SearchResponse
from kb_service.usage_log.store import Impression, QueryLog
from kb_service.web.deps import AGENT, AgentId, Engine, SessionId, Store
from kb_service.web.errors import log_failure, unprocessable
from kb_service.web.guards import HEAD_SCOPE_KEY
from kb_service.web.schemas import ERROR_RESPONSES, MAX_K, SearchOut

PREVIEW_ID = r"^[0-9a-f]{32}$"  # what uuid4().hex looks like: a preview's id, nothing an agent typed

router = APIRouter(tags=["agent"], dependencies=AGENT, responses=ERROR_RESPONSES)


def split_tags(tags: list[str] | None) -> list[str] | None:
    found = [t.strip() for raw in tags or () for t in raw.split(",") if t.strip()]
    return found or None


@router.get("/api/search", response_model=SearchOut)
def search(  # noqa: PLR0913 - FastAPI parameters
    request: Request,
    engine: Engine,
    store: Store,
    agent_id: AgentId,
    session_id: SessionId,
    q: Annotated[str, Query(description="what the agent typed")] = "",
    k: Annotated[int, Query(ge=1, le=MAX_K, description="number of articles")] = 5,
    category: Annotated[str | None, Query(description=f"one of {', '.join(CATEGORIES)}")] = None,
    tags: Annotated[list[str] | None, Query(description="repeat or comma-separate; all must match")] = None,
    truncate: Annotated[bool, Query(description="text over the limit (or cut by the caller): search its first question")] = False,
    as_typed: Annotated[bool, Query(description="no typo correction: search the words as typed "
                                    "(the panel's 「仍按原文搜索」 after `spelled_as` showed a correction)")] = False,
    log: Annotated[bool, Query(description="false: a preview while the agent is still typing; nothing is logged")] = True,
    query_id: Annotated[str | None, Query(pattern=PREVIEW_ID, description="log under the id a preview returned")] = None,
) -> dict[str, Any]:
    """Search the knowledge base; the query and what was shown are logged under `query_id`.

    The query is read first (query reading): a pasted message is cut to its question, several
    questions are searched one by one; `reading` says how, `questions` lists each one's hits.

    Type-ahead: the panel searches with `log=0` while the agent types and repeats the search with
    `query_id=<the preview's id>` once it settles (Enter, a result used, a pause), so a query is
    logged once, under the id its cards already carry — not once per prefix."""
    text = q.strip()
    category = (category or "").strip() or None
    if category is not None and category not in CATEGORIES:
        raise unprocessable(f"未知分类 {category!r}，可选：{', '.join(CATEGORIES)}")
    index_version = str(engine.info().get("index_version", ""))
    started = time.perf_counter()
    try:
        response: SearchResponse = engine.search(text, k=k, category=category, tags=split_tags(tags),
                                                 truncate=truncate, as_typed=as_typed)
    except ValueError as exc:  # QueryError: the engine's own query rules
        raise unprocessable(str(exc)) from exc
    took_ms = (time.perf_counter() - started) * 1000
    query_id = query_id or uuid.uuid4().hex
    if request.scope.get(HEAD_SCOPE_KEY) or not log:  # HEAD or a preview: nothing logged
        return {"query_id": query_id, **response.to_dict(), "took_ms": round(took_ms, 2)}
    try:
        store.record_query(
            QueryLog(
                query_id=query_id,
                ts=time.time(),
                agent_id=agent_id,
                session_id=session_id,
                query_text=text,
                confident=response.confident,
                n_hits=len(response.hits),
                latency_ms=took_ms,
                index_version=index_version,
                impressions=[
                    Impression(rank, h.article_id, h.version, h.passage_id, float(h.score))
                    for rank, h in enumerate(response.hits, start=1)
                ],
            )
        )
    except Exception as exc:  # the agent still gets the answer if the log is broken
        log_failure("could not log query %s", exc, query_id)
    return {"query_id": query_id, **response.to_dict(), "took_ms": round(took_ms, 2)}
