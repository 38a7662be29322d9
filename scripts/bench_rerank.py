"""What the learned re-ranker costs a search: the same engine and index, the re-ranker on and off.

One process, alternating rounds, so the machine's noise falls on both alike (docs/benchmarks.md).
Needs a corpus kept by the search benchmark:

    python scripts/bench_rerank.py --corpus /tmp/kbbench/corpus-10000 [--rounds 3]

Prints, per round and setting, the hybrid p50 and p95 over our own set's queries and the p50 over
100 pasted messages built from them (as bench_search.py builds them).
"""

from __future__ import annotations

import statistics
import time

from bench_search import open_kept_corpus_bench

from kb_service.search.engine import SearchEngine


def latencies_ms(engine: SearchEngine, queries: list[str]) -> list[float]:
    samples = []
    for query in queries:
        start = time.perf_counter()
        engine.search(query)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    bench = open_kept_corpus_bench(__doc__.splitlines()[0])
    engine, queries, pasted = bench.engine, bench.queries, bench.pasted
    trees = engine.reranker
    if trees is None:
        raise SystemExit("no re-ranker for this embedder in kb_service/resources/reranker.json")
    for round_number in range(1, bench.rounds + 1):
        for name, reranker in (("fused order", None), ("re-ranked", trees)):
            engine.reranker = reranker
            short = latencies_ms(engine, queries)
            long = latencies_ms(engine, pasted)
            p95 = statistics.quantiles(short, n=20)[-1]
            print(f"round {round_number}, {name:11s}: hybrid p50 {statistics.median(short):.1f} ms, p95 {p95:.1f} ms, "
                  f"pasted p50 {statistics.median(long):.1f} ms", flush=True)
    engine.close()


if __name__ == "__main__":
    main()
