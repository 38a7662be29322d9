import sqlite3
import threading
import time
import unicodedata
from pathlib import Path

import pytest
from _service_fixtures import sqlite_rows

from kb_service.usage_log.sqlite import SCHEMA_VERSION, LogStoreError, SQLiteLogStore, schema_version
from kb_service.usage_log.store import EventLog, FeedbackLog, Impression, QueryLog, UsageLogStore


def _query(query_id: str, text: str = "三者险赔多少", n: int = 2) -> QueryLog:
    return QueryLog(
        query_id=query_id,
        ts=time.time(),
        agent_id="agent-7",
        session_id="sess-1",
        query_text=text,
        confident=True,
        n_hits=n,
        latency_ms=12.5,
        index_version="gen-001",
        impressions=[
            Impression(
                rank=r, article_id=f"art-{r}", article_version=1, passage_id=f"art-{r}#0", score=1.0 / r
            )
            for r in range(1, n + 1)
        ],
    )


_rows = sqlite_rows


def test_store_satisfies_protocol(tmp_path: Path) -> None:
    with SQLiteLogStore(tmp_path / "usage.sqlite3") as store:
        assert isinstance(store, UsageLogStore)


def test_query_lands_masked_and_normalised(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        store.record_query(_query("q1", "客户手机 13812345678，车牌粤B12345 三者险 赔多少？"))
    (row,) = _rows(db, "SELECT query_masked, query_normalised, confident, n_hits, agent_id FROM queries")
    assert row[0] == "客户手机 〔手机号〕，车牌〔车牌号〕 三者险 赔多少？"
    assert row[1] == "客户手机〔手机号〕车牌〔车牌号〕三者险赔多少"
    assert row[2:] == (1, 2, "agent-7")
    assert "13812345678" not in str(_rows(db, "SELECT * FROM queries"))
    impressions = _rows(db, "SELECT rank, article_id, passage_id FROM impressions ORDER BY rank")
    assert impressions == [(1, "art-1", "art-1#0"), (2, "art-2", "art-2#0")]


def test_events_and_feedback_land_with_masked_comment(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        store.record_query(_query("q1"))
        store.record_event("q1", "art-1", "open", ts=100.0)
        store.record_event("q1", "art-1", "copy")
        store.record_feedback("q1", None, False, comment="客户身份证110101199003071234 查不到")
        store.record_feedback("q1", "art-1", True)
    assert _rows(db, "SELECT query_id, ts, type, article_id FROM events ORDER BY id")[0] == (
        "q1",
        100.0,
        "open",
        "art-1",
    )
    assert [r[0] for r in _rows(db, "SELECT type FROM events ORDER BY id")] == ["open", "copy"]
    feedback = _rows(db, "SELECT article_id, resolved, comment FROM feedback ORDER BY id")
    assert feedback == [(None, 0, "客户身份证〔身份证号〕 查不到"), ("art-1", 1, None)]


# Personal data spaced and punctuated the ways a fuzzing pass found reaching the log in clear.
SEPARATED_PERSONAL_DATA = [
    "138\u200b1234\u200b5678",
    "139 1234  5678",
    "+86 137.1234.5678",
    "１５８／１２３４／５６７８",
    "110101-19900307-1234",
    "6222.0212.3456.7890",
    "6217 0012 3456 7890 123",
    "zhang.san @ qq。com",
    "粤·B 12345",
    "PDAA 2024 1100 0123 456",
    "LFV-2A21K0P3-012345",
]


def _separators_dropped(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isalnum()).lower()


def _every_stored_value(db: Path) -> list[str]:
    """Every cell of every table in the log file, as text."""
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [str(cell) for table in tables for row in conn.execute(f'SELECT * FROM "{table}"') for cell in row]
    finally:
        conn.close()


def test_separator_laden_personal_data_reaches_no_column(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    pasted = "，".join(SEPARATED_PERSONAL_DATA)
    with SQLiteLogStore(db) as store:
        store.record_query(_query("q1", f"客户资料：{pasted} 怎么改？"))
        store.record_feedback("q1", "art-1", False, comment=f"客户说 {pasted} 还是查不到")
        store.record_many([FeedbackLog("q1", None, True, f"备注：{pasted}", ts=6.0)])
    stored = _every_stored_value(db)
    assert any("〔手机号〕" in cell for cell in stored)  # the rows are there, masked
    for value in SEPARATED_PERSONAL_DATA:
        for cell in stored:
            assert value not in cell
            assert _separators_dropped(value) not in _separators_dropped(cell), (value, cell)


def test_normalised_query_is_masked_again_after_separators_are_dropped(tmp_path: Path) -> None:
    # Commas between the groups of a card that fails the Luhn check: not a card to the masker
    # (「2021、2022、2023、2024年」 must stay a list of years), until normalising joins the digits.
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        store.record_query(_query("q1", "卡号6222，0212，3456，7890 退款没到"))
    ((normalised,),) = _rows(db, "SELECT query_normalised FROM queries")
    assert normalised == "卡号〔银行卡号〕退款没到"


def test_unknown_event_type_is_rejected(tmp_path: Path) -> None:
    with (
        SQLiteLogStore(tmp_path / "usage.sqlite3") as store,
        pytest.raises(ValueError, match="unknown event type"),
    ):
        store.record_event("q1", "art-1", "print")  # type: ignore[arg-type]


def test_nothing_lost_with_many_concurrent_writers(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    store = SQLiteLogStore(db)
    threads_n, per_thread = 16, 150

    def agent(t: int) -> None:
        for i in range(per_thread):
            qid = f"t{t}-q{i}"
            store.record_query(_query(qid, n=3))
            store.record_event(qid, "art-1", "open")
            if i % 3 == 0:
                store.record_feedback(qid, "art-1", True)

    threads = [threading.Thread(target=agent, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()  # no flush first: close itself must drain the queue

    total = threads_n * per_thread
    assert _rows(db, "SELECT COUNT(*) FROM queries") == [(total,)]
    assert _rows(db, "SELECT COUNT(*) FROM impressions") == [(total * 3,)]
    assert _rows(db, "SELECT COUNT(*) FROM events") == [(total,)]
    assert _rows(db, "SELECT COUNT(*) FROM feedback") == [(threads_n * len(range(0, per_thread, 3)),)]


def test_has_query_sees_pending_and_written_ids(tmp_path: Path) -> None:
    with SQLiteLogStore(tmp_path / "usage.sqlite3") as store:
        # Hold the writer's lock so the record stays queued while we ask.
        blocker = sqlite3.connect(tmp_path / "usage.sqlite3")
        blocker.execute("BEGIN IMMEDIATE")
        try:
            store.record_query(_query("pending-1"))
            assert store.has_query("pending-1")
        finally:
            blocker.rollback()
            blocker.close()
        store.flush()
        assert store.has_query("pending-1")
        assert not store.has_query("never-seen")


def test_replayed_query_id_does_not_duplicate(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        store.record_query(_query("q1"))
        store.record_query(_query("q1"))
    assert _rows(db, "SELECT COUNT(*) FROM queries") == [(1,)]
    assert _rows(db, "SELECT COUNT(*) FROM impressions") == [(2,)]


def test_schema_version_wal_and_indexes(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    SQLiteLogStore(db).close()
    assert schema_version(db) == SCHEMA_VERSION
    assert _rows(db, "PRAGMA journal_mode") == [("wal",)]
    indexes = {r[0] for r in _rows(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {
        "idx_queries_ts",
        "idx_impressions_article",
        "idx_events_article",
        "idx_feedback_article",
    } <= indexes
    columns = [r[1] for r in _rows(db, "PRAGMA table_info(queries)")]
    assert columns == [
        "query_id",
        "ts",
        "agent_id",
        "session_id",
        "query_masked",
        "query_normalised",
        "confident",
        "n_hits",
        "latency_ms",
        "index_version",
        "source",  # schema v2: search or conversation
    ]


def test_reopen_existing_file_keeps_rows(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        store.record_query(_query("q1"))
    with SQLiteLogStore(db) as store:
        assert store.has_query("q1")
        store.record_query(_query("q2"))
    assert _rows(db, "SELECT query_id FROM queries ORDER BY query_id") == [("q1",), ("q2",)]
    # Each migration is recorded once; reopening runs none again.
    assert _rows(db, "SELECT version FROM schema_version") == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    SQLiteLogStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(LogStoreError, match="newer"):
        SQLiteLogStore(db)


def test_bulk_path_for_simulator(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        with store.batch():
            queued = store.record_many(
                [
                    _query("s1"),
                    EventLog("s1", "art-1", "copy", ts=5.0),
                    FeedbackLog("s1", "art-1", True, "好用", ts=6.0),
                ]
            )
        assert queued == 3
        # batch() flushed: rows are readable before close.
        assert _rows(db, "SELECT COUNT(*) FROM events") == [(1,)]
        assert _rows(db, "SELECT comment FROM feedback") == [("好用",)]


def test_closed_store_refuses_writes(tmp_path: Path) -> None:
    store = SQLiteLogStore(tmp_path / "usage.sqlite3")
    store.close()
    store.close()  # idempotent
    with pytest.raises(LogStoreError, match="closed"):
        store.record_query(_query("late"))
