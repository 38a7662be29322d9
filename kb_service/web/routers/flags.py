"""/api/flags: agents flag an article as wrong or outdated (POST); editors read the queue (GET)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from kb_service.assist.flags import flag_dict, new_flag
from kb_service.web.deps import AGENT, EDITOR, AgentId, Engine, SessionId, Store, known_article
from kb_service.web.errors import unprocessable
from kb_service.web.schemas import ERROR_RESPONSES, MAX_ID_CHARS, NOT_FOUND, FlagIn, FlagsOut, RecordedOut

router = APIRouter(responses={**ERROR_RESPONSES, **NOT_FOUND})


@router.post("/api/flags", response_model=RecordedOut, dependencies=AGENT, tags=["agent"])
async def raise_flag(  # noqa: PLR0913 - FastAPI parameters
    engine: Engine, store: Store, body: FlagIn, agent_id: AgentId, session_id: SessionId,
) -> RecordedOut:
    """「内容有误/已过时」 on an article, with a reason and an optional comment (stored masked)."""

    def record() -> None:
        article = known_article(engine, body.article_id)
        try:
            flag = new_flag(article.id, int(article.version), body.reason, article_version=body.article_version,
                            comment=body.comment, query_id=body.query_id, agent_id=agent_id, session_id=session_id)
        except ValueError as exc:
            raise unprocessable(str(exc)) from exc
        store.record_flag(flag)

    await run_in_threadpool(record)
    return RecordedOut()


@router.get("/api/flags", response_model=FlagsOut, dependencies=EDITOR, tags=["editor"])
async def list_flags(
    engine: Engine, store: Store,
    article_id: Annotated[str | None, Query(max_length=MAX_ID_CHARS, description="only this article")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The editors' queue, newest first; `current_version` above `article_version`: edited since."""
    flags = await run_in_threadpool(store.list_flags, article_id, limit)
    rows = [flag_dict(flag, engine.article) for flag in flags]
    return {"count": len(rows), "flags": rows}
