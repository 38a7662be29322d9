"""Copy a SQLite usage log into another backend (moving the embedded log to PostgreSQL).

Every row goes through the target store's normal write path (masking, partitions), so a copied
log reports the same numbers. Run it once into an empty log: a second run skips the queries
already there but would add their clicks and votes again (those have no key in the SQLite log).

    python -m kb_service.usage_log.transfer var/usage.sqlite3 postgresql://kb@db/kb
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

from kb_service.usage_log.store import (
    EventLog,
    FeedbackLog,
    FlagLog,
    Impression,
    LogRecord,
    QueryLog,
    open_log_store,
)

CHUNK = 5000


def _queries(conn: sqlite3.Connection) -> Iterator[QueryLog]:
    """Queries with their impressions, merged from two scans in query_id order."""
    impressions = conn.execute(
        "SELECT query_id, rank, article_id, article_version, passage_id, score FROM impressions "
        "ORDER BY query_id, rank"
    )
    pending = impressions.fetchone()
    # A log from before schema v2 has no source column: all its queries were typed.
    source = "source" if _has_table_column(conn, "queries", "source") else "'search'"
    for row in conn.cursor().execute(
        "SELECT query_id, ts, agent_id, session_id, query_masked, confident, n_hits, latency_ms, index_version, "
        f"{source} FROM queries ORDER BY query_id"
    ):
        query_id = row[0]
        shown: list[Impression] = []
        while pending is not None and pending[0] <= query_id:
            if pending[0] == query_id:
                shown.append(Impression(*pending[1:]))
            pending = impressions.fetchone()
        yield QueryLog(query_id, row[1], row[2], row[3], row[4] or "", bool(row[5]), row[6], row[7], row[8],
                       shown, row[9])


def _has_table_column(conn: sqlite3.Connection, table: str, column: str | None = None) -> bool:
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    return bool(columns) and (column is None or column in columns)


def read_sqlite_log(path: Path | str) -> Iterator[LogRecord]:
    """Every record of a SQLite usage log, queries first (events, feedback and flags refer to them).

    Events, votes and flags in id order: the target numbers its votes and flags in the order they
    arrive, and "the latest vote counts" breaks a tie on `ts` by that order."""
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        yield from _queries(conn)
        for query_id, ts, type_, article_id in conn.execute("SELECT query_id, ts, type, article_id FROM events ORDER BY id"):
            yield EventLog(query_id, article_id, type_, ts)
        for query_id, ts, article_id, resolved, comment in conn.execute(
            "SELECT query_id, ts, article_id, resolved, comment FROM feedback ORDER BY id"
        ):
            yield FeedbackLog(query_id, article_id, bool(resolved), comment, ts)
        if _has_table_column(conn, "flags"):
            for row in conn.execute(
                "SELECT article_id, article_version, reason, comment, ts, query_id, agent_id, session_id "
                "FROM flags ORDER BY id"
            ):
                yield FlagLog(*row)
    finally:
        conn.close()


def copy_log(source: Path | str, store: object) -> int:
    """Queue every record of `source` on `store` (flushed every CHUNK records); returns the count."""
    count = 0
    batch: list[LogRecord] = []
    for record in read_sqlite_log(source):
        batch.append(record)
        if len(batch) >= CHUNK:
            count += store.record_many(batch)  # type: ignore[attr-defined]
            store.flush()  # type: ignore[attr-defined]
            batch = []
    count += store.record_many(batch)  # type: ignore[attr-defined]
    store.flush()  # type: ignore[attr-defined]
    return count


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m kb_service.usage_log.transfer SOURCE.sqlite3 TARGET(postgresql://… or file)",
              file=sys.stderr)
        return 2
    store = open_log_store(args[1])
    try:
        count = copy_log(args[0], store)
    finally:
        store.close()
    print(f"copied {count:,} records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
