"""Running the service: uvicorn, the article watcher, and several worker processes.

`serve` is what `kb serve` calls. One worker builds the app here; several workers are spawned
by uvicorn's supervisor (this process), which then only watches articles and rebuilds, while
each worker follows `indexes/CURRENT` (`workers.py`) and reloads in place.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kb_service.content.articles import ArticleCache, article_files
from kb_service.index.builder import build_and_merge
from kb_service.index.embedding import Embedder
from kb_service.search.engine import WARM_UP_QUERY
from kb_service.settings import Settings
from kb_service.usage_log.postgres import is_postgres_url
from kb_service.web.app import create_app
from kb_service.web.auth import check_bind_allowed
from kb_service.web.guards import JSONErrorH11Protocol

log = logging.getLogger(__name__)


def _article_state(settings: Settings) -> dict[str, tuple[int, int]]:
    files = [*article_files(Path(settings.articles_dir)), Path(settings.lexicon_path)]
    state: dict[str, tuple[int, int]] = {}
    for path in files:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        state[str(path)] = (st.st_mtime_ns, st.st_size)
    return state


class ArticleWatcher(threading.Thread):
    """Polls the articles folder and calls `on_change` after an edit, add or delete.

    Polling (not inotify) because articles often live on network shares where events are lost.
    A failing rebuild is logged and the old index keeps serving; the next edit tries again.
    """

    def __init__(
        self, settings: Settings, on_change: Callable[[], None], interval: float | None = None
    ):
        super().__init__(name="kb-article-watcher", daemon=True)
        self.settings = settings
        self.on_change = on_change
        self.interval = settings.watch_interval_seconds if interval is None else interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        last = _article_state(self.settings)
        while not self._stop_event.wait(self.interval):
            current = _article_state(self.settings)
            if current == last:
                continue
            last = current
            try:
                self.on_change()
            except Exception:
                log.exception(
                    "rebuilding the index after an article change failed; the old index keeps serving"
                )

    def stop(self) -> None:
        self._stop_event.set()


def rebuild_index(
    settings: Settings,
    cache: ArticleCache | None = None,
    on_switch: Callable[[], None] | None = None,
    embedder: Embedder | None = None,
) -> bool:
    """Build after an article edit; True when a new index generation was written.

    `on_switch` runs as soon as the edit is in the index (so it can be served), before a full
    merge that the update may have made due.
    """
    report = build_and_merge(settings, cache=cache, embedder=embedder, on_live=on_switch)
    for problem in report.problems:
        log.warning("article problem: %s", problem)
    log.info("index %s: added %s changed %s removed %s", report.generation, report.added, report.changed,
             report.removed)
    return not report.unchanged


def _export_settings(settings: Settings) -> None:
    """Worker processes build their app from the environment, so CLI overrides must go there."""
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        os.environ[f"KB_{name.upper()}"] = (
            value
            if isinstance(value, str)
            else (json.dumps(value) if isinstance(value, list | dict) else str(value))
        )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn settings of `kb serve`: h11 with a request head limit large enough for long
    URL-encoded Chinese queries, JSON (not plain text) for the 400s uvicorn sends itself, and a
    bounded graceful shutdown."""
    options: dict[str, Any] = {
        "h11_max_incomplete_event_size": settings.max_request_head_bytes,
        # SIGTERM: stop accepting, finish what is in flight (bounded), then the lifespan drains the log.
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
    }
    if JSONErrorH11Protocol is not None:
        options["http"] = JSONErrorH11Protocol
    return options


WORKER_HEALTHCHECK_SECONDS = 30


class SupervisorEmbedder:
    """The `--watch` supervisor's query embedder, loaded once on first use (thread-safe).

    A failed load is not kept: the next rebuild tries again (and build_index loads its own)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None

    def get(self) -> Embedder | None:
        with self._lock:
            if self._embedder is None:
                from kb_service.index.embedding import load_embedder

                try:
                    embedder = load_embedder(
                        self.settings.embedding_model,
                        self.settings.embedding_runtime,
                        Path(self.settings.index_dir) / "models",
                        self.settings.threads,
                    )
                    embedder.encode([WARM_UP_QUERY])  # models load on first use: pay it here
                    self._embedder = embedder
                except Exception:
                    log.warning("loading the embedder for re-indexing failed", exc_info=True)
            return self._embedder


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    watch: bool = False,
) -> None:
    """Run the API with uvicorn; `watch` rebuilds the index when articles change.

    Every worker follows `indexes/CURRENT` (`kb_service.web.workers.IndexPoller`) and reloads its
    engine in place when a new generation is named, so an edit (or a `kb index` run) is served
    without restarting anything. One worker: the app is built here and the watcher also reloads
    it directly. Several workers: uvicorn's supervisor (this process) runs the watcher and only
    rebuilds; the spawned workers pick the new generation up, and die with the supervisor.
    """
    host = settings.host if host is None else host
    port = settings.port if port is None else port
    if workers is not None:  # the workers' share of the cores (embedding threads) follows from it
        settings = settings.with_overrides(workers=workers)
    workers = settings.workers
    check_bind_allowed(settings, host)
    if workers <= 1:
        _serve_one(settings, host, port, watch)
    else:
        _serve_workers(settings, host, port, workers, watch)


def _serve_one(settings: Settings, host: str, port: int, watch: bool) -> None:
    import uvicorn

    from kb_service.web.workers import attach_index_poller, fetch_published_generation

    fetch_published_generation(settings)  # KB_GENERATION_STORE: start on the published generation
    # The only writer of a SQLite log: unknown ids are refused at once. A PostgreSQL log is shared
    # by replicas behind a load balancer: a click may follow a search another replica answered.
    app = create_app(settings, shared_log=is_postgres_url(settings.log_db))
    attach_index_poller(app, settings)
    watcher: ArticleWatcher | None = None
    if watch:
        parsed = ArticleCache()  # the watcher re-parses only the files an editor touched

        def rebuild_and_reload() -> None:
            engine = app.state.engine
            if rebuild_index(settings, parsed, on_switch=engine.reload, embedder=engine.embedder):
                app.state.engine.reload()

        watcher = ArticleWatcher(settings, rebuild_and_reload)
        watcher.start()
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, **uvicorn_options(settings))).run()
    finally:
        if watcher is not None:
            watcher.stop()


def _serve_workers(settings: Settings, host: str, port: int, workers: int, watch: bool) -> None:
    import uvicorn

    from kb_service.web.workers import SUPERVISOR_PID_ENV

    _export_settings(settings)
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    watcher: ArticleWatcher | None = None
    if watch:
        parsed = ArticleCache()
        # Load the embedder once, in the background: an edit then re-indexes in about a second
        # instead of paying the model load (seconds) each time.
        embedder = SupervisorEmbedder(settings)
        threading.Thread(target=embedder.get, name="kb-embedder-preload", daemon=True).start()

        def rebuild_for_workers() -> None:
            rebuild_index(settings, parsed, embedder=embedder.get())  # workers' pollers switch to it

        watcher = ArticleWatcher(settings, rebuild_for_workers)
        watcher.start()
    try:
        uvicorn.run(
            "kb_service.web.workers:create_worker_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # A worker loading its model can miss uvicorn's 5 s ping on a busy host and be killed.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **uvicorn_options(settings),
        )
    finally:
        if watcher is not None:
            watcher.stop()
