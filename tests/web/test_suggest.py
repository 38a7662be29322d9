"""POST /api/suggest and the type-ahead preview of /api/search, over a real engine and a real
SQLite usage log (the tiny corpus of _service_fixtures)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _service_fixtures import BuiltCorpus, build_corpus_index, corpus_settings, sqlite_rows
from fastapi.testclient import TestClient

from kb_service.assist.conversation import ConversationError, Turn, open_question, parse_turns
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.web.app import create_app

PHONE = "13912345678"
PLATE = "京A12345"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> BuiltCorpus:
    return build_corpus_index(tmp_path_factory.mktemp("suggest-corpus"))


@pytest.fixture(scope="module")
def engine(corpus: BuiltCorpus, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from kb_service.search.engine import SearchEngine

    return SearchEngine.open(corpus_settings(corpus, tmp_path_factory.mktemp("unused") / "u.sqlite3"))


def _client(corpus: BuiltCorpus, engine, db: Path, **keys: str) -> TestClient:  # type: ignore[no-untyped-def]
    settings = corpus_settings(corpus, db, **keys)
    return TestClient(create_app(settings, engine=engine, store=SQLiteLogStore(db)))


@pytest.fixture
def client(corpus: BuiltCorpus, engine, tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with _client(corpus, engine, tmp_path / "usage.sqlite3") as c:
        c.db = tmp_path / "usage.sqlite3"  # type: ignore[attr-defined]
        yield c


def _rows(client: TestClient, sql: str, *args: object) -> list[tuple]:
    client.app.state.store.flush()  # type: ignore[attr-defined]
    return sqlite_rows(client.db, sql, *args)  # type: ignore[attr-defined]


def _turns(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": role, "text": text, "ts": 1733400000 + i} for i, (role, text) in enumerate(pairs)]


# ------------------------------------------------------------------------------ reading the conversation


def test_open_question_is_the_customer_turns_after_the_agents_last() -> None:
    turns = [Turn("customer", "你好"), Turn("agent", "您好，请讲"), Turn("customer", "我的车被水淹了"),
             Turn("customer", "车损险能赔吗")]
    found = open_question(turns, 1000)
    assert found.open and found.turns == 2
    assert found.text == "我的车被水淹了\n车损险能赔吗"
    answered = open_question([*turns, Turn("agent", "可以的")], 1000)
    assert not answered.open and answered.text == found.text
    assert open_question(turns, 8).text == "车损险能赔吗"  # newest kept when over the budget


def test_parse_turns_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ConversationError, match="对话为空"):
        parse_turns([])
    with pytest.raises(ConversationError, match="角色"):
        parse_turns([{"role": "bot", "text": "x"}])
    with pytest.raises(ConversationError, match="没有客户"):
        open_question(parse_turns([{"role": "agent", "text": "您好"}]), 1000)


# ------------------------------------------------------------------------------ the route


def test_suggestions_for_the_latest_question_grouped_per_question(client: TestClient) -> None:
    body = {
        "turns": _turns(("customer", "你好，我想问下三者险的事"), ("agent", "您好，请问有什么可以帮您？"),
                        ("customer", "三者险赔哪些损失？另外理赔材料要交什么？")),
        "agent_id": "agent-7", "session_id": "chat-42",
    }
    response = client.post("/api/suggest", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["open"] is True and data["customer_turns"] == 1 and data["source"] == "conversation"
    assert len(data["questions"]) == 2, data["questions"]
    firsts = [group["hits"][0]["article_id"] for group in data["questions"]]
    assert firsts == ["third-party", "claim-materials"], firsts
    hit = data["questions"][0]["hits"][0]
    assert {"article_id", "title", "heading", "text", "score", "category", "version", "highlights", "passage_id",
            "scripts"} <= set(hit)
    rows = _rows(client, "SELECT agent_id, session_id, source, n_hits FROM queries WHERE query_id = ?",
                 data["query_id"])
    assert rows == [("agent-7", "chat-42", "conversation", len(data["hits"]))]
    shown = _rows(client, "SELECT article_id FROM impressions WHERE query_id = ? ORDER BY rank", data["query_id"])
    assert [a for (a,) in shown] == [h["article_id"] for h in data["hits"]]
    # The id works like a search's: opening an article from a suggestion is logged.
    opened = client.get("/api/articles/third-party", params={"query_id": data["query_id"]})
    assert opened.json()["open_recorded"] is True


def test_personal_data_is_masked_in_the_log(client: TestClient) -> None:
    body = {"turns": _turns(("customer", f"我手机{PHONE}，车牌{PLATE}，车被水淹了车损险能赔吗")),
            "agent_id": f"坐席{PHONE}"}
    data = client.post("/api/suggest", json=body).json()
    assert data["questions"][0]["hits"][0]["article_id"] == "vehicle-damage"
    stored = _rows(client, "SELECT query_masked, query_normalised, agent_id FROM queries WHERE query_id = ?",
                   data["query_id"])
    assert len(stored) == 1
    dump = repr(stored)
    assert PHONE not in dump and PLATE not in dump and "A12345" not in dump, dump
    assert "水淹" in stored[0][0]


def test_greetings_only_are_not_searched_nor_logged(client: TestClient) -> None:
    response = client.post("/api/suggest", json={"turns": _turns(("customer", "你好，在吗？"))})
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["query_id"], data["questions"], data["hits"]) == (None, [], [])
    assert _rows(client, "SELECT COUNT(*) FROM queries") == [(0,)]


def test_headers_give_agent_and_session_when_the_body_does_not(client: TestClient) -> None:
    response = client.post("/api/suggest", json={"turns": _turns(("customer", "理赔材料要交什么"))},
                           headers={"X-Agent-Id": "a-1", "X-Session-Id": "s-1"})
    rows = _rows(client, "SELECT agent_id, session_id FROM queries WHERE query_id = ?", response.json()["query_id"])
    assert rows == [("a-1", "s-1")]
    # Non-Latin-1 ids arrive percent-encoded (what the panel sends) and are stored as meant.
    coded = client.post("/api/suggest", json={"turns": _turns(("customer", "理赔材料要交什么"))},
                        headers={"X-Agent-Id": "%E5%9D%90%E5%B8%AD%E5%BC%A0%E4%B8%89", "X-Session-Id": "s-1"})
    assert _rows(client, "SELECT agent_id FROM queries WHERE query_id = ?", coded.json()["query_id"]) == [("坐席张三",)]


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        ([], "对话为空"),
        ([{"role": "robot", "text": "三者险"}], "角色"),
        ([{"role": "customer", "text": "三者险赔什么"}] * 100, "最多 50 轮"),
        ([{"role": "customer", "text": "险" * 10_000}], "内容过长"),
        ([{"role": "agent", "text": "您好"}], "没有客户"),
        ([{"role": "customer", "text": "   "}], "没有客户"),
    ],
    ids=["empty", "unknown-role", "100-turns", "10000-chars", "agent-only", "blank"],
)
def test_bad_conversations_get_a_clear_4xx(client: TestClient, turns: list[dict], expected: str) -> None:
    response = client.post("/api/suggest", json={"turns": turns})
    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]
    assert _rows(client, "SELECT COUNT(*) FROM queries") == [(0,)]


def test_shape_errors_are_4xx_json(client: TestClient) -> None:
    assert client.post("/api/suggest", json={}).status_code == 422
    assert client.post("/api/suggest", json={"turns": "三者险"}).status_code == 422
    bad = client.post("/api/suggest", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and "JSON" in bad.json()["detail"]
    echoed = client.post("/api/suggest", json={"turns": [{"role": f"x{PHONE}", "text": "a"}]})
    assert echoed.status_code == 422 and PHONE not in echoed.text


def test_roles(corpus: BuiltCorpus, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keys = {"agent_keys": "agent-key", "editor_keys": "editor-key", "analyst_keys": ""}
    body = {"turns": _turns(("customer", "三者险赔哪些损失"))}
    with _client(corpus, engine, tmp_path / "usage.sqlite3", **keys) as c:
        assert c.post("/api/suggest", json=body).status_code == 401
        assert c.post("/api/suggest", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.post("/api/suggest", json=body, headers={"Authorization": "Bearer agent-key"}).status_code == 200


# ------------------------------------------------------------------------------ type-ahead preview


def test_preview_is_not_logged_until_it_settles(client: TestClient) -> None:
    for prefix in ("三", "三者", "三者险"):
        preview = client.get("/api/search", params={"q": prefix, "log": "0"}).json()
        assert preview["hits"]
    assert _rows(client, "SELECT COUNT(*) FROM queries") == [(0,)]
    # The preview's id cannot be used before it is logged ...
    assert client.post("/api/events", json={"query_id": preview["query_id"], "article_id": "third-party",
                                            "type": "copy"}).status_code == 404
    # ... and is the id the settled search is logged under.
    settled = client.get("/api/search", params={"q": "三者险", "query_id": preview["query_id"]}).json()
    assert settled["query_id"] == preview["query_id"]
    client.get("/api/search", params={"q": "三者险", "query_id": preview["query_id"]})  # a repeat adds nothing
    assert _rows(client, "SELECT query_id, query_masked, source FROM queries") == [
        (preview["query_id"], "三者险", "search")]
    assert client.get("/api/search", params={"q": "三者险", "query_id": "not-a-hex-id"}).status_code == 422


# ------------------------------------------------------------------------------ random bodies


def _random_value(rng, depth: int = 0):  # type: ignore[no-untyped-def]
    kind = rng.randrange(8 if depth < 2 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, 0, -1, 2**63, 1e308, 3.5])
    if kind in (2, 3, 4):
        return rng.choice(["customer", "agent", "", "三者险赔多少", f"我手机{PHONE}", "\u200b", "x" * 5000,
                           "理陪材料", "Robot", "AGENT", "wrong", "outdated", "third-party", "ghost"])
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice(["role", "text", "ts", "turns", "x"]): _random_value(rng, depth + 1) for _ in range(3)}


def test_random_bodies_never_5xx_nor_leak(client: TestClient) -> None:
    import random

    rng = random.Random(16)
    statuses: dict[int, int] = {}
    for _ in range(250):
        pick = lambda *options: rng.choice([*options, _random_value(rng)])  # noqa: E731 - mostly valid values
        turns = [{"role": pick("customer", "customer", "agent"), "text": pick("三者险赔多少", f"我手机{PHONE}车被淹了能赔吗"),
                  "ts": pick(1733400000, "2026-12-06T10:00:00")} for _ in range(rng.randrange(4))]
        body = rng.choice([{"turns": turns, "agent_id": _random_value(rng)}, {"turns": _random_value(rng)},
                           _random_value(rng)])
        response = client.post("/api/suggest", json=body)
        flag = client.post("/api/flags", json={"article_id": pick("third-party"), "reason": pick("wrong", "outdated"),
                                               "comment": pick(f"客户{PHONE}说不对"), "article_version": pick(1, 2, 3)})
        for r in (response, flag):
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, r.text
            assert r.headers["content-type"].startswith("application/json")
            if r.status_code >= 400:
                assert isinstance(r.json()["detail"], str) and PHONE not in r.text
    assert statuses.get(200) and statuses.get(422)
    client.app.state.store.flush()  # type: ignore[attr-defined]
    for table in ("queries", "flags"):
        assert PHONE not in repr(_rows(client, f"SELECT * FROM {table}"))  # noqa: S608 - fixed table names
