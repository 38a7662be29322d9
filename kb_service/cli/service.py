"""`kb serve` and `kb reload`: running the service."""

from __future__ import annotations

from typing import Annotated

import typer

from kb_service.cli.common import (
    IndexOpt,
    app,
    console,
    fail,
    settings_from,
)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="address to listen on (KB_HOST); beyond 127.0.0.1 only with API keys")] = None,
    port: Annotated[int | None, typer.Option("--port", help="port (KB_PORT)")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="worker processes, about one per core (KB_WORKERS)")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="re-index and reload when articles/ changes")] = False,
    index_dir: IndexOpt = None,
) -> None:
    """Start the search API and the side panel (http://127.0.0.1:8000/)."""
    from kb_service.web.auth import UnsafeBindError
    from kb_service.web.serve import serve as run_server

    settings = settings_from(host=host, port=port, index_dir=index_dir, workers=workers)
    try:
        run_server(settings, settings.host, settings.port, workers=settings.workers, watch=watch)
    except UnsafeBindError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


@app.command()
def reload(
    url: Annotated[str | None, typer.Option("--url", help="server base URL")] = None,
    key: Annotated[str | None, typer.Option("--key", help="editor API key (KB_EDITOR_KEY)")] = None,
) -> None:
    """Ask a running server to switch to the newest built index (after `kb index`)."""
    import httpx

    settings = settings_from()
    base = url or f"http://{settings.host}:{settings.port}"
    key = key or settings.editor_key
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.post(f"{base}/api/admin/reload", headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        raise fail(f"no server answered at {base} ({type(exc).__name__}): start it with `kb serve`") from exc
    print(response.text)
    if response.status_code >= 400:
        raise typer.Exit(1)
