"""Time the analyst report on the same simulated log in SQLite and in PostgreSQL, and check they agree.

A throw-away PostgreSQL server (scripts/local_cluster.py, Debian's binaries) receives a copy of the
simulated SQLite log through the PostgreSQL store (`usage_log.transfer`), then `build_report` runs
on both. Prints the copy time, each build time and whether every section is equal.

Usage: python scripts/bench_pg_reports.py [--queries 100000] [--runs 2] [--cache-dir DIR] [--vacuum]
       python scripts/bench_pg_reports.py --url postgresql://… [--runs 2]

With --url: only the PostgreSQL report, on a log already there (one loaded earlier, e.g. 10M
queries), split into the time spent in the reader's SQL statements and the rest (Python).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def time_existing(url: str, runs: int, cache_dir: Path | None = None) -> int:
    """build_report on an existing PostgreSQL log, `runs` times: total, SQL and the rest."""
    from kb_service.reports import build_report, load_article_catalog
    from kb_service.reports.postgres_reader import PgLogReader
    from kb_service.settings import Settings

    in_sql = [0.0]

    def timed(method):  # the reader's two ways of running a statement
        def run(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                in_sql[0] += time.perf_counter() - t0
        return run

    PgLogReader._exec = timed(PgLogReader._exec)  # type: ignore[method-assign]
    PgLogReader._rows = timed(PgLogReader._rows)  # type: ignore[method-assign]
    catalog = load_article_catalog(Settings(index_dir=ROOT / "no-index", articles_dir=ROOT / "articles"))
    for _ in range(runs):
        in_sql[0] = 0.0
        t0 = time.perf_counter()
        report = build_report(url, article_catalog=catalog, vector_cache_dir=cache_dir)
        total = time.perf_counter() - t0
        print(f"build_report on postgres ({report.summary.queries:,} queries): {total:.2f} s "
              f"(SQL {in_sql[0]:.2f} s, the rest {total - in_sql[0]:.2f} s)", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--url", help="time the report on this existing PostgreSQL log instead")
    parser.add_argument("--runs", type=int, default=1, help="how many PostgreSQL reports (the first fills --cache-dir)")
    parser.add_argument("--cache-dir", type=Path, help="the report's text caches, as `kb report` and the workbench "
                        "keep them beside the index (near-duplicate pairs); default: none")
    parser.add_argument("--vacuum", action="store_true", help="VACUUM ANALYZE after the copy, before the reports")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.url:
        return time_existing(args.url, args.runs, args.cache_dir)
    from kb_service.reports import build_report, load_article_catalog, report_to_json
    from kb_service.settings import Settings
    from kb_service.usage_log.postgres import PostgresLogStore
    from kb_service.usage_log.transfer import copy_log

    sim, cluster = _load("simulate_usage"), _load("local_cluster")
    bin_dir = cluster.find_pg_bin()
    if bin_dir is None:
        print("PostgreSQL binaries not found", file=sys.stderr)
        return 2
    catalog = load_article_catalog(Settings(index_dir=ROOT / "no-index", articles_dir=ROOT / "articles"))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "usage.sqlite3"
        sim.simulate(db, sim.SimConfig(queries=args.queries, agents=200, days=28, seed=7), ROOT / "articles")
        server = cluster.PostgresServer(bin_dir).start()
        try:
            url = server.create_database()
            t0 = time.perf_counter()
            with PostgresLogStore(url) as store:
                copied = copy_log(db, store)
            copy_s = time.perf_counter() - t0
            if args.vacuum:  # what autovacuum does to a live log; a bulk copy has not met it yet
                import psycopg

                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")
            timings, sections = {}, {}
            # PostgreSQL first: its first run finds --cache-dir empty, later runs find it filled.
            runs = [("postgres" if i == 0 else f"postgres, run {i + 1}", url) for i in range(max(args.runs, 1))]
            runs.append(("sqlite", db))
            for name, log in runs:
                t0 = time.perf_counter()
                report = build_report(log, article_catalog=catalog, vector_cache_dir=args.cache_dir)
                timings[name] = time.perf_counter() - t0
                data = report_to_json(report)
                data.pop("generated_at", None)
                sections.setdefault(name.split(",")[0], data)
        finally:
            server.stop()
    print(f"queries: {args.queries:,}  records copied to PostgreSQL: {copied:,} in {copy_s:.1f} s")
    for name, seconds in timings.items():
        print(f"build_report on {name}: {seconds:.2f} s")
    equal = sections["sqlite"] == sections["postgres"]
    print(f"every section equal: {equal}")
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
