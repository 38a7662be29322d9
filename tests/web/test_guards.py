"""Fixes from the fuzzing pass: every error is a 4xx with `{"detail": str}`, never a 500 or text.

In-process (TestClient, or the ASGI app called directly when a test must see what the app read).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import BuiltCorpus, build_corpus_index, corpus_settings, sqlite_rows
from fastapi.testclient import TestClient

from kb_service.settings import Settings
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.web.app import create_app
from kb_service.web.guards import install_access_log

KEYS = {"agent_keys": "agent-key", "editor_keys": "editor-key", "analyst_keys": "analyst-key"}


@pytest.fixture(scope="module")
def hard_corpus(tmp_path_factory: pytest.TempPathFactory) -> BuiltCorpus:
    return build_corpus_index(tmp_path_factory.mktemp("hardening-corpus"))


@pytest.fixture(scope="module")
def hard_engine(hard_corpus: BuiltCorpus, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from kb_service.search.engine import SearchEngine

    return SearchEngine.open(corpus_settings(hard_corpus, tmp_path_factory.mktemp("unused") / "u.sqlite3"))


def _client(settings: Settings, engine: Any, **kwargs: Any) -> TestClient:
    return TestClient(create_app(settings, engine=engine, store=SQLiteLogStore(settings.log_db), **kwargs))


@pytest.fixture
def client(hard_corpus: BuiltCorpus, hard_engine, tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with _client(corpus_settings(hard_corpus, tmp_path / "usage.sqlite3"), hard_engine) as c:
        yield c


def _detail(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


# --- 1. lone surrogates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/events", '{"query_id": "\\ud800", "article_id": "third-party", "type": "open"}'),
        ("/api/events", '{"query_id": "$QID", "article_id": "third-party", "type": "\\udfff"}'),
        ("/api/feedback", '{"query_id": "$QID", "article_id": null, "resolved": true, "comment": "ok \\ud800"}'),
        ("/api/feedback", '{"query_id": "$QID", "article_id": "\\ud83d", "resolved": true}'),
        ("/api/feedback", '{"query_id": "$QID", "resolved": "\\ud800"}'),
    ],
)
def test_lone_surrogate_is_422_and_never_echoed_raw(client: TestClient, path: str, body: str) -> None:
    qid = client.get("/api/search", params={"q": "三者险"}).json()["query_id"]
    response = client.post(path, content=body.replace("$QID", qid).encode(),
                           headers={"Content-Type": "application/json"})
    detail = _detail(response, 422)
    assert not any("\ud800" <= ch <= "\udfff" for ch in detail)
    response.content.decode("utf-8")  # strictly valid UTF-8


# --- 2. report dates that overflow -----------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"until": "9999-12-31"},
        {"since": "0001-01-01T00:00:00+14:00"},
        {"since": "9999-12-31T23:59:59-12:00"},
        {"since": "0001-01-01", "until": "9999-12-31"},
    ],
)
@pytest.mark.parametrize("name", ["frequency", "articles", "gaps"])
def test_report_dates_out_of_range_are_422(client: TestClient, name: str, params: dict[str, str]) -> None:
    assert "日期" in _detail(client.get(f"/api/reports/{name}", params=params), 422)


def test_report_extreme_but_valid_dates_work(client: TestClient) -> None:
    response = client.get("/api/reports/frequency", params={"since": "0001-01-02", "until": "9999-12-30"})
    assert response.status_code == 200, response.text


def test_report_command_turns_overflow_into_a_period_error(tmp_path: Path) -> None:
    from kb_service.reports import PeriodError, run_report_command

    settings = Settings(log_db=tmp_path / "u.sqlite3", index_dir=tmp_path / "none", articles_dir=tmp_path / "none")
    with pytest.raises(PeriodError, match="out of range"):
        run_report_command(settings, None, "9999-12-31", out_dir=tmp_path / "out", echo=lambda _: None)


# --- 3. HEAD and the over-long query ---------------------------------------------------------------


def test_head_on_get_routes(client: TestClient) -> None:
    health = client.head("/api/health")
    assert health.status_code == 200 and health.content == b""
    assert int(health.headers["content-length"]) > 0  # what GET would have sent
    assert client.head("/api/articles/third-party").status_code == 200
    assert client.head("/api/articles/ghost").status_code == 404
    assert client.head("/api/search", params={"q": "三者险"}).status_code == 200
    assert client.head("/").status_code in (200, 404)


def test_head_search_logs_nothing(hard_corpus: BuiltCorpus, hard_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = corpus_settings(hard_corpus, tmp_path / "usage.sqlite3")
    with _client(settings, hard_engine) as c:
        assert c.head("/api/search", params={"q": "三者险"}).status_code == 200
    assert sqlite_rows(settings.log_db, "SELECT COUNT(*) FROM queries") == [(0,)]


def test_over_long_query_is_json_422(client: TestClient) -> None:
    assert _detail(client.get("/api/search", params={"q": "险" * 5000}), 422)


# --- 4. body cap and the key before the body -------------------------------------------------------


def _asgi(app: Any, method: str, path: str, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, dict, int]:
    """Call the ASGI app directly; returns status, JSON body and how many body chunks it read."""
    reads = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal reads
        if reads < len(chunks):
            reads += 1
            return {"type": "http.request", "body": chunks[reads - 1], "more_body": reads < len(chunks)}
        await asyncio.sleep(3600)  # a client that never finishes: the app must not wait for it
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), reads


@pytest.mark.parametrize("keys", [False, True], ids=["open", "keys"])
@pytest.mark.parametrize("path", ["/api/events", "/api/feedback", "/api/admin/reload"])
def test_declared_oversized_body_is_413_before_reading(hard_corpus: BuiltCorpus, hard_engine, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                       path: str, keys: bool) -> None:
    settings = corpus_settings(hard_corpus, tmp_path / "u.sqlite3", max_body_bytes=1000, **(KEYS if keys else {}))
    app = create_app(settings, engine=hard_engine, store=SQLiteLogStore(settings.log_db))
    headers = {"content-type": "application/json", "content-length": str(200 * 1024 * 1024)}
    if keys:
        headers["authorization"] = "Bearer agent-key"
    status, body, reads = _asgi(app, "POST", path, headers, [b"x" * 1000] * 3)
    assert (status, reads) == (413, 0) and "请求体过大" in body["detail"]


def test_streamed_body_is_cut_off_at_the_cap(hard_corpus: BuiltCorpus, hard_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = corpus_settings(hard_corpus, tmp_path / "u.sqlite3", max_body_bytes=1000)
    app = create_app(settings, engine=hard_engine, store=SQLiteLogStore(settings.log_db))
    chunks = [b'{"query_id": "' + b"x" * 600] * 50  # 30 KB in all, no Content-Length (chunked)
    status, body, reads = _asgi(app, "POST", "/api/events", {"content-type": "application/json"}, chunks)
    assert status == 413 and reads == 2 and "1,000" in body["detail"]


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_missing_or_unknown_key_is_401_before_reading(hard_corpus: BuiltCorpus, hard_engine, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      key: str | None) -> None:
    settings = corpus_settings(hard_corpus, tmp_path / "u.sqlite3", **KEYS)
    app = create_app(settings, engine=hard_engine, store=SQLiteLogStore(settings.log_db))
    headers = {"content-type": "application/json", "content-length": "100"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    status, body, reads = _asgi(app, "POST", "/api/feedback", headers, [b"{" * 100])
    assert (status, reads) == (401, 0) and "API 密钥" in body["detail"]


def test_body_under_the_cap_still_works_and_default_cap(client: TestClient) -> None:
    assert Settings().max_body_bytes == 64 * 1024
    qid = client.get("/api/search", params={"q": "三者险"}).json()["query_id"]
    ok = client.post("/api/feedback", json={"query_id": qid, "resolved": True, "comment": "好"})
    assert ok.status_code == 200, ok.text
    assert "请求体过大" in _detail(client.post("/api/feedback", content=b" " * (64 * 1024 + 1),
                                              headers={"Content-Type": "application/json"}), 413)


# --- 5. unknown query ids do not hold threads -------------------------------------------------------


def test_unknown_query_id_is_answered_at_once_by_the_only_writer(hard_corpus: BuiltCorpus, hard_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = corpus_settings(hard_corpus, tmp_path / "u.sqlite3", query_id_wait_seconds=2.0)
    with _client(settings, hard_engine, shared_log=False) as c:
        qid = c.get("/api/search", params={"q": "三者险"}).json()["query_id"]
        started = time.monotonic()
        assert "query_id" in _detail(c.post("/api/events", json={"query_id": "f" * 32, "article_id": "third-party",
                                                                  "type": "open"}), 404)
        assert time.monotonic() - started < 0.5
        # An id this process just issued is known before its writer has committed it.
        ok = c.post("/api/events", json={"query_id": qid, "article_id": "third-party", "type": "open"})
        assert ok.status_code == 200, ok.text


def test_waiting_for_other_workers_ids_does_not_delay_searches(hard_corpus: BuiltCorpus, hard_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = corpus_settings(hard_corpus, tmp_path / "u.sqlite3", query_id_wait_seconds=2.0)
    with _client(settings, hard_engine) as c, ThreadPoolExecutor(128) as pool:
        def bogus(i: int) -> int:
            return c.post("/api/feedback", json={"query_id": f"other-{i}", "resolved": True}).status_code

        waiting = [pool.submit(bogus, i) for i in range(120)]
        time.sleep(0.3)  # they are all waiting now
        started = time.monotonic()
        assert c.get("/api/search", params={"q": "理赔材料"}).status_code == 200
        assert time.monotonic() - started < 1.5
        assert {f.result(timeout=30) for f in waiting} == {404}


# --- 6. reload errors without server paths ----------------------------------------------------------


class _BrokenIndexEngine:
    """The real engine, except that the newest index cannot be opened (as after a half-copied build)."""

    def __init__(self, engine: Any, index_dir: Path) -> None:
        self._engine = engine
        self._manifest = index_dir / "gen-20261206T000000-abcdef" / "manifest.json"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def reload(self) -> bool:
        raise FileNotFoundError(2, "No such file or directory", str(self._manifest))


def test_reload_error_names_the_problem_without_paths(hard_corpus: BuiltCorpus, hard_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = corpus_settings(hard_corpus, tmp_path / "u.sqlite3")
    with _client(settings, _BrokenIndexEngine(hard_engine, hard_corpus.index_dir)) as c:
        detail = _detail(c.post("/api/admin/reload"), 503)
    assert "重新加载索引失败" in detail and "manifest.json" in detail and "No such file" in detail, detail
    assert str(hard_corpus.index_dir) not in detail and "/" not in detail, detail


# --- 7. access log without query strings ------------------------------------------------------------


def test_access_log_has_path_status_duration_but_no_query(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    install_access_log()
    with caplog.at_level(logging.INFO, logger="kb_service.access"):
        client.get("/api/search", params={"q": "手机13812345678 三者险"})
        qid = client.get("/api/search", params={"q": "三者险"}).json()["query_id"]
        client.post("/api/feedback", json={"query_id": qid, "resolved": True, "comment": "身份证110101199003074258"})
    lines = [r.getMessage() for r in caplog.records if r.name == "kb_service.access"]
    assert any(line.startswith("GET /api/search 200 ") and line.endswith("ms") for line in lines), lines
    assert any(line.startswith("POST /api/feedback 200 ") for line in lines), lines
    everything = caplog.text
    assert "13812345678" not in everything and "110101199003074258" not in everything
    assert "?" not in "".join(lines)


def test_a_validation_error_never_echoes_personal_data(client: TestClient) -> None:
    """422 messages quote the input back; a phone or ID in it is masked before it is quoted."""
    comment = "客户手机 138 1234 5678，身份证 110101199003071234，" + "太慢了" * 400  # over the comment limit
    response = client.post("/api/feedback", json={"query_id": "x" * 8, "resolved": False, "comment": comment})
    detail = _detail(response, 422)
    assert "comment" in detail
    flat = detail.replace(" ", "")
    assert "13812345678" not in flat and "110101199003071234" not in flat and "〔手机号〕" in detail


def test_unknown_ids_are_quoted_masked(client: TestClient) -> None:
    detail = _detail(client.get("/api/articles/13812345678"), 404)
    assert "13812345678" not in detail and "〔手机号〕" in detail
    detail = _detail(client.post("/api/events", json={"query_id": "110101199003071234", "article_id": "a",
                                                        "type": "open"}), 404)
    assert "110101199003071234" not in detail
