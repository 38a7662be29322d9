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
