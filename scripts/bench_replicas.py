"""Replicas behind HAProxy with the PostgreSQL log, against one replica with the SQLite log.

Prints, on this machine (every part a real process: PostgreSQL, `kb serve`, HAProxy):

* serve: 8 client threads searching for `--seconds` through (a) one `kb serve` with the SQLite
  log, (b) two replicas behind HAProxy with the PostgreSQL log — throughput, p50/p95, errors,
  and the ratio b/a (target: within 10 %, p95 ≤ 150 ms, zero errors);
* kill: the same load through HAProxy while one replica is killed (SIGKILL) and, separately,
  stopped (SIGTERM): failed client requests, and how many searches answered to a client are
  missing from the log (target: zero failed; the missing number measured and bounded);
* publish: generations published to a generation store while the same load runs through HAProxy,
  each replica fetching into its own index folder: seconds from publish to served by every
  replica, and failed requests (target: ≤ 2 s, zero failed);
* reports: `build_report` on a simulated log of N queries loaded into PostgreSQL (targets:
  1 M in ≤ 15 s, 10 M in ≤ 120 s).

Usage: python scripts/bench_replicas.py [--parts serve kill publish reports] [--seconds 15]
       [--report-sizes 1000000] [--index-dir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import local_cluster as lc  # noqa: E402

from kb_service.settings import Settings  # noqa: E402

QUERIES = ["三者险赔多少", "交强险理赔材料", "车被水淹了能赔吗", "理赔要什么资料", "撞了别人谁赔", "新能源车险怎么买",
           "保单怎么退保", "车损险保什么", "玻璃单独破碎险", "出险后保费涨多少", "异地出险怎么报案", "核实客户身份"]
CLIENTS = 8


class Load:
    """CLIENTS threads searching `url` until stopped; latencies, errors and answered query ids."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.answered: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(CLIENTS)]

    def _client(self, n: int) -> None:
        import httpx

        i = n
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                i += 1
                started = time.perf_counter()
                try:
                    r = client.get("/api/search", params={"q": QUERIES[i % len(QUERIES)]},
                                   headers={"X-Agent-Id": f"bench-{n}"})
                except httpx.HTTPError as exc:
                    self.errors.append(type(exc).__name__)
                    continue
                self.latencies.append((time.perf_counter() - started) * 1000)
                if r.status_code == 200:
                    self.answered.append((r.json()["query_id"], r.headers.get("x-kb-replica", "single")))
                else:
                    self.errors.append(str(r.status_code))

    def run(self, seconds: float, events: dict[float, object] | None = None) -> Load:
        for t in self._threads:
            t.start()
        started = time.monotonic()
        for at, action in sorted((events or {}).items()):
            time.sleep(max(0.0, started + at - time.monotonic()))
            action()  # type: ignore[operator]
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        self._stop.set()
        for t in self._threads:
            t.join()
        self.seconds = seconds
        return self

    def summary(self) -> str:
        lat = sorted(self.latencies)
        p95 = lat[int(0.95 * (len(lat) - 1))] if lat else float("nan")
        return (f"{len(self.answered) / self.seconds:7.1f} searches/s  p50 {statistics.median(lat) if lat else 0:6.1f} ms"
                f"  p95 {p95:6.1f} ms  errors {len(self.errors)}")

    @property
    def throughput(self) -> float:
        return len(self.answered) / self.seconds

    @property
    def p95(self) -> float:
        lat = sorted(self.latencies)
        return lat[int(0.95 * (len(lat) - 1))] if lat else float("nan")


def _warm(url: str) -> None:
    Load(url).run(2.0)


def replica_env(index_dir: Path, log_db: str) -> dict[str, str]:
    return {"KB_INDEX_DIR": str(index_dir), "KB_LOG_DB": log_db, "KB_AGENT_KEYS": "", "KB_EDITOR_KEYS": "",
            "KB_ANALYST_KEYS": "", "KB_INDEX_POLL_INTERVAL_SECONDS": "0.5"}


