"""Workbench API (routers/workbench.py) in-process on a hand-built log: roles, drill-downs, bad input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_article
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kb_service.reports.data import REPORT_TZ
from kb_service.settings import Settings
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import Impression, QueryLog
from kb_service.web.auth import AccessPolicy
from kb_service.web.routers import workbench

DAY = dt.datetime(2026, 11, 10, 9, 0, tzinfo=REPORT_TZ).timestamp()
ANALYST = {"Authorization": "Bearer an-key"}
EDITOR = {"Authorization": "Bearer ed-key"}


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    articles = tmp_path / "articles"
    articles.mkdir()
    write_article(articles, "theft", "盗抢理赔", {"盗抢理赔材料": "车辆被盗抢后需要报警证明和未找回证明，满60天仍未找回再处理理赔。"})
    text = (articles / "theft.md").read_text(encoding="utf-8")
    (articles / "theft.md").write_text(text.replace("version: 1", "version: 1\nreview_by: 2026-01-01"), encoding="utf-8")
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        for n, (text, confident) in enumerate([("车被偷了怎么办", False), ("车被偷了怎么办", False), ("盗抢材料", True)]):
            store.record_query(QueryLog(f"q{n}", DAY + n * 60, "a", f"s{n}", text, confident, 1, 3.0, "g",
                                        [Impression(1, "theft", 1, "theft#0", 0.7)]))
        store.record_event("q1", "theft", "open", ts=DAY + 70)
        store.record_event("q1", "theft", "copy", ts=DAY + 75)
        store.record_feedback("q1", "theft", True, ts=DAY + 80)
    settings = Settings(log_db=db, analyst_keys="an-key", editor_keys="ed-key", articles_dir=articles,
                        index_dir=tmp_path / "none", lexicon_path=tmp_path / "none.yaml")
    app = FastAPI()
    app.state.settings = settings
    app.state.access = AccessPolicy.from_settings(settings)
    app.include_router(workbench.router)
    from kb_service.web.routers import reports

    app.include_router(reports.router)
    with TestClient(app) as test_client:
        yield test_client


def test_roles(client: TestClient) -> None:
    assert client.get("/workbench").status_code == 200  # the page itself; its data needs a key
    assert client.get("/api/workbench/stale").status_code == 401
    assert client.get("/api/workbench/stale", headers=EDITOR).status_code == 403
    assert client.post("/api/workbench/proposals/adopt", json={"proposal_id": "p-x"}, headers=ANALYST).status_code == 403


def test_drill_downs(client: TestClient) -> None:
    gaps = client.get("/api/reports/gaps", headers=ANALYST).json()
    assert gaps["gap_method"].startswith("字二元组")  # no engine in this app: said so
    drilled = client.get("/api/workbench/gaps/1/queries", headers=ANALYST).json()
    assert [q["query_id"] for q in drilled["queries"]] == ["q0"]  # q1 was resolved: no gap
    one = client.get("/api/workbench/queries", params={"text": "车被偷了怎么办？"}, headers=ANALYST).json()
    by_id = {q["query_id"]: q for q in one["queries"]}
    assert set(by_id) == {"q0", "q1"}
    assert (by_id["q1"]["opened"], by_id["q1"]["copied"], by_id["q1"]["outcome"]) == (["theft"], ["theft"], "已解决")
    assert by_id["q0"]["shown"] == [{"rank": 1, "article_id": "theft", "title": "盗抢理赔"}]
    article = client.get("/api/workbench/articles/theft", headers=ANALYST).json()
    assert article["versions"][0]["shown"] == 3 and article["versions"][0]["resolved"] == 1
    assert [q["text"] for q in article["queries"]] == ["车被偷了怎么办", "盗抢材料"]
    stale = client.get("/api/workbench/stale", headers=ANALYST).json()["articles"]
    assert [s["article_id"] for s in stale] == ["theft"]
    proposals = client.get("/api/workbench/proposals", headers=ANALYST).json()["proposals"]
    assert [(p["text"], p["section"]) for p in proposals] == [("车被偷了怎么办", "盗抢理赔材料")]


def test_bad_input_is_a_clear_4xx(client: TestClient) -> None:
    for url in ("/api/workbench/gaps/99/queries", "/api/workbench/gaps/1/queries?since=yesterday",
                "/api/workbench/articles/x?until=9999-12-31", "/api/workbench/queries?text="):
        response = client.get(url, headers=ANALYST)
        assert 400 <= response.status_code < 500 and "detail" in response.json(), url
    refused = client.post("/api/workbench/proposals/adopt", headers=EDITOR,
                          json={"question": "13812345678 车丢了", "article_id": "theft", "section": "盗抢理赔材料"})
    assert refused.status_code == 422 and "个人信息" in refused.json()["detail"] and "1381234" not in refused.text
    unknown = client.post("/api/workbench/proposals/adopt", headers=EDITOR, json={"proposal_id": "p-nope"})
    assert unknown.status_code == 422 and "没有这条建议" in unknown.json()["detail"]


def test_editor_assigns_a_question_to_a_section(client: TestClient, tmp_path: Path) -> None:
    from kb_service.content.validation import check_knowledge_base

    body = {"question": "车丢了要报警吗", "article_id": "theft", "section": "盗抢理赔材料"}
    result = client.post("/api/workbench/proposals/adopt", json=body, headers=EDITOR).json()
    assert (result["added"], result["version"], result["file"]) == (True, 2, "theft.md")
    assert "+  盗抢理赔材料: [车丢了要报警吗]" in result["diff"]
    articles = tmp_path / "articles"
    assert check_knowledge_base(articles, Settings(articles_dir=articles, lexicon_path=tmp_path / "none.yaml")).ok
    again = client.post("/api/workbench/proposals/adopt", json=body, headers=EDITOR).json()
    assert again["added"] is False and again["version"] == 2
