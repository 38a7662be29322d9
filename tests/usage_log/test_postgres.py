"""The PostgreSQL usage log against a real PostgreSQL server (skipped, saying why, without one)."""

import datetime as dt
import threading
import time
import uuid

import pytest
from _pg_fixtures import pg_server, pg_url  # noqa: F401 - fixtures

from kb_service.settings import Settings
from kb_service.usage_log.pg_schema import MIGRATIONS, SCHEMA_VERSION, SchemaError
from kb_service.usage_log.postgres import PostgresLogStore, redact_url
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import FlagLog, Impression, QueryLog, UsageLogStore, open_log_store
from kb_service.usage_log.transfer import copy_log


def _query(query_id: str, text: str = "三者险赔多少", n: int = 2, ts: float | None = None) -> QueryLog:
    return QueryLog(
        query_id=query_id, ts=time.time() if ts is None else ts, agent_id="agent-7", session_id="sess-1",
        query_text=text, confident=True, n_hits=n, latency_ms=12.5, index_version="gen-001",
        impressions=[Impression(r, f"art-{r}", 1, f"art-{r}#0", 1.0 / r) for r in range(1, n + 1)],
    )


def _rows(url: str, sql: str, *args: object) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def test_url_selects_postgres_and_store_satisfies_protocol(pg_url: str) -> None:  # noqa: F811
    store = open_log_store(Settings(log_db=pg_url).log_db)
    try:
        assert isinstance(store, PostgresLogStore)
        assert isinstance(store, UsageLogStore)
    finally:
        store.close()
    assert "secret" not in redact_url("postgresql://kb:secret@db.example:5433/usage")


def test_query_events_feedback_land_masked(pg_url: str) -> None:  # noqa: F811
    with PostgresLogStore(pg_url) as store:
        store.record_query(_query("q1", "客户手机 13812345678，车牌粤B12345 三者险 赔多少？"))
        store.record_event("q1", "art-1", "open", ts=time.time())
        store.record_event("q1", "art-1", "copy")
        store.record_feedback("q1", None, False, comment="客户身份证110101199003071234 查不到")
        store.record_feedback("q1", "art-1", True)
    (row,) = _rows(pg_url, "SELECT query_masked, query_normalised, confident, n_hits, agent_id FROM queries")
    assert row == ("客户手机 〔手机号〕，车牌〔车牌号〕 三者险 赔多少？", "客户手机〔手机号〕车牌〔车牌号〕三者险赔多少",
                   1, 2, "agent-7")
    everything = str(_rows(pg_url, "SELECT * FROM queries")) + str(_rows(pg_url, "SELECT * FROM feedback"))
    assert "13812345678" not in everything and "110101199003071234" not in everything
    assert _rows(pg_url, "SELECT rank, article_id FROM impressions ORDER BY rank") == [(1, "art-1"), (2, "art-2")]
    assert sorted(_rows(pg_url, "SELECT type FROM events")) == [("copy",), ("open",)]
    assert sorted(_rows(pg_url, "SELECT article_id, resolved, comment FROM feedback"), key=str) == [
        ("art-1", 1, None), (None, 0, "客户身份证〔身份证号〕 查不到")]


def test_migrations_are_versioned_and_run_once(pg_url: str) -> None:  # noqa: F811
    PostgresLogStore(pg_url).close()
    PostgresLogStore(pg_url).close()
    assert _rows(pg_url, "SELECT version FROM schema_migrations ORDER BY version") == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)]
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaError, match="newer"):
        PostgresLogStore(pg_url)


def test_each_month_gets_its_partition_on_demand(pg_url: str) -> None:  # noqa: F811
    old = dt.datetime(2020, 1, 31, 23, 59, tzinfo=dt.UTC).timestamp()
    future = dt.datetime(2031, 5, 1, 0, 0, tzinfo=dt.UTC).timestamp()
    with PostgresLogStore(pg_url) as store:
        store.record_query(_query("old", ts=old))
        store.record_query(_query("future", ts=future))
        store.record_event("old", "art-1", "open", ts=future)  # a click months after its search
    assert sorted(_rows(pg_url, "SELECT query_id, tableoid::regclass::text FROM queries")) == [
        ("future", "queries_y2031m05"), ("old", "queries_y2020m01")]
    assert _rows(pg_url, "SELECT DISTINCT tableoid::regclass::text FROM impressions WHERE query_id = 'old'") == [
        ("impressions_y2020m01",)]
    assert _rows(pg_url, "SELECT tableoid::regclass::text FROM events") == [("events_y2031m05",)]
    parents = _rows(pg_url, "SELECT relname FROM pg_class WHERE relkind = 'p' ORDER BY relname")
    assert parents == [("events",), ("feedback",), ("flags",), ("impressions",), ("queries",)]


