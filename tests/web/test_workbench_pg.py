"""The workbench drill-down API on a PostgreSQL usage log answers as on the SQLite log it was copied from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _pg_fixtures import pg_server  # noqa: F401 - fixture
from conftest import write_article
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kb_service.settings import Settings
from kb_service.usage_log.postgres import PostgresLogStore
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import Impression, QueryLog
from kb_service.usage_log.transfer import copy_log
from kb_service.web.auth import AccessPolicy
from kb_service.web.routers import reports, workbench

DAY = 1_794_790_800.0  # 2026-11-16 09:00 UTC+8
ANALYST = {"Authorization": "Bearer an-key"}


def _app(settings: Settings) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings
    app.state.access = AccessPolicy.from_settings(settings)
    app.include_router(workbench.router)
    app.include_router(reports.router)
    return app


@pytest.fixture()
def clients(tmp_path: Path, pg_server) -> Iterator[tuple[TestClient, TestClient]]:  # noqa: F811
    articles = tmp_path / "articles"
    articles.mkdir()
    write_article(articles, "theft", "盗抢理赔", {"盗抢理赔材料": "车辆被盗抢后需要报警证明和未找回证明，满60天仍未找回再处理理赔。"})
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        for n, (text, confident) in enumerate([("车被偷了怎么办", False), ("车被偷了怎么办", False), ("盗抢材料", True),
                                               ("盗抢材料", True)]):
            store.record_query(QueryLog(f"q{n}", DAY + n * 60, "a", f"s{n}", text, confident, 1, 3.0, "g",
                                        [Impression(1, "theft", 1, "theft#0", 0.7)]))
        store.record_event("q1", "theft", "open", ts=DAY + 70)
        store.record_feedback("q1", "theft", True, ts=DAY + 80)
        store.record_feedback("q3", "theft", True, ts=DAY + 200)
        store.record_feedback("q3", None, False, ts=DAY + 260)  # changed its mind: a gap query after all
    url = pg_server.create_database()
    with PostgresLogStore(url) as target:
        copy_log(db, target)
    common = {"analyst_keys": "an-key", "editor_keys": "ed-key", "articles_dir": articles,
              "index_dir": tmp_path / "none", "lexicon_path": tmp_path / "none.yaml"}
    with TestClient(_app(Settings(log_db=db, **common))) as on_sqlite, \
            TestClient(_app(Settings(log_db=url, **common))) as on_postgres:
        yield on_sqlite, on_postgres


def test_drill_downs_equal_on_sqlite_and_postgres(clients: tuple[TestClient, TestClient]) -> None:
    on_sqlite, on_postgres = clients
    paths = ["/api/workbench/articles/theft", "/api/workbench/queries?text=车被偷了怎么办",
             "/api/workbench/queries?text=盗抢材料&since=2026-11-16&until=2026-11-16"]
    gaps = on_postgres.get("/api/reports/gaps", headers=ANALYST).json()
    assert gaps == on_sqlite.get("/api/reports/gaps", headers=ANALYST).json()
    paths += [f"/api/workbench/gaps/{g['rank']}/queries" for g in gaps["gaps"]]
    for path in paths:
        answer = on_postgres.get(path, headers=ANALYST)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json() == on_sqlite.get(path, headers=ANALYST).json(), path
    drilled = [q["query_id"] for g in gaps["gaps"] for q in
               on_postgres.get(f"/api/workbench/gaps/{g['rank']}/queries", headers=ANALYST).json()["queries"]]
    assert sorted(drilled) == ["q0", "q3"]  # q1 was resolved; q3's 已解决 was taken back
    article = on_postgres.get("/api/workbench/articles/theft", headers=ANALYST).json()
    assert article["versions"][0]["shown"] == 4 and article["versions"][0]["opened"] == 1
