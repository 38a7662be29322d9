"""`kb serve --workers 2 --watch` for real: edits reload every worker in place; workers die with the supervisor."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from _service_fixtures import (
    BuiltCorpus,
    build_corpus_index,
    copy_corpus,
    corpus_settings,
    free_port,
    settings_env,
    stop_server,
)

from kb_service.settings import Settings
from kb_service.web.workers import IndexPoller

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes are tested on Linux")

STARTUP_SECONDS = 90
ROOT = Path(__file__).resolve().parents[2]
EDITED_SENTENCE = "理赔材料可以通过电子保单二维码在线上传，上传后客服核对材料是否齐全。"



def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@dataclass
class Cluster:
    process: subprocess.Popen
    url: str
    port: int
    settings: Settings
    log_path: Path
    worker_pids: set[int]

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def health(self) -> dict:
        # A fresh connection each time, so the kernel spreads requests over both workers.
        return httpx.get(f"{self.url}/api/health", timeout=10).json()


def _seen_workers(cluster: Cluster, want: int, seconds: float) -> set[int]:
    pids: set[int] = set()
    deadline = time.monotonic() + seconds
    while len(pids) < want and time.monotonic() < deadline:
        pids.add(cluster.health()["worker_pid"])
    return pids


@pytest.fixture(scope="module")
def workers_corpus(tmp_path_factory: pytest.TempPathFactory) -> BuiltCorpus:
    return build_corpus_index(tmp_path_factory.mktemp("workers-corpus"))


@pytest.fixture
def cluster(workers_corpus: BuiltCorpus, tmp_path: Path) -> Iterator[Cluster]:
    corpus = copy_corpus(workers_corpus, tmp_path / "kb")  # the watcher rebuilds it: a private copy
    settings = corpus_settings(
        corpus, tmp_path / "usage.sqlite3", watch_interval_seconds=0.2, index_poll_interval_seconds=0.2
    )
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kb_service", "serve", "--workers", "2", "--watch",
             "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **settings_env(settings)},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    server = Cluster(process, f"http://127.0.0.1:{port}", port, settings, log_path, set())
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not server.worker_pids:
            assert process.poll() is None, f"server exited with {process.returncode}:\n{server.output()}"
            assert time.monotonic() < deadline, f"not ready after {STARTUP_SECONDS}s:\n{server.output()}"
            try:
                server.worker_pids = _seen_workers(server, 2, 5)  # the second worker may still warm up
            except httpx.TransportError:
                time.sleep(0.2)
            if len(server.worker_pids) < 2:
                server.worker_pids = set()
        yield server
    finally:
        stop_server(process)
        for pid in server.worker_pids:  # never leave a worker behind, whatever the test did
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _load(url: str, stop: threading.Event, failures: list[str], counter: list[int]) -> None:
    """Searches on fresh connections until stopped (bounded by the caller's deadline)."""
    while not stop.is_set():
        try:
            response = httpx.get(f"{url}/api/search", params={"q": "理赔材料"}, timeout=30)
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:200]}")
        except httpx.HTTPError as exc:
            failures.append(repr(exc))
        counter[0] += 1


def _edit_served(cluster: Cluster) -> tuple[bool, int]:
    """One search on a fresh connection: does it show the edited article, and from which worker?"""
    with httpx.Client(base_url=cluster.url, timeout=30) as http:  # one connection: one worker answers both
        hits = http.get("/api/search", params={"q": "电子保单二维码上传理赔材料"}).json()["hits"]
        pid = http.get("/api/health").json()["worker_pid"]
    edited = any(h["article_id"] == "claim-materials" and h["version"] == 2 for h in hits) and any(
        "二维码" in h["text"] for h in hits
    )
    return edited, pid


def test_edit_reloads_every_worker_in_place(cluster: Cluster) -> None:
    before = cluster.health()["index_version"]
    stop, failures, counter = threading.Event(), [], [0]
    load = [threading.Thread(target=_load, args=(cluster.url, stop, failures, counter)) for _ in range(3)]
    for thread in load:
        thread.start()
    try:
        time.sleep(0.5)
        article = cluster.settings.articles_dir / "claim-materials.md"
        text = article.read_text(encoding="utf-8").replace("version: 1", "version: 2")
        article.write_text(text.replace("## 理赔材料提交时限\n\n", f"## 理赔材料提交时限\n\n{EDITED_SENTENCE}"),
                           encoding="utf-8")
        edited_at = time.monotonic()

        # Served by both workers: every answer after the first new one is new (no flip-flopping back).
        new_from: set[int] = set()
        old_after_new = 0
        while time.monotonic() - edited_at < 30 and not (new_from >= cluster.worker_pids and len(new_from) >= 2):
            edited, pid = _edit_served(cluster)
            if edited:
                new_from.add(pid)
            elif pid in new_from:
                old_after_new += 1
        took = time.monotonic() - edited_at
        print(f"edit served by every worker after {took:.1f}s")
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in load:
            thread.join(timeout=60)

    assert new_from == cluster.worker_pids, f"edit served by {new_from} of {cluster.worker_pids}:\n{cluster.output()}"
    assert took < 20, f"edit took {took:.1f}s to reach every worker:\n{cluster.output()}"
    assert old_after_new == 0
    assert failures == [] and counter[0] > 0
    assert _seen_workers(cluster, 2, 10) == cluster.worker_pids  # nobody restarted
    assert cluster.health()["index_version"] != before
    assert "Received SIGHUP" not in cluster.output() and "died" not in cluster.output()


def test_workers_die_with_a_killed_supervisor(cluster: Cluster) -> None:
    assert cluster.process.pid not in cluster.worker_pids
    cluster.process.send_signal(signal.SIGKILL)
    cluster.process.wait(timeout=10)
    killed_at = time.monotonic()
    refused = False
    while time.monotonic() - killed_at < 15:
        try:
            with socket.create_connection(("127.0.0.1", cluster.port), timeout=1):
                pass
        except ConnectionRefusedError:
            refused = True
        if refused and not any(_alive(pid) for pid in cluster.worker_pids):
            break
        time.sleep(0.1)
    alive = [pid for pid in cluster.worker_pids if _alive(pid)]
    assert refused and not alive, f"after {time.monotonic() - killed_at:.1f}s: port refused={refused}, alive={alive}"
    assert time.monotonic() - killed_at < 10


class _FlakyEngine:
    """Reload fails once, then works: the poller must keep going and keep the old snapshot."""

    def __init__(self) -> None:
        self.calls = 0
        self.generation = "gen-old"

    def reload(self) -> bool:
        self.calls += 1
        if self.calls == 1:
            raise OSError("generation not readable yet")
        self.generation = "gen-new"
        return True

    def info(self) -> dict:
        return {"index_version": self.generation}


def test_index_poller_retries_a_failed_reload(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").write_text("gen-old", encoding="utf-8")
    engine = _FlakyEngine()
    poller = IndexPoller(engine, tmp_path, interval=0.05)
    poller.start()
    try:
        time.sleep(0.2)
        assert engine.calls == 0  # CURRENT unchanged: no reloads
        (tmp_path / "CURRENT").write_text("gen-new", encoding="utf-8")
        deadline = time.monotonic() + 5
        while engine.generation != "gen-new" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()
        poller.join(timeout=5)
    assert engine.generation == "gen-new" and engine.calls == 2
