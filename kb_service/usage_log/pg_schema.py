"""Schema of the PostgreSQL usage log: versioned migrations and monthly partitions.

The tables and columns are those of the SQLite log (`sqlite.py`), so an analyst's query means the
same on both; PostgreSQL adds what a shared, long-lived log needs:

* `queries`, `impressions`, `events`, `feedback` and `flags` are range-partitioned by month on `ts` (unix
  seconds, UTC months), so a month is dropped or archived as one table. `impressions` carries its
  query's `ts` for that (the SQLite table has no `ts`).
* A partitioned table's unique key must contain the partition key, so a query is keyed by
  `(query_id, ts)`. A query id is a fresh uuid4 per search and a replayed record (a batch retried
  after a lost commit acknowledgement) carries the same `ts`, so the key catches every replay.
  Events and feedback get a uuid `id` from the store for the same reason (SQLite: an integer).
* Partitions are created on demand for the months a batch writes (and the current and next month
  at start-up). There is no DEFAULT partition: a row it held would block creating its month's
  partition later; a write to a month without a partition fails, and the writer creates the
  partition and retries.

Migrations are a list of statements per version, recorded in `schema_migrations`; several
replicas starting at once serialise on an advisory lock. Never edit an applied migration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

SCHEMA_VERSION = 3
PARTITIONED_TABLES = ("queries", "impressions", "events", "feedback", "flags")
# Advisory lock keys (any constant bigint unique to this application).
MIGRATION_LOCK = 0x6B62_6C6F_6701
PARTITION_LOCK = 0x6B62_6C6F_6702

_V1 = [
    """CREATE TABLE IF NOT EXISTS queries (
        query_id TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        agent_id TEXT,
        session_id TEXT,
        query_masked TEXT,
        query_normalised TEXT,
        confident INTEGER,
        n_hits INTEGER,
        latency_ms DOUBLE PRECISION,
        index_version TEXT,
        PRIMARY KEY (query_id, ts)
    ) PARTITION BY RANGE (ts)""",
    """CREATE TABLE IF NOT EXISTS impressions (
        query_id TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        rank INTEGER,
        article_id TEXT,
        article_version INTEGER,
        passage_id TEXT,
        score DOUBLE PRECISION
    ) PARTITION BY RANGE (ts)""",
    """CREATE TABLE IF NOT EXISTS events (
        id UUID NOT NULL,
        query_id TEXT,
        ts DOUBLE PRECISION NOT NULL,
        type TEXT,
        article_id TEXT,
        PRIMARY KEY (id, ts)
    ) PARTITION BY RANGE (ts)""",
    """CREATE TABLE IF NOT EXISTS feedback (
        id UUID NOT NULL,
        query_id TEXT,
        ts DOUBLE PRECISION NOT NULL,
        article_id TEXT,
        resolved INTEGER,
        comment TEXT,
        PRIMARY KEY (id, ts)
    ) PARTITION BY RANGE (ts)""",
    # Indexes on a partitioned table are created on every partition, present and future.
    "CREATE INDEX IF NOT EXISTS idx_queries_ts ON queries (ts)",
    "CREATE INDEX IF NOT EXISTS idx_impressions_query ON impressions (query_id)",
    "CREATE INDEX IF NOT EXISTS idx_impressions_article ON impressions (article_id)",
    "CREATE INDEX IF NOT EXISTS idx_events_query ON events (query_id)",
    "CREATE INDEX IF NOT EXISTS idx_events_article ON events (article_id)",
    "CREATE INDEX IF NOT EXISTS idx_feedback_query ON feedback (query_id)",
    "CREATE INDEX IF NOT EXISTS idx_feedback_article ON feedback (article_id)",
]

# v2 (SQLite's v2, `sqlite.py`): where a query came from ('search' | 'conversation') and the editors'
# queue of flagged articles. Like SQLite's, `flags.id` is an integer in insertion order (what
# `StoredFlag.id` and the API show); `record_id` is the uuid fixed per batch that makes a replayed
# batch add nothing (the partitioned table's key must contain `ts`). `feedback.seq` is the insertion
# order SQLite's integer id gives for free: "the latest vote counts" breaks a tie on `ts` with it.
# The flags partitions of months logged before v2 are created at start-up (`create_partitions`).
_V2 = [
    "ALTER TABLE queries ADD COLUMN IF NOT EXISTS source TEXT NOT NULL DEFAULT 'search'",
    "CREATE SEQUENCE IF NOT EXISTS feedback_seq",
    "ALTER TABLE feedback ADD COLUMN IF NOT EXISTS seq BIGINT NOT NULL DEFAULT nextval('feedback_seq')",
    "CREATE SEQUENCE IF NOT EXISTS flags_id_seq",
    """CREATE TABLE IF NOT EXISTS flags (
        record_id UUID NOT NULL,
        id BIGINT NOT NULL DEFAULT nextval('flags_id_seq'),
        ts DOUBLE PRECISION NOT NULL,
        article_id TEXT,
        article_version INTEGER,
        reason TEXT,
        comment TEXT,
        query_id TEXT,
        agent_id TEXT,
        session_id TEXT,
        PRIMARY KEY (record_id, ts)
    ) PARTITION BY RANGE (ts)""",
    "CREATE INDEX IF NOT EXISTS idx_flags_article ON flags (article_id)",
    "CREATE INDEX IF NOT EXISTS idx_flags_ts ON flags (ts)",
]

# v3: what each query showed, summarised on its own row by the writer (`postgres._shown_summary`):
# one element per distinct (article, version) among its impressions, with that pair's impression
# count and rank sum (NULL when every rank is NULL, like SUM); articles in first-shown order, an
# article's newest version first (its first element is what a click or vote on it refers to).
# The report's article and gap figures then read the period's queries alone instead of joining
# ~5 impressions per query (issue #18).
# The migration back-fills every query logged before (one pass over impressions: minutes on a
# 10M-query log, once, under the migration lock); a query without impressions gets empty arrays.
# NULL means "not summarised" (written by a replica still running older code): the report reader
# summarises such rows from `impressions` itself.
SHOWN_COLUMNS = ("shown_articles", "shown_versions", "shown_impressions", "shown_rank_sums")
# The summary of `{impressions}` (a FROM item holding impressions as `i`) per query: what the writer
# computes in Python, in SQL. Used by the migration and by the report reader for unsummarised rows.
SUMMARISE_SHOWN = """SELECT query_id, ts, array_agg(article_id ORDER BY article_rank, article_version DESC NULLS LAST) AS a,
        array_agg(article_version ORDER BY article_rank, article_version DESC NULLS LAST) AS v,
        array_agg(n ORDER BY article_rank, article_version DESC NULLS LAST) AS n,
        array_agg(r ORDER BY article_rank, article_version DESC NULLS LAST) AS r
    FROM (SELECT i.query_id, i.ts, i.article_id, i.article_version, COUNT(*)::int AS n, SUM(i.rank)::int AS r,
                 MIN(MIN(i.rank)) OVER (PARTITION BY i.query_id, i.ts, i.article_id) AS article_rank
          FROM {impressions} GROUP BY i.query_id, i.ts, i.article_id, i.article_version) pairs
    GROUP BY query_id, ts"""
_V3 = [
    *(f"ALTER TABLE queries ADD COLUMN IF NOT EXISTS {column} {kind}[]"
      for column, kind in zip(SHOWN_COLUMNS, ("TEXT", "INTEGER", "INTEGER", "INTEGER"), strict=True)),
    f"UPDATE queries q SET ({', '.join(SHOWN_COLUMNS)}) = (s.a, s.v, s.n, s.r) "
    f"FROM ({SUMMARISE_SHOWN.format(impressions='impressions i')}) s WHERE q.query_id = s.query_id AND q.ts = s.ts",
    f"UPDATE queries SET ({', '.join(SHOWN_COLUMNS)}) = ('{{}}', '{{}}', '{{}}', '{{}}') WHERE shown_articles IS NULL",
    # Empty unless an older replica writes: the report asks it whether its period needs summarising.
    "CREATE INDEX IF NOT EXISTS idx_queries_unsummarised ON queries (ts) WHERE shown_articles IS NULL",
]

MIGRATIONS: dict[int, list[str]] = {1: _V1, 2: _V2, 3: _V3}


class SchemaError(RuntimeError):
    """The database holds a newer schema than this code knows."""


def migrate(conn: Any) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction; returns the version found before.

    `conn` is a psycopg connection in autocommit mode. Replicas racing here wait for each other
    on an advisory lock, so each migration runs exactly once.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise SchemaError(
                f"usage log schema version {current} is newer than this code supports ({SCHEMA_VERSION}); "
                "upgrade kb_service"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
    return int(current)


def month_start(ts: float) -> dt.date:
    """First day (UTC) of the month holding unix time `ts`."""
    day = dt.datetime.fromtimestamp(ts, dt.UTC)
    return dt.date(day.year, day.month, 1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _epoch(month: dt.date) -> float:
    return dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC).timestamp()


def partition_name(table: str, month: dt.date) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


def create_partitions(conn: Any, months: Iterable[dt.date]) -> None:
    """Create the partitioned tables' partitions for `months` (existing ones are left alone).

    One transaction under an advisory lock: two replicas writing the first record of a month at
    the same moment would otherwise race on CREATE TABLE IF NOT EXISTS (which is not atomic).
    """
    wanted = sorted(set(months))
    if not wanted:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
        for month in wanted:
            low, high = _epoch(month), _epoch(next_month(month))
            for table in PARTITIONED_TABLES:
                # Names and bounds come from integers formatted here, never from input.
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(table, month)} PARTITION OF {table} "
                    f"FOR VALUES FROM ({low!r}) TO ({high!r})"
                )


def existing_months(conn: Any) -> set[dt.date]:
    """Months that have a `queries` partition (the tables' partitions are created together; a log
    migrated from v1 gets its `flags` partitions for these months at start-up)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'queries'"
    ).fetchall()
    months = set()
    for (name,) in rows:
        try:
            year, month = name.rsplit("_y", 1)[1].split("m")
            months.add(dt.date(int(year), int(month), 1))
        except (IndexError, ValueError):
            continue  # a partition an operator attached by hand: its bounds are its own business
    return months