def _logged(url: str, ids: list[str]) -> set[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT query_id FROM queries WHERE query_id = ANY(%s)", (ids,))}


def part_serve(pg: lc.PostgresServer, index_dir: Path, work: Path, seconds: float) -> None:
    print(f"\n== serve: {CLIENTS} clients, {seconds:.0f} s each ==")
    single = lc.Replica(replica_env(index_dir, str(work / "usage.sqlite3")), work, "single").start().wait_ready()
    try:
        _warm(single.url)
        one = Load(single.url).run(seconds)
    finally:
        single.stop()
    print(f"1 replica, SQLite log        : {one.summary()}")
    url = pg.create_database()
    replicas = [lc.Replica(replica_env(index_dir, url), work, f"r{i}").start() for i in (1, 2)]
    lb = None
    try:
        for r in replicas:
            r.wait_ready()
        lb = lc.LoadBalancer(replicas, work).start()
        _warm(lb.url)
        two = Load(lb.url).run(seconds)
    finally:
        if lb:
            lb.stop()
        for r in replicas:
            r.stop()
    print(f"2 replicas, HAProxy, Postgres: {two.summary()}")
    ratio = two.throughput / one.throughput if one.throughput else float("nan")
    ok = ratio >= 0.9 and two.p95 <= 150 and not two.errors
    print(f"throughput ratio (2 replicas / 1): {ratio:.2f}  [target ≥ 0.90, p95 ≤ 150 ms, 0 errors: "
          f"{'met' if ok else 'NOT met'}]")


def part_kill(pg: lc.PostgresServer, index_dir: Path, work: Path, seconds: float) -> None:
    print(f"\n== a replica stopped under load: {CLIENTS} clients through HAProxy, {seconds:.0f} s ==")
    for sig in (signal.SIGKILL, signal.SIGTERM):
        url = pg.create_database()
        replicas = [lc.Replica(replica_env(index_dir, url), work, f"{sig.name}-r{i}").start() for i in (1, 2)]
        lb = None
        try:
            for r in replicas:
                r.wait_ready()
            lb = lc.LoadBalancer(replicas, work).start()
            _warm(lb.url)
            load = Load(lb.url).run(seconds, {seconds / 3: lambda sig=sig, victim=replicas[1]: victim.signal(sig)})
            replicas[1].wait(timeout=60)
            time.sleep(1.0)  # the survivor's writer commits what it answered last
            by_victim = [q for q, rep in load.answered if rep == "r2"]
            missing = len(by_victim) - len(_logged(url, by_victim))
            all_missing = len(load.answered) - len(_logged(url, [q for q, _ in load.answered]))
            print(f"{sig.name:7}: {len(load.answered)} answered, failed client requests {len(load.errors)}"
                  f" ({', '.join(sorted(set(load.errors))) or 'none'}); answered by the stopped replica "
                  f"{len(by_victim)}, of those missing from the log {missing}; missing overall {all_missing}")
        finally:
            if lb:
                lb.stop()
            for r in replicas:
                r.stop()


def _build_generations(work: Path, index_dir: Path, rounds: int, log_url: str) -> tuple[Settings, list[str]]:
    """The indexer's checkout (a copy of articles/ and of the built index, published as the first
    generation) and `rounds` new generations built in it, each after one more article edit."""
    from kb_service.index.builder import build_index
    from kb_service.index.embedding import load_embedder
    from kb_service.index.following import publish_and_announce
    from kb_service.index.store import current_generation

    shutil.copytree(ROOT / "articles", work / "articles")
    shutil.copytree(index_dir, work / "indexes")
    settings = Settings(articles_dir=work / "articles", lexicon_path=work / "articles" / "lexicon.yaml",
                        index_dir=work / "indexes", generation_store=str(work / "store"), log_db=log_url)
    (work / "store").mkdir()
    names = [current_generation(work / "indexes").name]  # type: ignore[union-attr]
    publish_and_announce(settings, names[0])  # before the builds prune it from the indexer's folder
    embedder = load_embedder(settings.embedding_model, settings.embedding_runtime, work / "indexes" / "models",
                             settings.threads)
    edited = sorted((work / "articles").glob("*.md"))[1]
    for n in range(1, rounds + 1):
        with open(edited, "a", encoding="utf-8") as fh:
            fh.write(f"\n\n## 补充说明{n}\n\n这是第{n}次补充：报案后请按照客服指引准备材料，并在三个工作日内提交给理赔专员审核。\n")
        names.append(build_index(settings, embedder=embedder).generation)
    return settings, names


def part_publish(pg: lc.PostgresServer, index_dir: Path, work: Path, rounds: int) -> None:
    """Generations published while 8 clients search through HAProxy: seconds until every replica
    (each with its own index folder) serves it, and failed requests (target: ≤ 2 s, zero)."""
    from kb_service.index.following import publish_and_announce

    print(f"\n== publish under load: {CLIENTS} clients through HAProxy, {rounds} generations published ==")
    url = pg.create_database()
    settings, names = _build_generations(work / "publisher", index_dir, rounds, url)
    env = {"KB_GENERATION_STORE": settings.generation_store, "KB_GENERATION_POLL_INTERVAL_SECONDS": "30"}
    replicas = [lc.Replica({**replica_env(work / f"publish-r{i}", url), **env}, work, f"publish-r{i}").start()
                for i in (1, 2)]
    timings: list[tuple[str, float, list[float]]] = []

    def publish(name: str) -> None:
        import httpx

        started = time.monotonic()
        publish_and_announce(settings, name)
        took = time.monotonic() - started
        reached: dict[str, float] = {}
        while len(reached) < len(replicas) and time.monotonic() - started < 60:
            for r in replicas:
                if r.name not in reached and httpx.get(f"{r.url}/api/health", timeout=5).json()["index_version"] == name:
                    reached[r.name] = time.monotonic() - started
            time.sleep(0.01)
        timings.append((name, took, [reached.get(r.name, float("inf")) for r in replicas]))

    lb = None
    try:
        for r in replicas:
            r.wait_ready()
        lb = lc.LoadBalancer(replicas, work).start()
        _warm(lb.url)
        events = {2.0 + 5.0 * k: (lambda name=name: threading.Thread(target=publish, args=(name,)).start())
                  for k, name in enumerate(names[1:])}
        load = Load(lb.url).run(2.0 + 5.0 * rounds + 1.0, events)  # type: ignore[arg-type]
    finally:
        if lb:
            lb.stop()
        for r in replicas:
            r.stop()
    for name, took, reached in timings:
        print(f"{name}: publish (copy + LATEST + NOTIFY) {took:.2f} s; served by every replica {max(reached):.2f} s "
              f"after the publish began ({', '.join(f'{x:.2f}' for x in reached)})")
    worst = max((max(r) for _, _, r in timings), default=float("inf"))
    print(f"during the run: {load.summary()}; slowest swap {worst:.2f} s  [target ≤ 2 s, 0 failed: "
          f"{'met' if worst <= 2 and not load.errors and len(timings) == rounds else 'NOT met'}]")


def _load_simulated(url: str, queries: int) -> float:
    """Simulate `queries` searches (scripts/simulate_usage.py) and COPY them into PostgreSQL."""
    import psycopg
    import simulate_usage as sim

    from kb_service.usage_log.pg_schema import create_partitions, month_start, next_month
    from kb_service.usage_log.postgres import PostgresLogStore

    started = time.perf_counter()
    PostgresLogStore(url).close()  # schema
    cfg = sim.SimConfig(queries=queries, agents=max(20, queries // 5000), days=28)
    first = dt.datetime.combine(cfg.end - dt.timedelta(days=cfg.days + 1), dt.time(), dt.UTC).timestamp()
    months, month = [], month_start(first)
    while month <= cfg.end:
        months.append(month)
        month = next_month(month)
    _, chunks = sim.generate(sim.load_sim_articles(ROOT / "articles"), cfg)
    with psycopg.connect(url, autocommit=True) as conn:
        create_partitions(conn, months)
        for chunk in chunks:
            ts_of = {q[0]: q[1] for q in chunk.queries}
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy("COPY queries (query_id, ts, agent_id, session_id, query_masked, query_normalised, "
                              "confident, n_hits, latency_ms, index_version) FROM STDIN") as copy:
                    for row in chunk.queries:
                        copy.write_row(row)
                with cur.copy("COPY impressions (query_id, ts, rank, article_id, article_version, passage_id, score) "
                              "FROM STDIN") as copy:
                    for q, rank, a, v, pid, score in chunk.impressions:
                        copy.write_row((q, ts_of[q], rank, a, v, pid, score))
                with cur.copy("COPY events (id, query_id, ts, type, article_id) FROM STDIN") as copy:
                    for q, ts, typ, a in chunk.events:
                        copy.write_row((uuid.uuid4(), q, ts, typ, a))
                with cur.copy("COPY feedback (id, query_id, ts, article_id, resolved, comment) FROM STDIN") as copy:
                    for q, ts, a, res, c in chunk.feedback:
                        copy.write_row((uuid.uuid4(), q, ts, a, res, c))
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


REPORT_CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from kb_service.reports import build_report, render_html, load_article_catalog
from kb_service.settings import Settings
catalog = load_article_catalog(Settings(index_dir={root!r} + "/no-index"))
t0 = time.perf_counter()
report = build_report({url!r}, article_catalog=catalog)
t1 = time.perf_counter()
render_html(report)
print(json.dumps({{"build_s": t1 - t0, "render_s": time.perf_counter() - t1, "queries": report.summary.queries}}))
"""


def part_reports(pg: lc.PostgresServer, sizes: list[int]) -> None:
    import json

    print("\n== reports on the PostgreSQL log ==")
    for size in sizes:
        url = pg.create_database()
        load_s = _load_simulated(url, size)
        code = REPORT_CHILD.format(root=str(ROOT), url=url)
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        m = json.loads(out.stdout.strip().splitlines()[-1])
        import psycopg

        with psycopg.connect(url) as conn:
            db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        target = 15 if size <= 1_000_000 else 120
        print(f"{m['queries']:>11,} queries: build_report {m['build_s']:6.1f} s, render_html {m['render_s']:5.1f} s "
              f"(simulate + load {load_s:.0f} s, database {db_bytes / 2**30:.2f} GiB) [target ≤ {target} s: "
              f"{'met' if m['build_s'] + m['render_s'] <= target else 'NOT met'}]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["serve", "kill", "publish", "reports"],
                        choices=["serve", "kill", "publish", "reports"])
    parser.add_argument("--publish-rounds", type=int, default=3, help="generations published under load (≤ 3)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--report-sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--index-dir", type=Path, help="a built index (default: `kb index` into a temporary folder)")
    args = parser.parse_args(argv)
    if lc.find_pg_bin() is None or lc.find_haproxy() is None:
        print("needs PostgreSQL server binaries and haproxy (apt-get install postgresql haproxy)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="kb-bench-replicas-"))
    index_dir = args.index_dir
    if index_dir is None and {"serve", "kill", "publish"} & set(args.parts):
        index_dir = work / "indexes"
        subprocess.run([sys.executable, "-m", "kb_service", "index", "--index-dir", str(index_dir)], check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
    pg = lc.PostgresServer(lc.find_pg_bin()).start("-c shared_buffers=512MB -c work_mem=64MB")  # type: ignore[arg-type]
    try:
        if "serve" in args.parts:
            part_serve(pg, index_dir, work, args.seconds)
        if "kill" in args.parts:
            part_kill(pg, index_dir, work, args.seconds)
        if "publish" in args.parts:
            part_publish(pg, index_dir, work, min(args.publish_rounds, 3))
        if "reports" in args.parts:
            part_reports(pg, args.report_sizes)
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
