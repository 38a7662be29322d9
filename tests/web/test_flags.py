"""Flags (内容有误/已过时) through the API, the `kb flags` command and the analyst report; the log
schema migration; and the 'latest vote counts' rule for contradictory feedback. Real SQLite files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _service_fixtures import BuiltCorpus, build_corpus_index, corpus_settings, settings_env, sqlite_rows
from fastapi.testclient import TestClient

from kb_service.reports import build_report, load_article_catalog
from kb_service.usage_log.sqlite import SCHEMA_VERSION, SQLiteLogStore, schema_version
from kb_service.usage_log.store import QueryLog
from kb_service.web.app import create_app

PHONE = "13812345678"
KEYS = {"agent_keys": "ag", "editor_keys": "ed", "analyst_keys": "an"}
AGENT = {"Authorization": "Bearer ag", "X-Agent-Id": "agent-9", "X-Session-Id": "chat-1"}
EDITOR = {"Authorization": "Bearer ed"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> BuiltCorpus:
    return build_corpus_index(tmp_path_factory.mktemp("flags-corpus"))


@pytest.fixture
def client(corpus: BuiltCorpus, tmp_path: Path) -> Iterator[TestClient]:
    settings = corpus_settings(corpus, tmp_path / "usage.sqlite3", **KEYS)
    with TestClient(create_app(settings, store=SQLiteLogStore(settings.log_db))) as c:
        c.settings = settings  # type: ignore[attr-defined]
        yield c


def _flag(client: TestClient, **body: object) -> object:
    return client.post("/api/flags", json={"article_id": "third-party", "reason": "outdated", **body}, headers=AGENT)


def test_a_flag_reaches_the_editor_queue_masked(client: TestClient) -> None:
    assert _flag(client, comment=f"限额已调整，客户电话 {PHONE}", article_version=1).status_code == 200
    assert _flag(client, reason="wrong").status_code == 200
    queue = client.get("/api/flags", headers=EDITOR)
    assert queue.status_code == 200, queue.text
    data = queue.json()
    assert data["count"] == 2
    newest, older = data["flags"]
    assert (newest["reason"], newest["reason_label"], newest["article_version"]) == ("wrong", "内容有误", 2)
    assert (older["reason_label"], older["article_version"], older["current_version"]) == ("已过时", 1, 2)
    assert older["article_title"] == "第三者责任险：保什么、怎么赔"
    assert (older["agent_id"], older["session_id"]) == ("agent-9", "chat-1")
    assert PHONE not in older["comment"] and "限额已调整" in older["comment"]
    stored = sqlite_rows(client.settings.log_db, "SELECT comment FROM flags")  # type: ignore[attr-defined]
    assert PHONE not in repr(stored)
    only = client.get("/api/flags", params={"article_id": "vehicle-damage"}, headers=EDITOR).json()
    assert only["count"] == 0
    # Analysts see them in the report, even for a period in which nobody searched.
    section = client.get("/api/reports/flags", headers={"Authorization": "Bearer an"})
    assert section.status_code == 200, section.text
    groups = {(g["reason"], g["flags"], g["flagged_version"]) for g in section.json()["flags"]}
    assert groups == {("outdated", 1, 1), ("wrong", 1, 2)}, section.json()


def test_flag_roles_and_bad_input(client: TestClient) -> None:
    assert client.get("/api/flags", headers={"Authorization": "Bearer ag"}).status_code == 403
    assert client.get("/api/flags").status_code == 401
    assert client.post("/api/flags", json={"article_id": "third-party", "reason": "wrong"}).status_code == 401
    bad_reason = _flag(client, reason="boring")
    assert bad_reason.status_code == 422 and "内容有误" in bad_reason.json()["detail"]
    assert _flag(client, article_id="no-such").status_code == 404
    future = _flag(client, article_version=9)
    assert future.status_code == 422 and "v9" in future.json()["detail"]
    assert _flag(client, comment="x" * 1001).status_code == 422
    assert client.get("/api/flags", headers=EDITOR).json()["count"] == 0


def test_kb_flags_command(client: TestClient) -> None:
    _flag(client, comment=f"电话{PHONE}的客户说条款变了")
    client.app.state.store.flush()  # type: ignore[attr-defined]
    env = {**settings_env(client.settings), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # type: ignore[attr-defined]
    run = subprocess.run([sys.executable, "-m", "kb_service", "flags"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "third-party v2 (now v2, open) 已过时" in run.stdout and "1 flags" in run.stdout
    assert PHONE not in run.stdout
    as_json = subprocess.run([sys.executable, "-m", "kb_service", "flags", "--json"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert json.loads(as_json.stdout.splitlines()[0])["reason"] == "outdated"


def _query(query_id: str, ts: float, source: str = "search") -> QueryLog:
    return QueryLog(query_id, ts, "a", "s", "三者险赔多少", True, 1, 5.0, "g", [], source)  # type: ignore[arg-type]


def test_report_counts_conversations_flags_and_the_latest_vote(corpus: BuiltCorpus, tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    from kb_service.assist.flags import new_flag

    with SQLiteLogStore(db) as store:
        store.record_query(_query("typed", 1_780_000_000))
        store.record_query(_query("chat", 1_780_000_100, "conversation"))
        # One card said 已解决, then the list said 都没解决: the later one counts.
        store.record_feedback("typed", "third-party", True, ts=1_780_000_010)
        store.record_feedback("typed", None, False, ts=1_780_000_020)
        # 都没解决 first, then 已解决 on a card: the card counts.
        store.record_feedback("chat", None, False, ts=1_780_000_110)
        store.record_feedback("chat", "third-party", True, ts=1_780_000_120)
        store.record_flag(new_flag("third-party", 2, "outdated", article_version=1, comment=f"打{PHONE}问过"))
        store.record_flag(new_flag("third-party", 2, "outdated"))
    settings = corpus_settings(corpus, db)
    report = build_report(db, article_catalog=load_article_catalog(settings))
    s = report.summary
    assert (s.queries, s.conversation_queries) == (2, 1)
    assert (s.feedback_votes, s.resolved_votes) == (2, 1)
    assert s.gap_queries == 1  # 'typed': its only standing vote is 都没解决
    assert s.flags == 2
    (group,) = report.flags
    assert (group.article_id, group.reason_label, group.flags, group.flagged_version, group.current_version) == (
        "third-party", "已过时", 2, 2, 2)
    assert group.still_open and PHONE not in repr(group.comments) and "问过" in group.comments[0]
    from kb_service.reports import render_html

    html = render_html(report)
    assert "坐席标记：内容有误/已过时" in html and "来自会话的建议" in html


def test_a_version_1_log_is_migrated_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    from kb_service.usage_log import sqlite as backend

    conn = sqlite3.connect(db)
    conn.executescript(backend._SCHEMA_V1 + "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                       "INSERT INTO schema_version VALUES (1);"
                       "INSERT INTO queries (query_id, ts, query_masked, query_normalised, confident, n_hits) "
                       "VALUES ('old', 1, '三者险', '三者险', 1, 0);")
    conn.close()
    # The report reads a v1 file as it is (read-only): all its queries were typed.
    assert build_report(db).summary.conversation_queries == 0
    SQLiteLogStore(db).close()
    assert schema_version(db) == SCHEMA_VERSION == 3
    assert sqlite_rows(db, "SELECT query_id, source FROM queries") == [("old", "search")]
    assert sqlite_rows(db, "SELECT COUNT(*) FROM flags") == [(0,)]
