"""What each `kb serve` worker process runs besides its app: die with the supervisor, follow CURRENT.

`kb serve --workers N` is uvicorn's supervisor plus N spawned worker processes sharing one
listening socket. Two things keep them honest:

* A worker must not outlive its supervisor: after a `kill -9` of the supervisor nobody would stop
  the workers, and they would keep the port. On Linux each worker asks the kernel for SIGTERM
  when its parent dies (PR_SET_PDEATHSIG), and a small thread also watches the parent pid (other
  systems, and the short moment before prctl ran). Either way the worker shuts down as on a
  SIGTERM (draining its usage log) and is forced out if that takes too long.
* Every worker follows `indexes/CURRENT` with an `IndexPoller`: when the indexer (the `--watch`
  supervisor, or a `kb index` from the command line) names a new generation, the worker's engine
  reloads in place. Searches keep running on the old snapshot until the new one is loaded, and
  a failed reload leaves the old snapshot serving. No worker is restarted for an edit.
* With a generation store (KB_GENERATION_STORE) every worker also runs a `GenerationFollower`:
  it fetches newly published generations into its own index folder, verified, and reloads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb_service.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

# The supervisor's pid, exported before it spawns workers: a worker whose parent is already
# someone else (the supervisor died while the worker was starting) exits at once.
SUPERVISOR_PID_ENV = "KB_SERVE_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1
PARENT_CHECK_SECONDS = 0.5
FORCED_EXIT_SECONDS = 10.0
RELOAD_RETRY_MAX_SECONDS = 60.0


# ------------------------------------------------------------------------------ die with the supervisor


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Linux: have the kernel send `sig` to this process when its parent dies. False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
            return False
    except (OSError, AttributeError):
        log.warning("prctl is not available: workers rely on watching the parent pid", exc_info=True)
        return False
    return True


class ParentWatcher(threading.Thread):
    """Stops this worker when its parent (the supervisor) is gone.

    The first sign (pdeath signal or a changed parent pid) asks for a graceful shutdown with
    SIGTERM; if the process is still alive `forced_exit_seconds` later, it exits hard.
    """

    def __init__(
        self,
        parent_pid: int,
        interval: float = PARENT_CHECK_SECONDS,
        forced_exit_seconds: float = FORCED_EXIT_SECONDS,
    ):
        super().__init__(name="kb-parent-watcher", daemon=True)
        self.parent_pid = parent_pid
        self.interval = interval
        self.forced_exit_seconds = forced_exit_seconds
        self._stop_event = threading.Event()

    def parent_alive(self) -> bool:
        return os.getppid() == self.parent_pid

    def run(self) -> None:
        while self.parent_alive():
            if self._stop_event.wait(self.interval):
                return
        log.warning("supervisor [%s] is gone: worker [%s] shuts down", self.parent_pid, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        if not self._stop_event.wait(self.forced_exit_seconds):
            log.error("worker [%s] did not stop within %.0f s of its supervisor: exiting",
                      os.getpid(), self.forced_exit_seconds)
            os._exit(1)

    def stop(self) -> None:
        self._stop_event.set()


def bind_to_supervisor() -> ParentWatcher:
    """Call first thing in a worker process: it dies with the process that spawned it."""
    expected = os.environ.get(SUPERVISOR_PID_ENV)
    parent = int(expected) if expected and expected.isdigit() else os.getppid()
    set_parent_death_signal(signal.SIGTERM)
    watcher = ParentWatcher(parent)  # also catches a supervisor that died before prctl ran
    watcher.start()
    return watcher


# ------------------------------------------------------------------------------ follow CURRENT


def _current_marker(index_dir: Path) -> tuple[int, int, int, bytes] | None:
    """What CURRENT says, and its identity: the indexer replaces it by an atomic rename."""
    from kb_service.index.store import CURRENT

    pointer = Path(index_dir) / CURRENT
    try:
        st = pointer.stat()
        return (st.st_ino, st.st_mtime_ns, st.st_size, pointer.read_bytes())
    except OSError:
        return None


class IndexPoller(threading.Thread):
    """Calls `engine.reload()` whenever `indexes/CURRENT` changes.

    A reload that fails is logged, the engine keeps its old snapshot, and the poller tries again
    after a growing pause (up to a minute) or as soon as CURRENT changes again.
    """

    def __init__(self, engine: Any, index_dir: Path, interval: float):
        super().__init__(name="kb-index-poller", daemon=True)
        self.engine = engine
        self.index_dir = Path(index_dir)
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        last = _current_marker(self.index_dir)
        retry_in = 0.0  # > 0 while the last reload failed
        waited = 0.0
        while not self._stop_event.wait(self.interval):
            waited += self.interval
            marker = _current_marker(self.index_dir)
            if marker == last and not (retry_in and waited >= retry_in):
                continue
            changed = marker != last
            last, waited = marker, 0.0
            try:
                if self.engine.reload():
                    log.info("worker [%s] now serves index %s", os.getpid(),
                             self.engine.info().get("index_version"))
                retry_in = 0.0
            except Exception:
                retry_in = self.interval * 2 if changed or not retry_in else min(retry_in * 2, RELOAD_RETRY_MAX_SECONDS)
                log.exception("reloading the index failed; the old index keeps serving (retry in %.0f s)", retry_in)

    def stop(self) -> None:
        self._stop_event.set()


def attach_index_poller(app: FastAPI, settings: Settings, interval: float | None = None) -> None:
    """Run an `IndexPoller` for the app's engine while the app is up (after its warm-up).

    `interval` defaults to `index_poll_interval_seconds`; 0 or less means no poller.
    """
    every = settings.index_poll_interval_seconds if interval is None else interval
    if every <= 0 and not settings.generation_store:
        return
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            poller = IndexPoller(app_.state.engine, settings.index_dir, every) if every > 0 else None
            follower = start_generation_follower(app_, settings)
            if poller is not None:
                poller.start()
            try:
                yield state
            finally:
                if follower is not None:
                    follower.stop()
                if poller is not None:
                    poller.stop()  # before the engine closes; a reload in progress may finish
                    poller.join(timeout=30)

    app.router.lifespan_context = lifespan


def fetch_published_generation(settings: Settings) -> None:
    """Before the engine opens: bring this replica's own index folder to the store's LATEST, so a
    replica started on an empty (or old) folder serves the published generation from its first
    request. A failure is logged; whatever the folder already holds is served."""
    if not settings.generation_store:
        return
    from kb_service.index.publishing import open_generation_store

    store = open_generation_store(settings.generation_store)
    try:
        latest = store.latest()
        if latest is not None:
            store.fetch(latest, settings.index_dir)
    except Exception:
        log.exception("fetching the published generation at start failed; serving the local index folder")


def start_generation_follower(app: FastAPI, settings: Settings) -> Any:
    """With KB_GENERATION_STORE: follow the store's LATEST into this replica's own index folder
    (kb_service.index.following); `/api/health` shows what it last saw. None without a store."""
    if not settings.generation_store:
        return None
    from kb_service.index.following import GenerationFollower
    from kb_service.index.publishing import open_generation_store

    engine = app.state.engine
    follower = GenerationFollower(open_generation_store(settings.generation_store), settings.index_dir,
                                  settings.generation_poll_interval_seconds, engine.reload,
                                  log_url=settings.log_db if isinstance(settings.log_db, str) else None)
    app.state.generation_follower = follower
    follower.start()
    return follower


# ------------------------------------------------------------------------------ the worker factory


def create_worker_app_from_env() -> FastAPI:
    """uvicorn factory of `kb serve --workers N`: runs in each worker process."""
    from kb_service.web.app import create_app

    bind_to_supervisor()
    settings = Settings()
    fetch_published_generation(settings)
    app = create_app(settings)
    attach_index_poller(app, settings)
    return app


__all__ = [
    "SUPERVISOR_PID_ENV",
    "IndexPoller",
    "ParentWatcher",
    "attach_index_poller",
    "bind_to_supervisor",
    "create_worker_app_from_env",
    "fetch_published_generation",
    "set_parent_death_signal",
    "start_generation_follower",
]
