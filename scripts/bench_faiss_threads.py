"""FAISS on one thread per query (what the engine sets from KB_THREADS) against every core, in one process.

Alternates the two settings over the same engine and queries, so the machine's noise falls on both
alike. Needs a corpus kept by the search benchmark:

    python scripts/bench_search.py --passages 10000 --keep /tmp/kbbench
    python scripts/bench_faiss_threads.py --corpus /tmp/kbbench/corpus-10000 [--rounds 3]

Prints, per round and setting: the flat passage scan (ms per search) and the whole hybrid search's
p50 over the own set's queries and over 500-character pasted messages.
"""

from __future__ import annotations

import os
import statistics
import time

import faiss
import numpy as np
from bench_search import open_kept_corpus_bench


def median_ms(run, items: list, repeat: int = 1) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for item in items:
        start = time.perf_counter()
        for _ in range(repeat):
            run(item)
        samples.append((time.perf_counter() - start) * 1000 / repeat)
    return statistics.median(samples)


def main() -> None:
    bench = open_kept_corpus_bench(__doc__.splitlines()[0])
    engine, queries, pasted = bench.engine, bench.queries, bench.pasted
    largest = max(engine._snapshot.segments, key=lambda segment: segment.vectors.size)  # noqa: SLF001
    vectors = engine.embedder.encode(queries[:50])
    cores = os.cpu_count() or 1
    for round_number in range(1, bench.rounds + 1):
        for threads in (1, cores):
            faiss.omp_set_num_threads(threads)
            scan = median_ms(lambda v: largest.vectors.search(np.asarray(v), 30), list(vectors), repeat=20)
            short = median_ms(engine.search, queries)
            long = median_ms(engine.search, pasted)
            print(f"round {round_number}, {threads} thread(s): passage scan ({largest.vectors.size} vectors) "
                  f"{scan:.2f} ms, hybrid p50 {short:.1f} ms, pasted p50 {long:.1f} ms", flush=True)
    engine.close()


if __name__ == "__main__":
    main()
