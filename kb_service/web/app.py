"""The HTTP app for the agents' side panel, editors and analysts: `create_app` wires it together.

Routes are thin (`routers/`, one file per area): they validate input, call the search engine,
and put usage records on the log store's queue. Everything the app needs lives on `app.state`
(no module globals), so tests and uvicorn workers each build an independent app.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from kb_service.settings import Settings
from kb_service.usage_log.store import UsageLogStore, open_log_store
from kb_service.web.auth import AccessPolicy
from kb_service.web.errors import on_unexpected_error, on_validation_error
from kb_service.web.guards import RequestGuard, install_access_log
from kb_service.web.routers import admin, articles, flags, panel, reports, search, suggest, usage, workbench

log = logging.getLogger(__name__)

def warm_up(engine: Any) -> None:
    """Warm the engine before serving (an engine passed in by a caller may not be): the first
    search loads the tokenizer dictionary and the embedding model (seconds)."""
    started = time.perf_counter()
    try:
        engine.warm_up()
    except Exception:
        log.warning("warm-up search failed; the first real search will be slow", exc_info=True)
        return
    log.info("search engine warm in %.0f ms", (time.perf_counter() - started) * 1000)


def create_app(
    settings: Settings, engine: Any = None, store: UsageLogStore | None = None, *, shared_log: bool = True
) -> FastAPI:
    """Build the app; opens the engine and the usage log (KB_LOG_DB) unless given (tests pass their own).

    `shared_log`: other processes (uvicorn workers) may write the same usage log, so a click with a
    search id this process did not issue waits up to `query_id_wait_seconds` for it. False when
    this process is the only writer: unknown ids are answered 404 at once.
    """
    if engine is None:
        from kb_service.search.engine import SearchEngine

        engine = SearchEngine.open(settings)
    if store is None:
        store = open_log_store(settings.log_db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_access_log()  # after uvicorn configured logging: our path-only access lines
        await run_in_threadpool(warm_up, app.state.engine)
        yield
        # Drain the usage log: a clean shutdown (SIGINT/SIGTERM) loses no record.
        await run_in_threadpool(app.state.store.close)
        close = getattr(app.state.engine, "close", None)
        if callable(close):
            await run_in_threadpool(close)

    app = FastAPI(title="kb_service", summary="车险客服知识库检索 API", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.store = store
    app.state.access = AccessPolicy.from_settings(settings)
    app.state.shared_log = shared_log
    app.state.query_id_waiters = 0
    # Outermost of the app's own middleware: key presence and body size before anything reads the body.
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes, policy=app.state.access)
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected_error)
    for area in (search, suggest, articles, usage, flags, admin, reports, workbench, panel):
        app.include_router(area.router)
    app.mount("/static", StaticFiles(directory=panel.STATIC_DIR, check_dir=False), name="static")
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory (`--factory`): settings from KB_* environment variables."""
    return create_app(Settings())
