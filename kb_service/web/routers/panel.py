"""The agents' side panel: `/` and its static files; `/demo/host`, a fake chat tool embedding it."""

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


@router.get("/demo/host")
def demo_host() -> FileResponse:
    """A fake chat window with a reply box and the panel in an iframe: shows (and tests) the whole
    postMessage loop — conversation → suggestions → insert into the reply (docs/integration.md)."""
    page = STATIC_DIR / "demo-host.html"
    if not page.is_file():
        raise HTTPException(404, "demo not installed (kb_service/web/static/demo-host.html is missing)")
    return FileResponse(page, headers={"Cache-Control": "no-cache"})
