"""The PostgreSQL usage log: one log shared by every replica, in the database analysts already query.

Chosen by `KB_LOG_DB=postgresql://…` (`open_log_store`). Writing is off the request path exactly
as with SQLite (`queued.QueuedLogStore`): a background thread commits batches through a psycopg 3
connection pool. Several replicas write the same tables at once:

* a query is inserted with ON CONFLICT DO NOTHING on its unique `(query_id, ts)` key, and its
  impressions only when that insert actually added the row, so a replayed batch duplicates
  nothing; events, feedback and flags carry a uuid fixed when the batch is formed, for the same reason;
* a lost connection (a PostgreSQL restart, a failover) retries the whole batch with back-off for
  `retry_seconds` before it gives up, so a short outage loses nothing either;
* monthly partitions are created on demand before a batch is written (`pg_schema`).

Query text and comments are masked here, like in every backend (`scrub_query`, `mask_personal_data`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any

from kb_service.masking import mask_personal_data
from kb_service.usage_log.pg_schema import (
    create_partitions,
    existing_months,
    migrate,
    month_start,
    next_month,
)
from kb_service.usage_log.queued import QueuedLogStore
from kb_service.usage_log.store import (
    EventLog,
    FeedbackLog,
    FlagLog,
    Impression,
    LogRecord,
    QueryLog,
    StoredFlag,
    flags_query,
    scrub_query,
)

log = logging.getLogger(__name__)

URL_PREFIXES = ("postgresql://", "postgres://")


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(URL_PREFIXES)


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://…"
    host = parts.get("host", "")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{parts.get('user', '')}@{host}{port}/{parts.get('dbname', '')}"


# The shown-summary arrays (schema v3) travel as array literals, one text per query: unnest would
# flatten an array of arrays.
_INSERT_QUERIES = (
    "INSERT INTO queries (query_id, ts, agent_id, session_id, query_masked, query_normalised, confident, "
    "n_hits, latency_ms, index_version, source, shown_articles, shown_versions, shown_impressions, shown_rank_sums) "
    "SELECT c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12::text[], c13::int[], c14::int[], c15::int[] "
    "FROM unnest(%s::text[], %s::float8[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[], %s::int[], "
    "%s::float8[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
    "AS u(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15) "
    "ON CONFLICT DO NOTHING RETURNING query_id, ts"
)
_COPY_IMPRESSIONS = (
    "COPY impressions (query_id, ts, rank, article_id, article_version, passage_id, score) FROM STDIN"
)
_INSERT_EVENTS = (
    "INSERT INTO events (id, query_id, ts, type, article_id) "
    "SELECT * FROM unnest(%s::uuid[], %s::text[], %s::float8[], %s::text[], %s::text[]) ON CONFLICT DO NOTHING"
)
_INSERT_FEEDBACK = (
    "INSERT INTO feedback (id, query_id, ts, article_id, resolved, comment) "
    "SELECT * FROM unnest(%s::uuid[], %s::text[], %s::float8[], %s::text[], %s::int[], %s::text[]) "
    "ON CONFLICT DO NOTHING"
)
# unnest keeps the batch's order, so `feedback.seq` and `flags.id` follow the order records were made.
_INSERT_FLAGS = (
    "INSERT INTO flags (record_id, ts, article_id, article_version, reason, comment, query_id, agent_id, "
    "session_id) SELECT * FROM unnest(%s::uuid[], %s::float8[], %s::text[], %s::int[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::text[]) ON CONFLICT DO NOTHING"
)


def _array_literal(values: list[Any]) -> str:
    """A PostgreSQL array literal: every element quoted (backslash and quote escaped), NULL bare."""
    def element(value: Any) -> str:
        if value is None:
            return "NULL"
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(element(v) for v in values) + "}"


def _shown_summary(impressions: list[Impression]) -> tuple[str, str, str, str]:
    """What a query showed, per distinct (article, version): the article, the version, how many
    impressions and their rank sum (None when no rank is known, as SQL's SUM).

    Written on the query's row (schema v3) so that the report counts shown queries, impressions and
    distinct texts per article from the queries alone; a query showing two passages of one article
    is one element with two impressions. Articles come in the order they were first shown; an article
    shown in several versions lists its newest first, so that the first element of an article holds
    the version a click or vote on it refers to (`pg_schema.SUMMARISE_SHOWN` orders alike)."""
    pairs: dict[tuple[str, int | None], list[Any]] = {}
    first_shown: dict[str, int] = {}
    for i in sorted(impressions, key=lambda i: (i.rank is None, i.rank or 0)):
        first_shown.setdefault(i.article_id, len(first_shown))
        slot = pairs.setdefault((i.article_id, i.article_version), [0, None])
        slot[0] += 1
        if i.rank is not None:
            slot[1] = (slot[1] or 0) + i.rank
    order = sorted(pairs, key=lambda k: (first_shown[k[0]], k[1] is None, -(k[1] or 0)))
    return (_array_literal([a for a, _ in order]), _array_literal([v for _, v in order]),
            _array_literal([pairs[k][0] for k in order]), _array_literal([pairs[k][1] for k in order]))


def _columns(rows: list[tuple]) -> list[list[Any]]:
    """Row tuples → one list per column (what unnest takes)."""
    return [list(col) for col in zip(*rows, strict=True)]


class PostgresLogStore(QueuedLogStore):
    """PostgreSQL usage log with a background writer; safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        max_batch: int = 1000,
        pool_size: int = 4,
        retry_seconds: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        from psycopg_pool import ConnectionPool

        super().__init__(max_batch=max_batch)
        self.url = url
        self.name = f"usage log {redact_url(url)}"
        self.retry_seconds = retry_seconds
        self._pool = ConnectionPool(
            url, min_size=1, max_size=max(2, pool_size), kwargs={"autocommit": True}, open=False,
            name="kb-usage-log", timeout=connect_timeout,
        )
        self._pool.open(wait=True, timeout=connect_timeout)
        try:
            with self._pool.connection() as conn:
                migrate(conn)
                this_month = month_start(time.time())
                # The next month too, so the first searches after midnight need no DDL.
                # Every month already logged too: a log migrated from v1 has no `flags` partitions yet
                # (IF NOT EXISTS makes this a few catalogue look-ups otherwise).
                create_partitions(conn, existing_months(conn) | {this_month, next_month(this_month)})
                self._months: set[dt.date] = existing_months(conn)
        except BaseException:
            self._pool.close()
            raise
        self._start_writer()

    # --- reads ------------------------------------------------------------------------

    def _lookup(self, query_id: str) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT 1 FROM queries WHERE query_id = %s LIMIT 1", (query_id,)).fetchone()
        return row is not None

    def list_flags(self, article_id: str | None = None, limit: int = 100) -> list[StoredFlag]:
        """The editors' queue, newest first (as `SQLiteLogStore.list_flags`). Waits for what this
        process queued, so a flag raised a moment ago is listed."""
        self.flush()
        sql, args = flags_query(article_id, limit, "%s")
        with self._pool.connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [StoredFlag(*row) for row in rows]

    def _release(self) -> None:
        self._pool.close()

    # --- the writer -------------------------------------------------------------------

    def _write(self, records: list[LogRecord]) -> None:
        import psycopg

        # Ids are fixed once per batch: a retry after a lost commit acknowledgement is a replay.
        ids = [uuid.uuid4() if not isinstance(r, QueryLog) else None for r in records]
        deadline = time.monotonic() + self.retry_seconds
        pause = 0.2
        while True:
            try:
                self._write_batch(records, ids)
                return
            except psycopg.OperationalError:
                if time.monotonic() + pause > deadline:
                    # Still no database: trying record by record would only wait longer per record.
                    log.error("%s unreachable for %.0f s: %d records lost", self.name, self.retry_seconds,
                              len(records))
                    return
                log.warning("%s unreachable; retrying a batch of %d in %.1f s", self.name, len(records), pause)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
            except psycopg.errors.CheckViolation:
                # A month without a partition (one dropped by hand since we looked): look again.
                with self._pool.connection() as conn:
                    self._months = existing_months(conn)
                self._write_batch(records, ids)
                return
            except Exception:
                # One bad record must not cost the whole batch: record by record, logging what fails.
                log.exception("%s: batch of %d failed; retrying record by record", self.name, len(records))
                break
        for record, record_id in zip(records, ids, strict=True):
            try:
                self._write_batch([record], [record_id])
            except Exception:
                log.exception("%s: record dropped: query_id=%s", self.name, record.query_id)

    def _write_batch(self, records: list[LogRecord], ids: list[uuid.UUID | None]) -> None:
        with self._pool.connection() as conn:
            months = {month_start(r.ts) for r in records} - self._months
            if months:
                create_partitions(conn, months)
                self._months |= months
            with conn.transaction():
                _insert_records(conn, records, ids)


def _insert_records(conn: Any, records: list[LogRecord], ids: list[uuid.UUID | None]) -> None:
    queries = [r for r in records if isinstance(r, QueryLog)]
    if queries:
        rows = []
        for q in queries:
            masked, normalised = scrub_query(q.query_text)
            rows.append((q.query_id, q.ts, q.agent_id, q.session_id, masked, normalised, int(q.confident),
                         q.n_hits, q.latency_ms, q.index_version, q.source, *_shown_summary(q.impressions)))
        added = {(qid, ts) for qid, ts in conn.execute(_INSERT_QUERIES, _columns(rows)).fetchall()}
        with conn.cursor().copy(_COPY_IMPRESSIONS) as copy:
            for q in queries:
                if (q.query_id, q.ts) not in added:
                    continue  # already logged (a replay): its impressions are there too
                added.discard((q.query_id, q.ts))  # the same record twice in one batch
                for i in q.impressions:
                    copy.write_row((q.query_id, q.ts, i.rank, i.article_id, i.article_version, i.passage_id,
                                    i.score))
    events = [(rid, r.query_id, r.ts, r.type, r.article_id)
              for r, rid in zip(records, ids, strict=True) if isinstance(r, EventLog)]
    if events:
        conn.execute(_INSERT_EVENTS, _columns(events))
    feedback = [(rid, r.query_id, r.ts, r.article_id, int(r.resolved),
                 mask_personal_data(r.comment) if r.comment else r.comment)
                for r, rid in zip(records, ids, strict=True) if isinstance(r, FeedbackLog)]
    if feedback:
        conn.execute(_INSERT_FEEDBACK, _columns(feedback))
    flags = [(rid, r.ts, r.article_id, r.article_version, r.reason,
              mask_personal_data(r.comment) if r.comment else None, r.query_id, r.agent_id, r.session_id)
             for r, rid in zip(records, ids, strict=True) if isinstance(r, FlagLog)]
    if flags:
        conn.execute(_INSERT_FLAGS, _columns(flags))
