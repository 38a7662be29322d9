"""Suggestion latency: a 6-turn conversation → /api/suggest's core, in process, on the bundled articles.

Prints p50/p95/p99 over many conversations (targets: p50 ≤ 30 ms, p95 ≤ 80 ms). Times what the
route spends per request: reading the turns, the customer's open question(s), the engine's search
(query reading, embedding, ranking for each detected question). HTTP and logging are excluded
(the log write is queued to a background thread and does not add to a request).

    python scripts/bench_suggest.py [--rounds 300] [--index-dir DIR]

Uses the serving index in KB_INDEX_DIR (indexes/); builds it there first when none is built.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from kb_service.assist.conversation import parse_turns, suggest
from kb_service.index.builder import build_index
from kb_service.index.store import current_generation
from kb_service.search.engine import SearchEngine
from kb_service.settings import Settings

OPENERS = ["你好，在吗", "您好，我想咨询一下", "亲，问个事"]
AGENT_REPLIES = ["您好，请问有什么可以帮您？", "好的，请您详细说一下情况。", "明白，我帮您查一下。"]
QUESTIONS = [
    "我的车昨天被水淹了，车损险能赔吗？", "三者险赔多少？另外理赔需要什么材料？", "报案晚了几天还能理赔吗",
    "交强险过期了怎么办，还能上路吗", "车被偷了怎么理赔", "玻璃碎了保险赔不赔", "我想投诉，理赔太慢了",
    "续保有优惠吗？新能源车电池坏了保不保", "出险后多久要报案", "事故认定书丢了怎么办",
]
STORIES = ["我是上个月买的保险", "对方全责但是联系不上", "车在修理厂放着", "手机号13912345678"]


def conversation(rng: random.Random) -> list[dict]:
    """Six turns: customer, agent, customer, agent, then the customer's two latest messages."""
    return [
        {"role": "customer", "text": rng.choice(OPENERS), "ts": 1},
        {"role": "agent", "text": rng.choice(AGENT_REPLIES), "ts": 2},
        {"role": "customer", "text": rng.choice(QUESTIONS), "ts": 3},
        {"role": "agent", "text": rng.choice(AGENT_REPLIES), "ts": 4},
        {"role": "customer", "text": rng.choice(STORIES), "ts": 5},
        {"role": "customer", "text": rng.choice(QUESTIONS), "ts": 6},
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--index-dir", default=None)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    settings = Settings().with_overrides(index_dir=args.index_dir)
    if current_generation(settings.index_dir) is None:
        started = time.perf_counter()
        report = build_index(settings)
        print(f"built the bundled index ({report.articles} articles) in {time.perf_counter() - started:.1f} s")
    engine = SearchEngine.open(settings)
    rng = random.Random(args.seed)
    for _ in range(20):  # warm-up: tokenizer dictionary, model, caches
        suggest(engine, parse_turns(conversation(rng)))
    timings: list[float] = []
    searches: list[float] = []  # the engine's search of the same text alone: what the machine gives today
    groups = 0
    for _ in range(args.rounds):
        turns = conversation(rng)
        started = time.perf_counter()
        result = suggest(engine, parse_turns(turns))
        timings.append((time.perf_counter() - started) * 1000)
        groups += len(result.groups())
        started = time.perf_counter()
        engine.search(result.open_question.text, k=3)
        searches.append((time.perf_counter() - started) * 1000)
    info = engine.info()
    print(f"index {info['index_version']}: {info['articles']} articles, {info['passages']} passages, model {info['model']}")
    print(f"{args.rounds} six-turn conversations, {groups / args.rounds:.2f} question groups each")
    print(f"suggest latency ms: p50 {percentile(timings, 0.5):.1f}  p95 {percentile(timings, 0.95):.1f}  "
          f"p99 {percentile(timings, 0.99):.1f}  mean {statistics.fmean(timings):.1f}  (targets p50 ≤ 30, p95 ≤ 80)")
    print(f"engine.search of the same text alone, ms: p50 {percentile(searches, 0.5):.1f}  "
          f"p95 {percentile(searches, 0.95):.1f}  (the difference is reading the turns)")


if __name__ == "__main__":
    main()
