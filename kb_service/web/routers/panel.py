"""The agents' side panel: `/` and its static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def panel() -> FileResponse:
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        raise HTTPException(404, "panel not installed (kb_service/web/static/index.html is missing)")
    return FileResponse(index, headers={"Cache-Control": "no-cache"})
