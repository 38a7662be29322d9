"""The SQLite usage log: the embedded default, one file beside the server.

The log sits on the search path, so writing must never make a search wait: callers only put
records on a queue and a single background thread writes them to SQLite in batched
transactions (`queued.QueuedLogStore`, shared with the PostgreSQL log). `close()` drains the
queue, so a clean shutdown loses nothing.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from kb_service.masking import mask_personal_data
from kb_service.usage_log import daily
from kb_service.usage_log.queued import QueuedLogStore
from kb_service.usage_log.store import (
    EventLog,
    FeedbackLog,
    FlagLog,
    LogRecord,
    QueryLog,
    StoredFlag,
    flags_query,
    scrub_query,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3


# --- schema -------------------------------------------------------------------------------
# Analyst reports read these tables directly: names and columns are a published contract.
# A new version appends a migration to _MIGRATIONS; never edit an applied one.

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS queries (
    query_id TEXT PRIMARY KEY,
    ts REAL,
    agent_id TEXT,
    session_id TEXT,
    query_masked TEXT,
    query_normalised TEXT,
    confident INTEGER,
    n_hits INTEGER,
    latency_ms REAL,
    index_version TEXT
);
CREATE TABLE IF NOT EXISTS impressions (
    query_id TEXT,
    rank INTEGER,
    article_id TEXT,
    article_version INTEGER,
    passage_id TEXT,
    score REAL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    query_id TEXT,
    ts REAL,
    type TEXT,
    article_id TEXT
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    query_id TEXT,
    ts REAL,
    article_id TEXT,
    resolved INTEGER,
    comment TEXT
);
CREATE INDEX IF NOT EXISTS idx_queries_ts ON queries(ts);
CREATE INDEX IF NOT EXISTS idx_impressions_article ON impressions(article_id);
CREATE INDEX IF NOT EXISTS idx_events_article ON events(article_id);
CREATE INDEX IF NOT EXISTS idx_feedback_article ON feedback(article_id);
-- reports join everything back to its query
CREATE INDEX IF NOT EXISTS idx_impressions_query ON impressions(query_id);
CREATE INDEX IF NOT EXISTS idx_events_query ON events(query_id);
CREATE INDEX IF NOT EXISTS idx_feedback_query ON feedback(query_id);
"""

# v2: where a query came from (the panel's search box, or a conversation read by /api/suggest),
# and the editors' queue of articles agents flagged as wrong or outdated.
_SCHEMA_V2 = """
ALTER TABLE queries ADD COLUMN source TEXT NOT NULL DEFAULT 'search';
CREATE TABLE IF NOT EXISTS flags (
    id INTEGER PRIMARY KEY,
    ts REAL,
    article_id TEXT,
    article_version INTEGER,
    reason TEXT,
    comment TEXT,
    query_id TEXT,
    agent_id TEXT,
    session_id TEXT
);
CREATE INDEX IF NOT EXISTS idx_flags_article ON flags(article_id);
CREATE INDEX IF NOT EXISTS idx_flags_ts ON flags(ts);
"""



def _schema_v3(conn: sqlite3.Connection) -> None:
    """v3: the per-day roll-ups the workbench reads (usage_log/daily.py), back-filled from the rows
    already logged (about a minute per million queries, once)."""
    for statement in daily.SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    daily.rebuild(conn)


_MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _schema_v3}


