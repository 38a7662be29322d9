"""The per-day roll-ups the writer keeps equal the ones computed from the raw rows, batch after batch."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from _daily_fixtures import write_tricky_log

from kb_service.usage_log import daily
from kb_service.usage_log.sqlite import _SCHEMA_V1, _SCHEMA_V2, SCHEMA_VERSION, SQLiteLogStore, schema_version


def _rollups(db: Path) -> dict[str, list[tuple]]:
    """Every roll-up table as the readers see it: rows summed per key, zero rows dropped."""
    conn = sqlite3.connect(db)
    found = {}
    for table, (keys, values) in daily._SUMMED.items():
        extra = ", MIN(first_ts), MAX(last_ts)" if table == "daily_queries" else ""
        extra += ", MIN(first_row), MIN(first_ts), MIN(first_ts_row)" if table == "daily_texts" else ""
        sums = ", ".join(f"SUM({v})" for v in values)
        found[table] = conn.execute(f"SELECT {', '.join(keys)}, {sums}{extra} FROM {table} GROUP BY {', '.join(keys)} "
                                    f"HAVING {' OR '.join(f'SUM({v}) != 0' for v in values)} "
                                    f"ORDER BY {', '.join(keys)}").fetchall()
    for table, keys in daily._PRESENCE.items():
        found[table] = conn.execute(f"SELECT DISTINCT {', '.join(keys)} FROM {table} ORDER BY {', '.join(keys)}").fetchall()
    for table in ("daily_resolving", "daily_gap_queries"):  # per-query rows for proposals
        found[table] = sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    conn.close()
    return found


def test_writer_keeps_the_rollups_equal_to_a_rebuild(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    write_tricky_log(db)
    kept = _rollups(db)
    assert all(kept[t] for t in ("daily_clicks", "daily_votes", "daily_gap_texts", "daily_resolving",
                                 "daily_gap_queries")), "the log exercises every table"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    assert daily.rebuild(conn, chunk=3) == 13  # small chunks: queries split across them
    conn.execute("COMMIT")
    conn.close()
    assert _rollups(db) == kept


def _gap_queries(db: Path) -> int:
    conn = sqlite3.connect(db)
    (n,) = conn.execute("SELECT SUM(queries) FROM daily_gap_texts").fetchone()
    conn.close()
    return n


def test_a_late_vote_takes_a_query_out_of_the_gaps_of_its_own_day(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    write_tricky_log(db)
    before = _gap_queries(db)
    with SQLiteLogStore(db) as store:  # q9 (not confident, voted 都没解决) is resolved much later
        store.record_feedback("q9", "art-a", True, ts=2e9)
    assert _gap_queries(db) == before - 1
    after = _rollups(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    daily.rebuild(conn)
    conn.execute("COMMIT")
    conn.close()
    assert _rollups(db) == after


def test_a_version_2_log_is_back_filled_by_the_migration(tmp_path: Path) -> None:
    fresh, old = tmp_path / "fresh.sqlite3", tmp_path / "old.sqlite3"
    write_tricky_log(fresh)
    conn = sqlite3.connect(old)
    conn.executescript(_SCHEMA_V1 + ";" + _SCHEMA_V2 + ";CREATE TABLE schema_version (version INTEGER NOT NULL);"
                       "INSERT INTO schema_version VALUES (1); INSERT INTO schema_version VALUES (2);")
    conn.execute("ATTACH ? AS f", (str(fresh),))
    for table in ("queries", "impressions", "events", "feedback", "flags"):
        conn.execute(f"INSERT INTO {table} SELECT * FROM f.{table}")
    conn.commit()
    conn.close()
    SQLiteLogStore(old).close()
    assert schema_version(old) == SCHEMA_VERSION == 3
    assert _rollups(old) == _rollups(fresh)
