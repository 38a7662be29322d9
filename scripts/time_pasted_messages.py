"""Median search time of short queries and of pasted ~500-character chat messages, in process.

For A/B timing of two checkouts on one machine: run it alternately with each checkout's code on
PYTHONPATH (and that checkout's own kept index), e.g.

    PYTHONPATH=/tmp/before python scripts/time_pasted_messages.py /tmp/kbbench-before/corpus-10000 /tmp/before
    PYTHONPATH=.           python scripts/time_pasted_messages.py /tmp/kbbench-after/corpus-10000 .

It also times the ONNX embedding alone, which shows how much the machine itself moves between runs.
`--untold-story-ab` also times pasted messages with and without the lexical side reading the story
their question leaves out (Reading.untold_story), alternating in one process:

    python scripts/time_pasted_messages.py /tmp/kbbench/corpus-10000 . --untold-story-ab
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def median_ms(fn: Callable[[str], object], items: Iterable[str]) -> float:
    times = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="a kept bench_search.py corpus (articles/ and indexes/)")
    parser.add_argument("project", type=Path, help="the checkout whose eval/queries.jsonl and scripts/ to use")
    parser.add_argument("--untold-story-ab", action="store_true",
                        help="also time pasted messages with and without the untold story, alternating")
    args = parser.parse_args()
    sys.path.insert(0, str(args.project / "scripts"))
    import bench_search  # the same pasted messages bench_search.py times

    from kb_service.settings import Settings

    try:
        engine_module = importlib.import_module("kb_service.search.engine")
    except ImportError:  # a checkout from before the package was laid out by stage
        engine_module = importlib.import_module("kb_service.engine")
    SearchEngine = engine_module.SearchEngine  # noqa: N806 - the class, whichever checkout
    settings = Settings(articles_dir=args.corpus / "articles", index_dir=args.corpus / "indexes",
                        lexicon_path=args.project / "articles" / "lexicon.yaml")
    engine = SearchEngine.open(settings)
    lines = (args.project / "eval" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["query"] for line in lines if line.strip()][:100]
    pasted = bench_search.pasted_messages(queries)
    for message in pasted[:5]:
        engine.search(message)
    embedder = engine.embedder
    print(f"search, pasted messages: p50 {median_ms(engine.search, pasted)} ms")
    print(f"search, short queries:   p50 {median_ms(engine.search, queries)} ms")
    print(f"embedding 80 characters: p50 {median_ms(lambda t: embedder.encode([t]), [m[:80] for m in pasted])} ms")
    if args.untold_story_ab:
        print(untold_story_ab(engine.search, pasted))


def untold_story_ab(search: Callable[[str], object], pasted: list[str], rounds: int = 6) -> str:
    """Median over alternating rounds, with the untold story read (as served) and without it."""
    from kb_service.query.reading import Reading

    served = Reading.untold_story
    times: dict[str, list[float]] = {"with": [], "without": []}
    try:
        for _ in range(rounds):
            for name in times:
                Reading.untold_story = served if name == "with" else property(lambda _self: None)  # type: ignore[method-assign]
                for message in pasted:
                    started = time.perf_counter()
                    search(message)
                    times[name].append((time.perf_counter() - started) * 1000)
    finally:
        Reading.untold_story = served  # type: ignore[method-assign]
    return (f"pasted messages, untold story read: p50 {statistics.median(times['with']):.2f} ms; "
            f"not read: p50 {statistics.median(times['without']):.2f} ms ({rounds} alternating rounds)")


if __name__ == "__main__":
    main()
