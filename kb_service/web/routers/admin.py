"""GET /api/health (open to load balancers) and POST /api/admin/reload (editors)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from kb_service.web.deps import EDITOR, Engine, service_info
from kb_service.web.errors import encodable, without_paths
from kb_service.web.schemas import ERROR_RESPONSES, HealthOut, ReloadOut

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/api/health", response_model=HealthOut, tags=["ops"])
def health(request: Request, engine: Engine) -> dict[str, Any]:
    """Open to everyone (load balancers, the panel's status line)."""
    info = service_info(engine, request.app.state.access)
    follower = getattr(request.app.state, "generation_follower", None)
    if follower is not None:  # KB_GENERATION_STORE: the newest published generation, as last seen
        info.update(follower.info())
    return info


@router.post("/api/admin/reload", response_model=ReloadOut, dependencies=EDITOR, responses=ERROR_RESPONSES,
             tags=["editor"])
def reload(request: Request, engine: Engine) -> dict[str, Any]:
    """Switch to the newest built index; searches in flight finish on the old one."""
    try:
        changed = bool(engine.reload())
    except Exception as exc:
        log.exception("index reload failed")  # the server log keeps the full story, paths included
        problem = encodable(without_paths(str(exc)))[:300] or type(exc).__name__
        raise HTTPException(503, f"重新加载索引失败，仍在使用原索引：{problem}") from exc
    return {"reloaded": changed, **service_info(engine, request.app.state.access)}
