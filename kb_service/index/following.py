"""Replicas following the generation store: the PostgreSQL record, LISTEN/NOTIFY, and the poll.

When the usage log is PostgreSQL, `announce` records every published generation in a small table
of its own (`kb_generations`, created here with CREATE TABLE IF NOT EXISTS: it is not part of the
usage log's migrations) and sends `NOTIFY kb_generation, '<name>'` in the same transaction.

Each replica runs a `GenerationFollower`: it syncs at start, whenever a notification arrives
(a `GenerationListener` thread holds one LISTEN connection and reconnects after a loss), and
every `generation_poll_interval_seconds` regardless — a notification missed while the connection
was down leaves a replica stale for at most one poll interval. Syncing means: ask the store for
its LATEST, fetch it into the local index folder (verified before the local CURRENT changes) and
call `on_switch` (the engine's reload: the new generation is loaded beside the old and swapped).
A fetch that fails (a corrupt copy, the store unreachable) is logged and the old generation keeps
serving; the next wake-up tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from kb_service.index.publishing import (
    GenerationStore,
    GenerationStoreError,
    PublishReport,
    open_generation_store,
)
from kb_service.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "kb_generation"
TABLE = "kb_generations"
_CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (name text PRIMARY KEY, store text NOT NULL, "
           "published_at timestamptz NOT NULL DEFAULT now())")


def _is_postgres(url: object) -> bool:
    return isinstance(url, str) and url.startswith(("postgresql://", "postgres://"))


def announce(log_url: str, generation: str, store_location: str) -> None:
    """Record `generation` as the current published one and notify the listening replicas."""
    import psycopg

    try:
        with psycopg.connect(log_url, autocommit=False, connect_timeout=10) as conn:
            conn.execute(_CREATE)
            conn.execute(f"INSERT INTO {TABLE} (name, store) VALUES (%s, %s) "
                         "ON CONFLICT (name) DO UPDATE SET published_at = now(), store = EXCLUDED.store",
                         (generation, store_location))
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, generation))  # delivered at commit
    except psycopg.Error as exc:
        raise GenerationStoreError(f"{generation} is published, but recording it in PostgreSQL failed "
                                   f"({type(exc).__name__}); replicas pick it up at their next poll") from None


def recorded_generation(log_url: str) -> str | None:
    """The generation most recently announced in PostgreSQL, None when none was."""
    import psycopg

    with psycopg.connect(log_url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()
        if not exists or exists[0] is None:
            return None
        row = conn.execute(f"SELECT name FROM {TABLE} ORDER BY published_at DESC LIMIT 1").fetchone()
        return row[0] if row else None


def publish_and_announce(settings: Settings, generation: str) -> PublishReport:
    """`kb index` with KB_GENERATION_STORE: publish the built generation, then tell the replicas
    (recorded and notified in PostgreSQL when the usage log is there; otherwise they poll)."""
    store = open_generation_store(settings.generation_store)
    report = store.publish(Path(settings.index_dir), generation)
    if _is_postgres(settings.log_db):
        announce(str(settings.log_db), generation, store.location)
    return report


class GenerationListener(threading.Thread):
    """Holds `LISTEN kb_generation` and calls `on_notice(name)` for every notification."""

    def __init__(self, log_url: str, on_notice: Callable[[str], None], check_seconds: float = 1.0) -> None:
        super().__init__(name="kb-generation-listener", daemon=True)
        self.log_url = log_url
        self.on_notice = on_notice
        self.check_seconds = check_seconds
        self.listening = threading.Event()  # set while a LISTEN connection is up (tests wait on it)
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psycopg

        pause = 1.0
        while not self._stop_event.is_set():
            try:
                with psycopg.connect(self.log_url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    pause = 1.0
                    self.on_notice("")  # (re)connected: anything published while deaf is caught now
                    while not self._stop_event.is_set():
                        for notice in conn.notifies(timeout=self.check_seconds):
                            self.on_notice(notice.payload)
            except Exception as exc:  # a lost connection: the poll covers the gap, reconnect with back-off
                self.listening.clear()
                log.warning("LISTEN %s lost (%s); reconnecting in %.0f s", CHANNEL, type(exc).__name__, pause)
                self._stop_event.wait(pause)
                pause = min(pause * 2, 30.0)
        self.listening.clear()

    def stop(self) -> None:
        self._stop_event.set()


class GenerationFollower(threading.Thread):
    """Keeps a local index folder on the store's LATEST generation (see the module docstring)."""

    def __init__(self, store: GenerationStore, local_index_dir: Path, poll_seconds: float,
                 on_switch: Callable[[], object], log_url: str | None = None) -> None:
        super().__init__(name="kb-generation-follower", daemon=True)
        self.store = store
        self.local_index_dir = Path(local_index_dir)
        self.poll_seconds = poll_seconds
        self.on_switch = on_switch
        self.latest: str | None = None  # the newest published generation last seen in the store
        self.last_error: str | None = None
        self.listener = GenerationListener(log_url, self.wake) if _is_postgres(log_url) else None
        self._wake = threading.Event()
        self._stop_event = threading.Event()

    def wake(self, generation: str = "") -> None:
        if generation:
            log.info("notified of published generation %s", generation)
        self._wake.set()

    def sync(self) -> bool:
        """One look at the store; True when a new generation was fetched and switched to."""
        latest = self.store.latest()
        self.latest = latest
        if latest is None:
            return False
        report = self.store.fetch(latest, self.local_index_dir)
        if report.switched:
            self.on_switch()
            log.info("now serving published generation %s (fetched %d segments in %.2f s)", latest,
                     len(report.segments_copied), report.seconds)
        self.last_error = None
        return report.switched

    def run(self) -> None:
        if self.listener is not None:
            self.listener.start()
        while not self._stop_event.is_set():
            self._wake.clear()
            try:
                self.sync()
            except Exception as exc:  # a corrupt copy or an unreachable store: keep serving the old one
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("fetching the published generation failed; the old one keeps serving: %s", self.last_error)
            self._wake.wait(self.poll_seconds)
        if self.listener is not None:
            self.listener.stop()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        self._wake.set()
        if self.listener is not None:
            self.listener.stop()
            self.listener.join(timeout=timeout)
        if self.is_alive():
            self.join(timeout=timeout)

    def info(self) -> dict[str, object]:
        """What /api/health shows about the store."""
        return {"published_generation": self.latest, "generation_fetch_failed": self.last_error is not None}
