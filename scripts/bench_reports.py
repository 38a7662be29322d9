"""Time the full analyst report on simulated logs of 100k and 1M queries.

Target on the 2-core CI machine: build_report + render_html for 1M queries in ≤ 60 s with peak
memory ≤ 2 GB. Each size runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own and
not the simulator's or the previous size's; tracemalloc is not used for the timing run because it
slows Python allocation several-fold (pass --tracemalloc for a separate Python-heap figure).

Usage: python scripts/bench_reports.py [--sizes 100000 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 60.0
TARGET_MB = 2048.0

CHILD = r"""
import json, resource, sys, time, tracemalloc
sys.path.insert(0, {root!r})
from kb_service.reports import build_report, render_html, load_article_catalog
from kb_service.settings import Settings
catalog = load_article_catalog(Settings())
trace = {trace!r}
if trace:
    tracemalloc.start()
t0 = time.perf_counter()
report = build_report({db!r}, article_catalog=catalog)
t1 = time.perf_counter()
page = render_html(report)
t2 = time.perf_counter()
out = {{"build_s": t1 - t0, "render_s": t2 - t1, "total_s": t2 - t0, "html_bytes": len(page.encode()),
       "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "queries": report.summary.queries, "gap_clusters": len(report.gaps),
       "query_groups": report.summary.query_groups, "distinct_queries": report.summary.distinct_queries}}
if trace:
    out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps(out))
"""


def simulate(db: Path, queries: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "simulate_usage.py"), "--out", str(db), "--queries", str(queries),
         "--agents", str(max(20, queries // 5000)), "--days", "28"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def measure(db: Path, trace: bool = False) -> dict:
    code = CHILD.format(root=str(ROOT), db=str(db), trace=trace)
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, help="keep the simulated logs in this folder (reused if present)")
    parser.add_argument("--tracemalloc", action="store_true", help="also report the Python heap peak (slower run)")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="kb-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    failed = False
    print(f"{'queries':>10} {'simulate':>9} {'build':>7} {'render':>7} {'total':>7} {'peak RSS':>9}  notes")
    for size in args.sizes:
        db = folder / f"usage-{size}.sqlite3"
        sim_s = simulate(db, size) if not db.exists() else 0.0
        m = measure(db)
        notes = (f"{m['distinct_queries']:,} distinct → {m['query_groups']:,} groups, {m['gap_clusters']} gap clusters, "
                 f"HTML {m['html_bytes'] / 1e6:.1f} MB")
        if args.tracemalloc:
            notes += f", Python heap peak {measure(db, trace=True)['tracemalloc_peak_mb']:.0f} MB"
        print(f"{size:>10,} {sim_s:>8.1f}s {m['build_s']:>6.1f}s {m['render_s']:>6.1f}s {m['total_s']:>6.1f}s "
              f"{m['peak_rss_mb']:>7.0f}MB  {notes}")
        if size >= 1_000_000 and (m["total_s"] > TARGET_SECONDS or m["peak_rss_mb"] > TARGET_MB):
            failed = True
            print(f"  over target ({TARGET_SECONDS:.0f}s, {TARGET_MB:.0f} MB)")
    if not args.keep:
        for db in folder.glob("usage-*"):
            db.unlink()
        folder.rmdir()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
