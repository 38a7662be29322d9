"""Reports on the PostgreSQL log equal reports on the SQLite log, section by section, for one simulated log."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from _pg_fixtures import PostgresServer, pg_server, pg_url  # noqa: F401 - fixtures

from kb_service.reports import build_report, report_to_json
from kb_service.reports.command import load_article_catalog
from kb_service.settings import Settings
from kb_service.usage_log.postgres import PostgresLogStore
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import FLAG_REASONS, FlagLog
from kb_service.usage_log.transfer import copy_log

ROOT = Path(__file__).resolve().parents[2]


def _simulator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("simulate_usage", ROOT / "scripts" / "simulate_usage.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulate_usage"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def both_logs(tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer) -> tuple[Path, str]:  # noqa: F811
    """6k simulated queries over 4 weeks spanning two months (two partitions), in SQLite and, copied
    record by record through the PostgreSQL store, in PostgreSQL."""
    sim = _simulator()
    db = tmp_path_factory.mktemp("sim") / "usage.sqlite3"
    sim.simulate(db, sim.SimConfig(queries=6_000, agents=25, days=28, seed=5), ROOT / "articles")
    _add_what_the_simulator_does_not_write(db)
    url = pg_server.create_database()
    with PostgresLogStore(url) as store:
        copy_log(db, store)
    return db, url


def _add_what_the_simulator_does_not_write(db: Path) -> None:
    """Conversation-sourced queries, contradictory votes (later and same-second) and flags with
    masked, multi-line and missing comments, written through the SQLite store."""
    import random
    import sqlite3

    rng = random.Random(11)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE queries SET source = 'conversation' WHERE rowid % 7 = 3")
    voted = conn.execute(
        "SELECT f.query_id, f.ts, f.article_id, f.resolved, (SELECT i.article_id FROM impressions i "
        "WHERE i.query_id = f.query_id ORDER BY i.rank LIMIT 1) FROM feedback f ORDER BY f.id LIMIT 400").fetchall()
    queries = conn.execute("SELECT query_id, ts, agent_id, session_id FROM queries ORDER BY ts").fetchall()
    conn.close()
    assert len(voted) == 400
    with SQLiteLogStore(db) as store:
        for n, (query_id, ts, article_id, resolved, first_shown) in enumerate(voted):
            later = ts if n % 4 == 0 else ts + rng.randint(1, 600)  # every 4th: the same second
            if n % 3 == 0:  # the other way round, on the same article or list-wide
                store.record_feedback(query_id, article_id, not resolved, ts=later)
            elif n % 3 == 1:  # 都没解决 after 已解决, or 已解决 after 都没解决
                store.record_feedback(query_id, None if resolved else first_shown, not resolved, ts=later)
            else:  # the same vote again, then changed back
                store.record_feedback(query_id, article_id, bool(resolved), ts=later)
                store.record_feedback(query_id, article_id, not resolved, ts=later + 5)
        articles = sorted({a for row in voted for a in (row[2], row[4]) if a})[:12]
        for n in range(150):
            query_id, ts, agent_id, session_id = queries[rng.randrange(len(queries))]
            comment = rng.choice([None, "金额写错了", "客户电话13812345678说\n流程已改", f"第{n}条：条款已更新"])
            store.record_flag(FlagLog(rng.choice(articles), rng.randint(1, 3), rng.choice(list(FLAG_REASONS)),
                                      comment, ts + (n % 5), query_id, agent_id, session_id))
        last = queries[-1]
        for comment in ("先标的", "同一秒后标的"):  # the same second: the later flag lists first
            store.record_flag(FlagLog(articles[0], 2, "wrong", comment, last[1], *last[0:1], *last[2:]))


def _sections(report: object) -> dict:
    data = report_to_json(report)  # type: ignore[arg-type]
    data.pop("generated_at", None)
    return data


@pytest.mark.parametrize("period", [(None, None), ("2026-11-01", "2026-11-15"), ("2026-10-29", "2026-10-29")])
def test_every_section_equal_on_sqlite_and_postgres(both_logs: tuple[Path, str], period: tuple) -> None:
    db, url = both_logs
    catalog = load_article_catalog(Settings(index_dir=ROOT / "no-index", articles_dir=ROOT / "articles"))
    on_sqlite = _sections(build_report(db, *period, article_catalog=catalog))
    on_postgres = _sections(build_report(url, *period, article_catalog=catalog))
    assert on_sqlite["summary"]["queries"] > 0
    assert on_sqlite["flags"], "the flags section is compared on real content"
    assert set(on_sqlite) == set(on_postgres)
    for section in on_sqlite:
        assert on_postgres[section] == on_sqlite[section], section


def test_copied_rows_match(both_logs: tuple[Path, str]) -> None:
    import sqlite3

    import psycopg

    db, url = both_logs
    conn = sqlite3.connect(db)
    with psycopg.connect(url) as pg:
        for table in ("queries", "impressions", "events", "feedback", "flags"):
            (expected,) = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            assert pg.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (expected,), table
    conn.close()


def test_unreadable_postgres_log_gives_an_empty_report_without_the_password(pg_url: str) -> None:  # noqa: F811
    report = build_report(pg_url)  # a database without the log's tables
    assert report.empty and "无法读取日志" in (report.message or "")
    closed = "postgresql://kb:s3cret@127.0.0.1:1/none"
    report = build_report(closed)
    assert report.empty and "s3cret" not in (report.message or "")


def test_kb_report_reads_a_postgres_url(both_logs: tuple[Path, str], tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from kb_service.cli import app

    db, url = both_logs
    outputs = {}
    for name, log in (("sqlite", str(db)), ("postgres", url)):
        result = CliRunner().invoke(app, ["report", "--log-db", log, "--format", "json", "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        data = json.loads((tmp_path / name / "report.json").read_text(encoding="utf-8"))
        data.pop("generated_at", None)
        outputs[name] = data
    assert outputs["postgres"]["summary"]["queries"] == 6_000
    assert outputs["postgres"] == outputs["sqlite"]


def test_kb_impact_reads_the_most_frequent_queries_from_postgres(both_logs: tuple[Path, str]) -> None:
    from kb_service.evaluation.impact import logged_queries

    db, url = both_logs
    on_sqlite, on_postgres = logged_queries(db, 50), logged_queries(url, 50)
    assert len(on_sqlite) == 50
    assert [(q.text, q.asked) for q in on_postgres] == [(q.text, q.asked) for q in on_sqlite]


# --- the shown summary (schema v3) on a hand-made log --------------------------------------------

DAY1 = 1_793_462_400.0  # 2026-11-01 00:00 UTC+8


def _edge_cases() -> list:
    """Queries whose figures the per-query summary must get exactly right: two passages of one
    article, one article in two versions, the same text with the same results twice, a query
    without hits, clicks on a never-shown article, votes replaced by later (and same-second) votes,
    and queries on both sides of a day boundary."""
    from kb_service.usage_log.store import EventLog, FeedbackLog, Impression, QueryLog

    def query(qid: str, ts: float, text: str, shown: list[tuple[str, int]], confident: bool = True) -> QueryLog:
        impressions = [Impression(r, a, v, f"{a}#{r}", 1.0 / r) for r, (a, v) in enumerate(shown, 1)]
        return QueryLog(qid, ts, "agent-1", f"s-{qid}", text, confident, len(shown), 9.0, "gen-1", impressions)

    late = DAY1 + 86_400 - 30  # 23:59:30 on day 1
    return [
        query("q1", DAY1 + 36_000, "三者险赔多少", [("art-a", 1), ("art-a", 1), ("art-b", 2)]),
        query("q2", late, "三者险赔多少钱", [("art-a", 2), ("art-c", 1), ("art-a", 1)], confident=False),
        query("q3", late + 60, "三者险赔多少", [("art-a", 1), ("art-a", 1), ("art-b", 2)]),
        query("q4", late + 120, "退保手续费", [], confident=False),
        query("q5", late + 180, "三者险赔多少", [("art-b", 2)], confident=False),
        EventLog("q1", "art-a", "open", DAY1 + 36_010),
        EventLog("q1", "art-a", "open", DAY1 + 36_020),
        EventLog("q1", "art-b", "copy", DAY1 + 36_030),
        EventLog("q2", "art-a", "open", late + 5),  # version 2: the newest it showed
        EventLog("q2", "art-z", "open", late + 6),  # never shown: no version
        EventLog("q3", "art-a", "copy", late + 65),
        FeedbackLog("q1", "art-a", True, None, DAY1 + 36_040),
        FeedbackLog("q1", "art-a", False, "其实没解决", DAY1 + 36_050),  # replaces the 已解决
        FeedbackLog("q2", None, False, None, late + 10),
        FeedbackLog("q2", "art-c", True, None, late + 20),  # 已解决 replaces 都没解决
        FeedbackLog("q3", "art-b", True, None, late + 70),
        FeedbackLog("q3", "art-b", False, None, late + 70),  # the same second: the later record counts
        FeedbackLog("q5", None, False, None, late + 200),
    ]


@pytest.fixture()
def edge_logs(tmp_path: Path, pg_url: str) -> tuple[Path, str]:  # noqa: F811
    db = tmp_path / "usage.sqlite3"
    records = _edge_cases()
    with SQLiteLogStore(db) as store:
        store.record_many(records)
    with PostgresLogStore(pg_url) as store:
        store.record_many(records)
    return db, pg_url


EDGE_PERIODS = [(None, None), ("2026-11-01", "2026-11-01"), ("2026-11-02", "2026-11-02"),
                ("2026-11-01T23:59", "2026-11-02T00:01")]


def _assert_equal_sections(db: Path, url: str) -> None:
    for period in EDGE_PERIODS:
        on_sqlite = _sections(build_report(db, *period, all_article_ids=["art-a", "art-b", "art-c", "art-d"]))
        on_postgres = _sections(build_report(url, *period, all_article_ids=["art-a", "art-b", "art-c", "art-d"]))
        assert on_sqlite["summary"]["queries"] > 0, period
        for section in on_sqlite:
            assert on_postgres[section] == on_sqlite[section], (period, section)


def test_edge_cases_equal_on_sqlite_and_postgres(edge_logs: tuple[Path, str]) -> None:
    db, url = edge_logs
    _assert_equal_sections(db, url)
    report = build_report(url, all_article_ids=["art-a", "art-b", "art-c", "art-d"])
    a1 = next(v for v in report.article_versions if (v.article_id, v.version) == ("art-a", 1))
    # q1 and q3 show two passages each, q2 one: 5 impressions, 3 queries, 2 texts.
    assert (a1.impressions, a1.shown_queries, a1.shown_texts) == (5, 3, 2)
    a2 = next(v for v in report.article_versions if (v.article_id, v.version) == ("art-a", 2))
    assert (a2.impressions, a2.shown_queries, a2.open_queries) == (1, 1, 1)  # q2's open counts for v2
    assert [(v.version, v.opens, v.open_queries) for v in report.article_versions
            if v.article_id == "art-z"] == [(None, 1, 0)]


def test_rows_without_a_summary_are_summarised_by_the_reader(edge_logs: tuple[Path, str]) -> None:
    """Queries written by a replica running code before v3 have no summary: the report is the same."""
    import psycopg

    db, url = edge_logs
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE queries SET shown_articles = NULL, shown_versions = NULL, shown_impressions = NULL, "
                     "shown_rank_sums = NULL WHERE query_id IN ('q1', 'q2', 'q4')")
    _assert_equal_sections(db, url)


def test_a_log_before_v3_reports_the_same_before_and_after_its_migration(edge_logs: tuple[Path, str]) -> None:
    """Without the summary columns (a v2 log read before any v3 replica started) the reader
    summarises every query; the migration back-fills the same summaries the store writes."""
    import psycopg

    from kb_service.usage_log.pg_schema import SHOWN_COLUMNS

    db, url = edge_logs
    with psycopg.connect(url, autocommit=True) as conn:
        written = conn.execute("SELECT query_id, shown_articles, shown_versions, shown_impressions, shown_rank_sums "
                               "FROM queries ORDER BY query_id").fetchall()
        conn.execute("DROP INDEX idx_queries_unsummarised")
        for column in SHOWN_COLUMNS:
            conn.execute(f"ALTER TABLE queries DROP COLUMN {column}")
        conn.execute("DELETE FROM schema_migrations WHERE version = 3")
    _assert_equal_sections(db, url)
    with PostgresLogStore(url):  # migrates to v3, back-filling
        pass
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT query_id, shown_articles, shown_versions, shown_impressions, shown_rank_sums "
                            "FROM queries ORDER BY query_id").fetchall() == written
    _assert_equal_sections(db, url)