def test_replicas_writing_at_once_lose_and_duplicate_nothing(pg_url: str) -> None:  # noqa: F811
    """Two stores (two replicas) write 2 × 600 searches concurrently, and each also replays the
    other's first 200 records (a batch retried after a lost commit): every search once, with its
    impressions once."""
    stores = [PostgresLogStore(pg_url, max_batch=50), PostgresLogStore(pg_url, max_batch=50)]
    base = time.time()
    mine = [[_query(f"r{r}-{i}", ts=base + i * 1e-3, n=3) for i in range(600)] for r in range(2)]

    def write(r: int) -> None:
        for i, entry in enumerate(mine[r]):
            stores[r].record_query(entry)
            if i < 200:
                stores[r].record_query(mine[1 - r][i])

    threads = [threading.Thread(target=write, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in stores:
        store.close()
    assert _rows(pg_url, "SELECT COUNT(*), COUNT(DISTINCT query_id) FROM queries") == [(1200, 1200)]
    assert _rows(pg_url, "SELECT COUNT(*) FROM impressions") == [(3600,)]
    assert _rows(pg_url, "SELECT COUNT(*) FROM (SELECT query_id, rank FROM impressions GROUP BY 1, 2 "
                         "HAVING COUNT(*) > 1) d") == [(0,)]


def test_has_query_sees_queued_and_committed_ids_and_close_drains(pg_url: str) -> None:  # noqa: F811
    store = PostgresLogStore(pg_url)
    ids = [uuid.uuid4().hex for _ in range(2000)]
    store.record_many(_query(qid) for qid in ids)
    assert store.has_query(ids[-1])  # queued or committed, never neither
    assert not store.has_query("never-searched")
    store.close()  # at once: everything still queued is written first
    assert _rows(pg_url, "SELECT COUNT(*) FROM queries") == [(2000,)]
    other = PostgresLogStore(pg_url)  # another replica sees them in the database
    try:
        assert other.has_query(ids[0]) and other.has_query(ids[-1])
    finally:
        other.close()


def test_writer_survives_a_database_restart(pg_server, pg_url: str) -> None:  # noqa: F811
    """Records written while PostgreSQL restarts are retried until it is back, not dropped."""
    store = PostgresLogStore(pg_url, retry_seconds=60)
    try:
        store.record_query(_query("before"))
        store.flush()
        pg_server.pause()
        try:
            store.record_query(_query("during"))
            time.sleep(1.0)  # the writer meets a dead connection, then a refused one, and keeps retrying
        finally:
            pg_server.resume()
        store.flush()
    finally:
        store.close()
    assert sorted(_rows(pg_url, "SELECT query_id FROM queries")) == [("before",), ("during",)]


def test_a_month_whose_partition_was_dropped_is_recreated(pg_url: str) -> None:  # noqa: F811
    """The store's list of partitions can be stale (an operator dropped a month): the insert fails
    with no partition for the row, the store looks again, creates it and writes the batch."""
    import psycopg

    ts = dt.datetime(2024, 2, 10, tzinfo=dt.UTC).timestamp()
    with PostgresLogStore(pg_url) as store:
        store.record_query(_query("first", ts=ts))
        store.flush()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for table in ("queries", "impressions", "events", "feedback"):
                conn.execute(f"DROP TABLE {table}_y2024m02")
        store.record_query(_query("second", ts=ts + 60))
        store.record_feedback("second", None, True, ts=ts + 90)
    assert _rows(pg_url, "SELECT query_id, tableoid::regclass::text FROM queries") == [("second", "queries_y2024m02")]
    assert _rows(pg_url, "SELECT COUNT(*) FROM feedback") == [(1,)]


def _flag(article_id: str, ts: float, comment: str | None = None, reason: str = "wrong") -> FlagLog:
    return FlagLog(article_id, 3, reason, comment, ts, query_id="q1", agent_id="agent-7", session_id="sess-1")


def test_source_and_flags_land_masked_and_list_newest_first(pg_url: str) -> None:  # noqa: F811
    base = dt.datetime(2026, 3, 31, 23, 0, tzinfo=dt.UTC).timestamp()  # flags in two months
    with PostgresLogStore(pg_url) as store:
        store.record_query(_query("typed"))
        store.record_query(QueryLog("heard", time.time(), "agent-7", "sess-1", "续保怎么办", True, 0, 1.0, "gen-001",
                                    source="conversation"))
        store.record_flag(_flag("art-1", base, "客户手机13812345678打来说金额不对"))
        store.record_flag(_flag("art-2", base + 7200, None, "outdated"))
        store.record_flag(_flag("art-1", base + 3600))
        store.record_flag(_flag("art-1", base + 3600))  # the same second: the later one lists first
        listed = store.list_flags()  # flushes first: what was just queued is listed
        only_art2 = store.list_flags("art-2")
        limited = store.list_flags("art-1", limit=2)
    assert sorted(_rows(pg_url, "SELECT query_id, source FROM queries")) == [("heard", "conversation"),
                                                                              ("typed", "search")]
    assert [(f.article_id, f.ts) for f in listed] == [("art-2", base + 7200), ("art-1", base + 3600),
                                                       ("art-1", base + 3600), ("art-1", base)]
    assert listed[1].id > listed[2].id and all(isinstance(f.id, int) for f in listed)
    assert listed[-1].comment == "客户手机〔手机号〕打来说金额不对"
    assert "13812345678" not in str(_rows(pg_url, "SELECT * FROM flags"))
    assert (listed[0].reason, listed[0].article_version, listed[0].query_id, listed[0].agent_id) == (
        "outdated", 3, "q1", "agent-7")
    assert [f.article_id for f in only_art2] == ["art-2"]
    assert [f.ts for f in limited] == [base + 3600, base + 3600]
    assert sorted(_rows(pg_url, "SELECT DISTINCT tableoid::regclass::text FROM flags")) == [
        ("flags_y2026m03",), ("flags_y2026m04",)]


def test_a_v1_log_is_migrated_in_place(pg_url: str) -> None:  # noqa: F811
    """A log created by the v1 code keeps its rows: they become typed searches, its months get
    flags partitions, and the v2 store writes flags into those months."""
    import psycopg

    old = dt.datetime(2025, 6, 15, tzinfo=dt.UTC).timestamp()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                     "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        for statement in MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations (version) VALUES (1)")
        for table in ("queries", "impressions", "events", "feedback"):
            conn.execute(f"CREATE TABLE {table}_y2025m06 PARTITION OF {table} FOR VALUES FROM ({old - 864000!r}) "
                         f"TO ({old + 864000!r})")
        conn.execute("INSERT INTO queries (query_id, ts, query_masked, confident, n_hits) "
                     "VALUES ('v1', %s, '三者险', 1, 0)", (old,))
        conn.execute("INSERT INTO feedback (id, query_id, ts, resolved) VALUES (gen_random_uuid(), 'v1', %s, 1)",
                     (old,))
    with PostgresLogStore(pg_url) as store:
        store.record_flag(_flag("art-9", old + 60))
        assert [f.article_id for f in store.list_flags()] == ["art-9"]
    assert _rows(pg_url, "SELECT query_id, source FROM queries") == [("v1", "search")]
    assert _rows(pg_url, "SELECT COUNT(*) FROM feedback WHERE seq IS NOT NULL") == [(1,)]
    assert _rows(pg_url, "SELECT version FROM schema_migrations ORDER BY version") == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert _rows(pg_url, "SELECT shown_articles, shown_impressions FROM queries") == [([], [])]  # v3: no impressions


def test_transfer_carries_source_and_flags(pg_url: str, tmp_path) -> None:  # noqa: F811
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        store.record_query(QueryLog("heard", 1_780_000_000.0, "agent-7", None, "续保", True, 0, 1.0, "gen-001",
                                    source="conversation"))
        store.record_query(_query("typed", ts=1_780_000_001.0))
        store.record_flag(_flag("art-1", 1_780_000_002.0, "身份证110101199003071234"))
        store.record_flag(_flag("art-2", 1_780_000_003.0, None, "other"))
    with PostgresLogStore(pg_url) as target:
        assert copy_log(db, target) == 4
        flags = target.list_flags()
    assert sorted(_rows(pg_url, "SELECT query_id, source FROM queries")) == [("heard", "conversation"),
                                                                              ("typed", "search")]
    assert [(f.article_id, f.reason, f.comment, f.session_id) for f in flags] == [
        ("art-2", "other", None, "sess-1"), ("art-1", "wrong", "身份证〔身份证号〕", "sess-1")]


def test_kb_flags_lists_a_postgres_log(pg_url: str) -> None:  # noqa: F811
    import json

    from typer.testing import CliRunner

    from kb_service.cli import app

    with PostgresLogStore(pg_url) as store:
        store.record_flag(_flag("art-1", time.time(), "金额不对"))
    result = CliRunner().invoke(app, ["flags", "--log-db", pg_url, "--json"])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert (row["article_id"], row["comment"], row["reason"]) == ("art-1", "金额不对", "wrong")


def test_each_query_row_summarises_what_it_showed(pg_url: str) -> None:  # noqa: F811
    """Schema v3: per distinct (article, version), in first-shown order with an article's newest
    version first: impressions and rank sum. Odd article ids survive the array literal."""
    odd = 'art "x",{y}\\z'
    shown = [("art-a", 1), ("art-a", 1), (odd, 3), ("art-a", 2), ("art-b", 1)]
    entry = QueryLog("two-passages", time.time(), "agent-7", "sess-1", "三者险赔多少", True, len(shown), 1.0, "gen-1",
                     [Impression(r, a, v, f"p{r}", 1.0) for r, (a, v) in enumerate(shown, 1)])
    with PostgresLogStore(pg_url) as store:
        store.record_query(entry)
        store.record_query(_query("no-hits", n=0))
    assert _rows(pg_url, "SELECT query_id, shown_articles, shown_versions, shown_impressions, shown_rank_sums "
                         "FROM queries ORDER BY query_id") == [
        ("no-hits", [], [], [], []),
        ("two-passages", ["art-a", "art-a", odd, "art-b"], [2, 1, 3, 1], [1, 2, 1, 1], [4, 3, 3, 5]),
    ]
    assert _rows(pg_url, "SELECT COUNT(*) FROM impressions") == [(5,)]
