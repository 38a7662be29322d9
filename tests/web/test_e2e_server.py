"""The real thing: uvicorn in a subprocess, real HTTP, then the SQLite file after shutdown."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from _service_fixtures import build_corpus_index, corpus_settings, free_port, settings_env, uvicorn_command

from kb_service.settings import Settings

STARTUP_SECONDS = 90



@dataclass
class Server:
    process: subprocess.Popen
    url: str
    settings: Settings
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: signal.Signals) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=30)

    def stop_cleanly(self, sig: signal.Signals) -> None:
        """Stop with `sig` and check the app's shutdown (which drains the usage log) ran.

        uvicorn re-raises the signal after a graceful shutdown, so -SIGTERM is a clean exit too.
        """
        code = self.stop(sig)
        assert code in (0, -sig), self.output()
        assert "Application shutdown complete" in self.output(), self.output()


@pytest.fixture(scope="module")
def svc_built_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("svc-e2e")
    return corpus_settings(build_corpus_index(root), root / "var" / "usage.sqlite3")


def _start(settings: Settings, tmp_path: Path, **extra_env: str) -> Server:
    port = free_port()
    env = {**os.environ, **settings_env(settings), **extra_env}
    log_path = tmp_path / "uvicorn.log"
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            uvicorn_command(port),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
    server = Server(process, f"http://127.0.0.1:{port}", settings, log_path)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/api/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"server not ready after {STARTUP_SECONDS}s:\n{server.output()}")


@pytest.fixture
def svc_server(svc_built_settings: Settings, tmp_path: Path) -> Iterator[Server]:
    settings = svc_built_settings.model_copy(update={"log_db": tmp_path / "usage.sqlite3"})
    server = _start(settings, tmp_path)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)


def _rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_agent_journey_over_http(svc_server: Server, sig: signal.Signals) -> None:
    headers = {"X-Agent-Id": "agent-e2e", "X-Session-Id": "chat-1"}
    with httpx.Client(base_url=svc_server.url, headers=headers, timeout=30) as http:
        health = http.get("/api/health").json()
        assert health["status"] == "ok" and health["articles"] == 4

        found = http.get("/api/search", params={"q": "车牌粤B12345的车被水淹了能赔吗"})
        assert found.status_code == 200, found.text
        result = found.json()
        query_id = result["query_id"]
        top = result["hits"][0]
        assert top["article_id"] == "vehicle-damage"

        opened = http.get(f"/api/articles/{top['article_id']}", params={"query_id": query_id})
        assert opened.status_code == 200 and opened.json()["open_recorded"] is True

        script_article = http.get("/api/articles/third-party", params={"query_id": query_id}).json()
        assert '<div class="kb-script">' in script_article["html"]
        copied = http.post(
            "/api/events", json={"query_id": query_id, "article_id": "third-party", "type": "copy"}
        )
        assert copied.status_code == 200 and copied.json() == {"status": "recorded"}

        voted = http.post(
            "/api/feedback",
            json={
                "query_id": query_id,
                "article_id": "vehicle-damage",
                "resolved": True,
                "comment": "已告知客户",
            },
        )
        assert voted.status_code == 200

        assert http.get("/api/search", params={"q": " "}).status_code == 422
        assert (
            http.post("/api/events", json={"query_id": "nope", "article_id": "x", "type": "open"}).status_code
            == 404
        )

        # A burst right before shutdown: all of it must be on disk afterwards.
        def burst(i: int) -> str:
            qid = http.get("/api/search", params={"q": f"理赔材料 第{i}次"}).json()["query_id"]
            http.post("/api/events", json={"query_id": qid, "article_id": "claim-materials", "type": "open"})
            return qid

        with ThreadPoolExecutor(8) as pool:
            burst_ids = list(pool.map(burst, range(40)))

    svc_server.stop_cleanly(sig)

    db = svc_server.settings.log_db
    queries = dict(_rows(db, "SELECT query_id, query_masked FROM queries"))
    assert queries[query_id] == "车牌〔车牌号〕的车被水淹了能赔吗"
    assert set(burst_ids) <= set(queries) and len(queries) == 41
    assert _rows(db, f"SELECT agent_id, session_id FROM queries WHERE query_id = '{query_id}'") == [
        ("agent-e2e", "chat-1")
    ]
    impressions = _rows(
        db, f"SELECT rank, article_id FROM impressions WHERE query_id = '{query_id}' ORDER BY rank"
    )
    assert impressions[0] == (1, "vehicle-damage") and len(impressions) == len(result["hits"])
    events = _rows(db, f"SELECT type, article_id FROM events WHERE query_id = '{query_id}' ORDER BY id")
    assert events == [("open", "vehicle-damage"), ("open", "third-party"), ("copy", "third-party")]
    assert _rows(db, "SELECT COUNT(*) FROM events WHERE article_id = 'claim-materials'") == [(40,)]
    assert _rows(db, "SELECT query_id, article_id, resolved, comment FROM feedback") == [
        (query_id, "vehicle-damage", 1, "已告知客户")
    ]


def test_server_with_keys_checks_roles(svc_built_settings: Settings, tmp_path: Path) -> None:
    settings = svc_built_settings.model_copy(
        update={"log_db": tmp_path / "usage.sqlite3", "agent_keys": "agent-1", "editor_keys": "editor-1"}
    )
    server = _start(settings, tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.get("/api/search", params={"q": "三者险"}).status_code == 401
            agent = {"Authorization": "Bearer agent-1"}
            assert http.get("/api/search", params={"q": "三者险"}, headers=agent).status_code == 200
            assert http.post("/api/admin/reload", headers=agent).status_code == 403
            reload = http.post("/api/admin/reload", headers={"Authorization": "Bearer editor-1"})
            assert reload.status_code == 200 and reload.json()["reloaded"] is False
    finally:
        server.stop_cleanly(signal.SIGTERM)
    assert _rows(settings.log_db, "SELECT COUNT(*) FROM queries") == [(1,)]


LOAD_TEST = Path(__file__).resolve().parents[2] / "scripts" / "load_test.py"


def test_load_test_script_against_real_server(svc_server: Server) -> None:
    run = subprocess.run(
        [sys.executable, str(LOAD_TEST), "--url", svc_server.url, "--clients", "1,4", "--requests", "12"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["clients", "requests"])
    rows = [line.split() for line in lines[header + 1 :] if line.strip()]
    assert [(r[0], r[1], r[2]) for r in rows] == [("1", "12", "0"), ("4", "12", "0")]
    svc_server.stop_cleanly(signal.SIGTERM)
    assert _rows(svc_server.settings.log_db, "SELECT COUNT(*) FROM queries WHERE agent_id LIKE 'load-%'") == [
        (24,)
    ]


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "http://kb.example.com", "http://0.0.0.0:8000"])
def test_load_test_refuses_other_hosts(url: str) -> None:
    run = subprocess.run(
        [sys.executable, str(LOAD_TEST), "--url", url, "--requests", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0 and "refusing to load-test" in run.stderr
