"""Server time per analyst-workbench page on a simulated usage log (target: ≤ 2 s per page at 1M queries).

Each workbench page is the API requests it makes; they are sent in-process (FastAPI TestClient,
no network in the figure) to the real app with the real search engine and embedder (so gap topics
are grouped by meaning, as served). Every page is timed twice: cold (the first request for the
period: the report section is aggregated from SQLite) and warm (the same period again within
KB_REPORT_CACHE_SECONDS: served from the section cache, as when an analyst sorts, drills down or
comes back to a tab). Drill-downs are never cached.

Usage: python scripts/bench_workbench.py [--queries 1000000] [--keep DIR] [--index-dir DIR]
The simulated log is written by scripts/simulate_usage.py (reused from --keep when present).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 2.0


def simulate(db: Path, queries: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "simulate_usage.py"), "--out", str(db), "--queries",
                    str(queries), "--agents", str(max(20, queries // 5000)), "--days", "28"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _timed(client, url: str) -> tuple[float, dict]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url}: HTTP {response.status_code} {response.text[:200]}")
    return elapsed, response.json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="folder for the simulated log (reused if present)")
    parser.add_argument("--index-dir", type=Path, help="built index to serve (default: KB_INDEX_DIR)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from fastapi.testclient import TestClient

    from kb_service.settings import Settings
    from kb_service.web.app import create_app

    folder = args.keep or Path(tempfile.mkdtemp(prefix="kb-workbench-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"usage-{args.queries}.sqlite3"
    sim = simulate(db, args.queries) if not db.exists() else 0.0
    settings = Settings().with_overrides(log_db=db, index_dir=args.index_dir, agent_keys="", editor_keys="",
                                         analyst_keys="")
    started = time.perf_counter()
    client = TestClient(create_app(settings))
    print(f"log: {db} ({args.queries:,} queries; simulated in {sim:.1f}s); app with engine ready in "
          f"{time.perf_counter() - started:.1f}s")
    pages = [("概览与高频查询", "/api/reports/frequency"), ("内容缺口", "/api/reports/gaps"),
             ("文章表现", "/api/reports/articles"), ("相似问建议", "/api/workbench/proposals"),
             ("待复核文章", "/api/workbench/stale")]
    failed = False
    print(f"{'page':<16} {'cold s':>7} {'warm s':>7}  notes")
    results: dict[str, dict] = {}
    for name, url in pages:
        cold, data = _timed(client, url)
        warm, _ = _timed(client, url)
        results[url] = data
        ok = warm <= TARGET_SECONDS and cold <= TARGET_SECONDS
        failed |= not ok
        print(f"{name:<16} {cold:>7.2f} {warm:>7.2f}  {'ok' if ok else 'OVER 2 s'}")
    gaps = results["/api/reports/gaps"].get("gaps") or []
    articles = results["/api/reports/articles"].get("articles") or []
    drills = []
    if gaps:
        drills.append((f"缺口主题→查询（{gaps[0]['label']}）", f"/api/workbench/gaps/{gaps[0]['rank']}/queries"))
    if articles:
        top = max(articles, key=lambda a: a["impressions"])
        drills.append((f"文章→查询/版本（{top['article_id']}，{top['impressions']:,} 次展示）",
                       f"/api/workbench/articles/{top['article_id']}"))
    for name, url in drills:
        seconds, _ = _timed(client, url)
        failed |= seconds > TARGET_SECONDS
        print(f"{name}: {seconds:.2f}s {'ok' if seconds <= TARGET_SECONDS else 'OVER 2 s'}")
    print(f"gap topics grouped by: {results['/api/reports/gaps'].get('gap_method')}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
