"""Query-embedding cost per runtime, passage-embedding cost alone vs batched, and mean in-process
hybrid search time on the bundled knowledge base (needs `kb index` first).

    python scripts/bench_embedding.py [--threads]

`--threads` instead compares one query's embedding (m3e-small int8) on one thread against every
core, alternating three times: median time one at a time, and queries a second with two and four
clients embedding at once (what one worker serving several agents sees).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kb_service.index.builder import embedding_text
from kb_service.index.embedding import load_embedder
from kb_service.search.engine import SearchEngine
from kb_service.settings import PROJECT_ROOT, Settings


def threads_ab(models: Path, queries: list[str], rounds: int = 3) -> None:
    """One thread against every core for one query's embedding, alternating so noise hits both."""
    cores = len(os.sched_getaffinity(0))
    embedders = {threads: load_embedder("m3e-small", "onnx-int8", models, threads) for threads in sorted({1, cores})}
    for _ in range(rounds):
        for threads, embedder in embedders.items():
            embedder.encode(queries[:5])
            samples = []
            for q in queries:
                start = time.perf_counter()
                embedder.encode([q])
                samples.append((time.perf_counter() - start) * 1000)
            rates = []
            for clients in (2, 4):
                start = time.perf_counter()
                with ThreadPoolExecutor(clients) as pool:
                    list(pool.map(lambda q, e=embedder: e.encode([q]), queries * 2))
                rates.append(f"{clients} clients {len(queries) * 2 / (time.perf_counter() - start):.0f}/s")
            print(f"{threads} thread(s): median {statistics.median(samples):.1f} ms a query alone; " + ", ".join(rates))


def main() -> None:
    settings = Settings()
    models = Path(settings.index_dir) / "models"
    queries = [json.loads(line)["query"] for line in (PROJECT_ROOT / "eval" / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    if "--threads" in sys.argv[1:]:
        threads_ab(models, queries)
        return
    for model, runtime in (("m3e-small", "onnx-int8"), ("m3e-small", "torch"), ("use-multilingual", "")):
        embedder = load_embedder(model, runtime, models, 1)
        embedder.encode(queries[:5])
        start = time.perf_counter()
        for q in queries:
            embedder.encode([q])
        print(f"query embedding {embedder.name}: {(time.perf_counter() - start) / len(queries) * 1000:.1f} ms/query")
    engine = SearchEngine.open(settings)
    texts = [embedding_text(p, settings.embedded_aliases) for p in sorted(engine.passages(), key=lambda p: p.passage_id)][:96]
    onnx = load_embedder("m3e-small", "onnx-int8", models, 1)
    start = time.perf_counter()
    onnx.encode(texts)
    print(f"passage embedding m3e-small int8, one per run: {(time.perf_counter() - start) / len(texts) * 1000:.1f} ms/passage")
    start = time.perf_counter()
    for q in queries:
        engine.search(q)
    print(f"in-process hybrid search, bundled articles: {(time.perf_counter() - start) / len(queries) * 1000:.1f} ms/query mean")


if __name__ == "__main__":
    main()
