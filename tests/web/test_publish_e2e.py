"""A generation published while agents search reaches every replica, with no failed request.

Real processes throughout: a PostgreSQL server (the usage log, the `kb_generations` record and
the `kb_generation` notifications), two `kb serve` replicas each with its OWN empty index folder
(they fetch the published generation at start), the shipped HAProxy configuration in front, and
a shared folder as the generation store. The indexer publishes from this test process with the
same function `kb index` calls. Skipped, saying why, only when PostgreSQL or HAProxy is missing.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from _pg_fixtures import PostgresServer, cluster, pg_server  # noqa: F401 - fixture
from _service_fixtures import build_corpus_index, corpus_settings, settings_env
from conftest import write_article

from kb_service.index.builder import build_index
from kb_service.index.following import publish_and_announce, recorded_generation
from kb_service.index.store import current_generation

QUERIES = ["三者险赔多少", "水淹车怎么赔", "理赔材料有哪些", "核实客户身份", "车损险保什么"]
CLIENTS = 6
NEW_ARTICLE = ("glass-only", "玻璃单独破碎险", {"玻璃单独破碎怎么赔": "挡风玻璃单独破碎由玻璃单独破碎险赔付，不影响车损险的其他保障，"
                                                                 "报案后拍照定损即可更换。"})


def _served(url: str) -> dict:
    return httpx.get(f"{url}/api/health", timeout=5).json()


def _load(url: str, stop: threading.Event, errors: list[str], answered: list[str]) -> None:
    i = 0
    with httpx.Client(base_url=url, timeout=15) as client:
        while not stop.is_set():
            i += 1
            try:
                r = client.get("/api/search", params={"q": QUERIES[i % len(QUERIES)]}, headers={"X-Agent-Id": "load"})
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if r.status_code == 200:
                answered.append(r.headers.get("x-kb-replica", "?"))
            else:
                errors.append(f"{r.status_code}: {r.text[:200]}")


def test_a_generation_published_under_load_reaches_both_replicas(tmp_path: Path, pg_server: PostgresServer) -> None:  # noqa: F811
    if cluster.find_haproxy() is None:
        pytest.skip("haproxy not found: install Debian's `haproxy` package (scripts/test.sh does when run as root)")
    corpus = build_corpus_index(tmp_path / "indexer")
    store = tmp_path / "store"
    store.mkdir()
    log_url = pg_server.create_database()
    indexer = corpus_settings(corpus, log_url, generation_store=str(store))  # type: ignore[arg-type]
    first = current_generation(corpus.index_dir).name  # type: ignore[union-attr]
    publish_and_announce(indexer, first)

    replicas = {}
    for name in ("r1", "r2"):  # each its own, empty, index folder; a poll of 30 s: notifications do the work
        env = settings_env(indexer.model_copy(update={"index_dir": tmp_path / name / "indexes",
                                                      "generation_poll_interval_seconds": 30.0,
                                                      "shutdown_grace_seconds": 10.0}))
        replicas[name] = cluster.Replica(env, tmp_path, name).start()
    lb = None
    stop, errors, answered = threading.Event(), [], []  # type: ignore[var-annotated]
    clients = [threading.Thread(target=_load, args=("", stop, errors, answered))]
    try:
        for replica in replicas.values():
            replica.wait_ready()
            assert _served(replica.url)["index_version"] == first
        lb = cluster.LoadBalancer(list(replicas.values()), tmp_path).start()

        write_article(corpus.articles_dir, NEW_ARTICLE[0], NEW_ARTICLE[1], NEW_ARTICLE[2], aliases=["玻璃险"])
        second = build_index(indexer).generation  # built beside the load, published during it
        assert second != first

        clients = [threading.Thread(target=_load, args=(lb.url, stop, errors, answered)) for _ in range(CLIENTS)]
        for t in clients:
            t.start()
        time.sleep(1.5)
        before = len(answered)
        published_at = time.monotonic()
        publish_and_announce(indexer, second)
        reached: dict[str, float] = {}
        while len(reached) < len(replicas) and time.monotonic() - published_at < 20:
            for name, replica in replicas.items():
                if name not in reached and _served(replica.url)["index_version"] == second:
                    reached[name] = time.monotonic() - published_at
            time.sleep(0.02)
        time.sleep(1.5)  # keep searching on the new generation
        via_lb = [_served(lb.url) for _ in range(4)]
        found = httpx.get(f"{lb.url}/api/search", params={"q": "玻璃单独破碎怎么赔"}, timeout=10).json()
    finally:
        stop.set()
        for t in clients:
            t.join(timeout=30)
        if lb is not None:
            lb.stop()
        for replica in replicas.values():
            replica.stop()
    print(f"\npublished {second}: served by r1 after {reached.get('r1', -1):.2f} s, r2 after "
          f"{reached.get('r2', -1):.2f} s; {len(answered)} searches, {len(errors)} failed")
    assert set(reached) == {"r1", "r2"}, (reached, replicas["r1"].output()[-2000:])
    assert max(reached.values()) < 10.0, reached  # the 2 s target is measured by scripts/bench_replicas.py
    assert errors == [], errors[:5]
    assert len(answered) > before > 0 and {"r1", "r2"} <= set(answered)
    assert recorded_generation(log_url) == second
    assert all(h["index_version"] == second and h["published_generation"] == second
               and h["generation_fetch_failed"] is False for h in via_lb), via_lb
    assert found["hits"][0]["article_id"] == NEW_ARTICLE[0], found
    for name in replicas:  # each replica's own folder now holds and names the new generation
        assert current_generation(tmp_path / name / "indexes").name == second  # type: ignore[union-attr]
