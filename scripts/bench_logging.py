"""Search latency through the API with usage logging on and off, in one run.

    python scripts/bench_logging.py [--requests 400]

Both apps share one loaded engine (the bundled index: run `kb index` first) and are driven
in-process through FastAPI's TestClient, alternating between them so machine noise hits both
alike. "On" is the real SQLite store (masking, background writer); "off" discards records.
Afterwards the SQLite store is closed and its rows counted: a clean shutdown must lose nothing.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from kb_service.search.engine import SearchEngine
from kb_service.settings import PROJECT_ROOT, Settings
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import QueryLog
from kb_service.web.app import create_app


class DiscardingLogStore:
    """The UsageLogStore protocol with nothing behind it: logging off."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def record_query(self, entry: QueryLog) -> None:
        self._ids.add(entry.query_id)

    def record_event(self, query_id: str, article_id: str, type: str, ts: float | None = None) -> None:
        pass

    def record_feedback(self, query_id: str, article_id: str | None, resolved: bool, comment: str | None = None,
                        ts: float | None = None) -> None:
        pass

    def has_query(self, query_id: str) -> bool:
        return query_id in self._ids

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def percentiles(samples: list[float]) -> str:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {qs[49]:.2f} ms  p95 {qs[94]:.2f} ms  p99 {qs[98]:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="searches per setting")
    args = parser.parse_args()
    queries = [json.loads(line)["query"] for line in (PROJECT_ROOT / "eval" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    # Customer details pasted into the box: the masking path runs too.
    queries += ["客户身份证110101199003078515要查保单", "手机号13812345678的客户报案进度", "车牌粤B12345出险了"]
    with tempfile.TemporaryDirectory(prefix="kb-logbench-") as tmp:
        settings = Settings(log_db=Path(tmp) / "usage.sqlite3")
        engine = SearchEngine.open(settings)
        sqlite_store = SQLiteLogStore(settings.log_db)
        clients = {
            "logging on": TestClient(create_app(settings, engine=engine, store=sqlite_store)),
            "logging off": TestClient(create_app(settings, engine=engine, store=DiscardingLogStore())),
        }
        latencies: dict[str, list[float]] = {name: [] for name in clients}
        for client in clients.values():  # warm-up
            for q in queries[:10]:
                client.get("/api/search", params={"q": q})
        for i in range(args.requests):
            q = queries[i % len(queries)]
            order = list(clients.items()) if i % 2 == 0 else list(reversed(clients.items()))
            for name, client in order:
                start = time.perf_counter()
                response = client.get("/api/search", params={"q": q})
                latencies[name].append((time.perf_counter() - start) * 1000)
                response.raise_for_status()
        for name, samples in latencies.items():
            print(f"{name:12s} {percentiles(samples)}  mean {statistics.fmean(samples):.2f} ms")
        on, off = (statistics.median(latencies[n]) for n in ("logging on", "logging off"))
        print(f"median ratio on/off: {on / off:.3f}")
        sqlite_store.close()
        with sqlite3.connect(settings.log_db) as db:
            rows = db.execute("SELECT COUNT(*) FROM queries").fetchone()[0]
        expected = args.requests + 10
        print(f"rows in the log after close: {rows} of {expected} searches ({'nothing lost' if rows == expected else 'LOST ROWS'})")


if __name__ == "__main__":
    main()
