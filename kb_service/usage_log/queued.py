"""The producer/consumer half every server-database log backend shares.

Writing must never make a search wait: callers only put records on a queue, and one background
thread hands them to `_write` in batches that grow with the load. `close()` queues a stop marker
behind everything else and waits for the writer, so a clean shutdown (SIGTERM) loses nothing; a
hard kill loses at most what was queued and not yet committed (milliseconds of traffic).

Subclasses implement `_write(records)` (one batch, committed before it returns or raises) and
`_lookup(query_id)` (is this search committed?).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from kb_service.usage_log.store import (
    EVENT_TYPES,
    EventLog,
    EventType,
    FeedbackLog,
    FlagLog,
    LogRecord,
    QueryLog,
)

log = logging.getLogger(__name__)

_STOP = object()


class LogStoreClosed(RuntimeError):
    """A record or a lookup reached a store after close()."""


class QueuedLogStore:
    """Queue, pending-id bookkeeping and the writer thread; see the module docstring."""

    name = "usage log"
    closed_error: type[Exception] = LogStoreClosed  # what using a closed store raises

    def __init__(self, *, max_batch: int = 1000) -> None:
        self._max_batch = max_batch
        self._queue: queue.Queue[object] = queue.Queue()
        # Ids queued but not yet committed, so has_query is right before the writer catches up.
        self._pending: dict[str, int] = {}
        self._pending_lock = threading.Lock()
        self._closed = False
        self._close_lock = threading.Lock()
        self._writer: threading.Thread | None = None

    def _start_writer(self) -> None:
        self._writer = threading.Thread(target=self._run_writer, name="kb-usage-log-writer", daemon=True)
        self._writer.start()

    # --- the backend's part -----------------------------------------------------------

    def _write(self, records: list[LogRecord]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _lookup(self, query_id: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _release(self) -> None:
        """Free connections after the writer has stopped."""

    def _writer_started(self) -> None:
        """Runs on the writer thread before its first batch (e.g. open its own connection)."""

    def _writer_stopped(self) -> None:
        """Runs on the writer thread after its last batch."""

    # --- producer side (any thread) ---------------------------------------------------

    def record_query(self, entry: QueryLog) -> None:
        self._put(entry)

    def record_event(self, query_id: str, article_id: str, type: EventType, ts: float | None = None) -> None:
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}; expected one of {sorted(EVENT_TYPES)}")
        self._put(EventLog(query_id, article_id, type, time.time() if ts is None else ts))

    def record_feedback(
        self,
        query_id: str,
        article_id: str | None,
        resolved: bool,
        comment: str | None = None,
        ts: float | None = None,
    ) -> None:
        self._put(FeedbackLog(query_id, article_id, bool(resolved), comment, time.time() if ts is None else ts))

    def record_flag(self, flag: FlagLog) -> None:
        self._put(flag)

    def record_many(self, records: Iterable[LogRecord]) -> int:
        """Queue many records at once (loading a simulated log); returns how many were queued."""
        count = 0
        for record in records:
            if isinstance(record, EventLog) and record.type not in EVENT_TYPES:
                raise ValueError(f"unknown event type {record.type!r}")
            self._put(record)
            count += 1
        return count

    @contextmanager
    def batch(self) -> Iterator[Any]:
        """`with store.batch(): ...` — everything recorded inside is committed when the block exits."""
        yield self
        self.flush()

    def has_query(self, query_id: str) -> bool:
        with self._pending_lock:
            if query_id in self._pending:
                return True
        # The writer commits before it forgets a pending id, so a query is always in one place.
        self._check_open()
        return self._lookup(query_id)

    def flush(self) -> None:
        """Block until everything recorded so far is committed (or given up on and logged)."""
        self._check_open()
        self._queue.join()

    def close(self) -> None:
        """Write everything still queued, then release the connections. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if self._writer is not None:
            self._writer.join()
        self._release()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise self.closed_error(f"{self.name} is closed")

    def _put(self, record: LogRecord) -> None:
        # Under the close lock so nothing can be queued behind the writer's stop marker.
        with self._close_lock:
            self._check_open()
            if isinstance(record, QueryLog):
                with self._pending_lock:
                    self._pending[record.query_id] = self._pending.get(record.query_id, 0) + 1
            self._queue.put(record)

    # --- writer thread ----------------------------------------------------------------

    def _run_writer(self) -> None:
        self._writer_started()
        try:
            self._drain()
        finally:
            self._writer_stopped()

    def _drain(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            # Take whatever else is already waiting: batches grow exactly when load does.
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            # The stop marker is always the last item ever queued (see _put).
            stop = batch[-1] is _STOP
            records: list[LogRecord] = [item for item in batch if item is not _STOP]  # type: ignore[misc]
            try:
                if records:
                    self._write(records)
            except Exception:  # the writer thread must survive anything, or flush() would hang
                log.exception("%s: a batch of %d records was lost", self.name, len(records))
            finally:
                self._forget_pending(records)
                for _ in batch:
                    self._queue.task_done()

    def _forget_pending(self, records: list[LogRecord]) -> None:
        with self._pending_lock:
            for record in records:
                if isinstance(record, QueryLog):
                    left = self._pending.get(record.query_id, 0) - 1
                    if left > 0:
                        self._pending[record.query_id] = left
                    else:
                        self._pending.pop(record.query_id, None)
