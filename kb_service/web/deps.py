"""What routes get from the app: the engine, the log store, role checks and the caller's ids.

Everything lives on `app.state` (no module globals), so each test and each uvicorn worker
builds an independent app. Routes take these as `Annotated` dependencies.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Depends, Header, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from kb_service.masking import mask_personal_data
from kb_service.usage_log.store import UsageLogStore
from kb_service.web.auth import AccessPolicy, require_role
from kb_service.web.errors import log_failure
from kb_service.web.schemas import MAX_ID_CHARS

# How many clicks may wait at once for a search id another worker is still logging; more are
# answered 404 at once. The wait holds no thread (asyncio), so it never delays searches.
MAX_QUERY_ID_WAITERS = 256

AGENT = [Depends(require_role("agent"))]
EDITOR = [Depends(require_role("editor"))]
ANALYST = [Depends(require_role("analyst"))]


def get_engine(request: Request) -> Any:
    return request.app.state.engine


def get_store(request: Request) -> UsageLogStore:
    return request.app.state.store


def stored_id(value: str | None) -> str | None:
    """An agent or session id as it may be stored: any client can set these headers, so one
    that holds personal data (a phone typed as an agent id) is stored masked, with a short
    digest of the original so that distinct ids still count apart in the reports."""
    value = (value or "").strip()[:MAX_ID_CHARS]
    if not value:
        return None
    masked = mask_personal_data(value)
    if masked == value:
        return value
    return f"{masked}#{hashlib.sha256(value.encode('utf-8', 'replace')).hexdigest()[:8]}"


def header_text(value: str | None) -> str | None:
    """A header value as the client meant it: headers carry only Latin-1, so the panel sends an id
    with other characters (坐席张三) percent-encoded (encodeURIComponent); plain ids pass unchanged."""
    return unquote(value, errors="replace") if value and "%" in value else value


def agent_id(x_agent_id: Annotated[str | None, Header()] = None) -> str | None:
    return stored_id(header_text(x_agent_id))


def session_id(x_session_id: Annotated[str | None, Header()] = None) -> str | None:
    return stored_id(header_text(x_session_id))


Engine = Annotated[Any, Depends(get_engine)]
Store = Annotated[UsageLogStore, Depends(get_store)]
AgentId = Annotated[str | None, Depends(agent_id)]
SessionId = Annotated[str | None, Depends(session_id)]


async def _has_query(store: UsageLogStore, query_id: str) -> bool:
    """The store's answer, or a clear 503 when the log cannot be asked (a PostgreSQL log that is
    down): the agent's click is not lost to a 500, and the message says what to do."""
    try:
        return await run_in_threadpool(store.has_query, query_id)
    except Exception as exc:
        log_failure("could not look up query id in the usage log", exc)
        raise HTTPException(503, "使用日志暂时无法访问，请稍后重试（搜索不受影响）") from exc


async def query_logged(request: Request, query_id: str) -> bool:
    """Whether the search `query_id` is in the log, waiting a little for another worker's.

    Ids this process issued are known at once (the store counts queued ones). With several
    workers the search may have been answered by another process whose background writer has not
    committed it yet; an agent's click must not be refused for that, so such an id is waited for
    up to `query_id_wait_seconds` — with asyncio.sleep, holding no worker thread, so bogus ids
    cannot starve searches. A single-worker `kb serve` (the only writer) does not wait at all.
    """
    store = get_store(request)
    if await _has_query(store, query_id):
        return True
    state = request.app.state
    wait = float(state.settings.query_id_wait_seconds) if state.shared_log else 0.0
    if wait <= 0 or state.query_id_waiters >= MAX_QUERY_ID_WAITERS:
        return False
    state.query_id_waiters += 1
    try:
        deadline = time.monotonic() + wait
        delay = 0.05
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(delay, left))
            if await _has_query(store, query_id):
                return True
            delay = min(delay * 2, 0.25)
        return False
    finally:
        state.query_id_waiters -= 1


async def require_known_query(request: Request, query_id: str) -> None:
    if not await query_logged(request, query_id):
        raise HTTPException(404, f"未知的 query_id：{mask_personal_data(query_id)}（请先搜索，再记录打开、复制或反馈）")


def known_article(engine: Any, article_id: str) -> Any:
    article = engine.article(article_id)
    if article is None:
        raise HTTPException(404, f"没有找到文章：{mask_personal_data(article_id)}（可能已被删除或更名）")
    return article


def service_info(engine: Any, policy: AccessPolicy) -> dict[str, Any]:
    # worker_pid: which `kb serve` worker answered (operators and tests tell workers apart by it)
    return {"status": "ok", **engine.info(), "auth_required": policy.enabled, "worker_pid": os.getpid()}