class LogStoreError(RuntimeError):
    """The log file cannot be used (newer schema, closed store)."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the file to SCHEMA_VERSION; several processes may race here, so it is one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = row[0] or 0
        if current > SCHEMA_VERSION:
            raise LogStoreError(
                f"usage log schema version {current} is newer than this code supports "
                f"({SCHEMA_VERSION}); upgrade kb_service"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            migration = _MIGRATIONS[version]
            if callable(migration):
                migration(conn)
            else:
                for statement in migration.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def schema_version(path: Path) -> int:
    """Version recorded in an existing log file (0 if it has none)."""
    conn = sqlite3.connect(str(path))
    try:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


class SQLiteLogStore(QueuedLogStore):
    """Single-file SQLite usage log with a background writer thread (`queued.QueuedLogStore`).

    Safe to share between threads. Several processes (uvicorn workers) may open the same file:
    WAL mode lets them write in turn while readers continue.
    """

    closed_error = LogStoreError

    def __init__(self, path: Path | str, *, max_batch: int = 1000) -> None:
        super().__init__(max_batch=max_batch)
        self.path = Path(path)
        self.name = f"usage log {self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        setup = _connect(self.path)
        try:
            setup.execute("PRAGMA journal_mode = WAL")
            _migrate(setup)
        finally:
            setup.close()
        self._reader = _connect(self.path)
        self._reader_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None  # the writer thread's own
        self._start_writer()

    # --- reads ------------------------------------------------------------------------

    def list_flags(self, article_id: str | None = None, limit: int = 100) -> list[StoredFlag]:
        """The editors' queue, newest first. Waits for what this process queued, so a flag raised
        a moment ago is listed."""
        self.flush()
        sql, args = flags_query(article_id, limit, "?")
        with self._reader_lock:
            self._check_open()
            rows = self._reader.execute(sql, args).fetchall()
        return [StoredFlag(*row) for row in rows]

    def _lookup(self, query_id: str) -> bool:
        with self._reader_lock:
            self._check_open()
            row = self._reader.execute("SELECT 1 FROM queries WHERE query_id = ?", (query_id,)).fetchone()
        return row is not None

    def _release(self) -> None:
        with self._reader_lock:
            self._reader.close()

    # --- writer thread ----------------------------------------------------------------

    def _writer_started(self) -> None:
        self._conn = _connect(self.path)

    def _writer_stopped(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _write(self, records: list[LogRecord]) -> None:
        conn = self._conn
        assert conn is not None
        try:
            self._write_transaction(conn, records)
        except Exception:
            # One bad record must not cost the whole batch: retry one by one and log what still fails.
            log.exception("usage log batch of %d failed; retrying record by record", len(records))
            for record in records:
                try:
                    self._write_transaction(conn, [record])
                except Exception:
                    log.exception("usage log record dropped: query_id=%s", record.query_id)

    def _write_transaction(self, conn: sqlite3.Connection, records: list[LogRecord]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # The day roll-ups change in the same transaction as the rows, so they never disagree.
            touched = {r.query_id for r in records if not isinstance(r, FlagLog)}
            daily.record_batch(conn, touched, lambda: {r.query_id for r in records if _insert(conn, r)})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _insert(conn: sqlite3.Connection, record: LogRecord) -> bool:
    """Write one record; True when it added a query (not a replayed one, nor another record)."""
    if isinstance(record, QueryLog):
        masked, normalised = scrub_query(record.query_text)
        cursor = conn.execute(
            "INSERT OR IGNORE INTO queries (query_id, ts, agent_id, session_id, query_masked, "
            "query_normalised, confident, n_hits, latency_ms, index_version, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.query_id,
                record.ts,
                record.agent_id,
                record.session_id,
                masked,
                normalised,
                int(record.confident),
                record.n_hits,
                record.latency_ms,
                record.index_version,
                record.source,
            ),
        )
        if cursor.rowcount == 1:  # a replayed query_id must not duplicate its impressions
            conn.executemany(
                "INSERT INTO impressions (query_id, rank, article_id, article_version, passage_id, score) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (record.query_id, i.rank, i.article_id, i.article_version, i.passage_id, i.score)
                    for i in record.impressions
                ],
            )
            return True
    elif isinstance(record, EventLog):
        conn.execute(
            "INSERT INTO events (query_id, ts, type, article_id) VALUES (?, ?, ?, ?)",
            (record.query_id, record.ts, record.type, record.article_id),
        )
    elif isinstance(record, FeedbackLog):
        comment = mask_personal_data(record.comment) if record.comment else record.comment
        conn.execute(
            "INSERT INTO feedback (query_id, ts, article_id, resolved, comment) VALUES (?, ?, ?, ?, ?)",
            (record.query_id, record.ts, record.article_id, int(record.resolved), comment),
        )
    elif isinstance(record, FlagLog):
        comment = mask_personal_data(record.comment) if record.comment else None
        conn.execute(
            "INSERT INTO flags (ts, article_id, article_version, reason, comment, query_id, agent_id, session_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record.ts, record.article_id, record.article_version, record.reason, comment,
             record.query_id, record.agent_id, record.session_id),
        )
    else:  # pragma: no cover - _put only accepts the four record types
        raise TypeError(f"not a usage log record: {record!r}")
    return False
