#!/usr/bin/env python
"""Load generator for a running kb_service on this machine.

    python scripts/load_test.py --url http://127.0.0.1:8000 --clients 1,8,32 --duration 10
    python scripts/load_test.py --requests 500 --queries my_queries.txt --key "$KB_LOAD_KEY"

Each concurrency level runs `clients` agents that search back to back (no think time) until the
duration or request budget is used up, then prints requests/s, p50/p95/p99 latency and errors.
It only ever targets the loopback interface: pointing a load test at a shared server by
mistake would degrade it for the agents on calls.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

# What agents type during calls: colloquial, short, sometimes with typos or pasted fragments.
BUILTIN_QUERIES = [
    "三者险赔多少",
    "车被水淹了能赔吗",
    "交强险和商业险有什么区别",
    "撞了别人谁赔",
    "理赔要交什么材料",
    "报案电话多少",
    "出险后多久要报案",
    "定损不满意怎么办",
    "车损险包括哪些",
    "玻璃碎了保险赔吗",
    "自燃了能赔吗",
    "车被偷了怎么理赔",
    "酒驾出事保险赔不赔",
    "无证驾驶保险公司赔吗",
    "座位险保谁",
    "不计免赔是什么意思",
    "续保优惠怎么算",
    "退保能退多少钱",
    "保单怎么批改",
    "过户后保险怎么办",
    "理赔进度怎么查",
    "理赔款多久到账",
    "客户要投诉怎么安抚",
    "客户情绪激动怎么说",
    "客户说要打12378",
    "怎么核实客户身份",
    "客户要查别人的保单",
    "电子保单怎么下载",
    "发票怎么开",
    "异地出险怎么理赔",
    "单方事故怎么处理",
    "对方全责怎么走流程",
    "停车被刮找不到人",
    "暴雨泡水车发动机坏了",
    "冰雹砸车算什么险",
    "新能源车电池进水",
    "维修发票丢了怎么办",
    "事故认定书没拿到",
    "三责险保额选多少",
    "车上人员险和意外险区别",
]

LOOPBACK_NAMES = {"localhost"}


def check_local(url: str) -> None:
    """Refuse anything but this machine (see module docstring)."""
    host = (urlsplit(url).hostname or "").lower()
    if host in LOOPBACK_NAMES:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"refusing to load-test {host or url!r}: only 127.0.0.1 / localhost are allowed")


def load_queries(path: Path | None) -> list[str]:
    if path is None:
        return list(BUILTIN_QUERIES)
    queries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    queries = [q for q in queries if q and not q.startswith("#")]
    if not queries:
        raise SystemExit(f"{path} holds no queries (one per line, # for comments)")
    return queries


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile: an actually observed latency, never an interpolation."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(pct / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


@dataclass
class LevelResult:
    clients: int
    elapsed: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors

    def row(self) -> str:
        lat = sorted(self.latencies_ms)
        rps = self.requests / self.elapsed if self.elapsed else 0.0
        return (
            f"{self.clients:>7} {self.requests:>8} {self.errors:>6} {rps:>9.1f} "
            f"{percentile(lat, 50):>8.1f} {percentile(lat, 95):>8.1f} {percentile(lat, 99):>8.1f} "
            f"{(lat[-1] if lat else float('nan')):>8.1f}"
        )


HEADER = f"{'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"


async def run_level(
    http: httpx.AsyncClient,
    clients: int,
    queries: list[str],
    duration: float | None,
    budget: int | None,
    k: int,
) -> LevelResult:
    """`clients` concurrent agents; stops at the deadline or when `budget` requests were sent."""
    result = LevelResult(clients=clients, elapsed=0.0)
    tickets = itertools.count()
    started = time.perf_counter()
    deadline = started + duration if duration is not None else float("inf")
    rng = random.Random(clients)

    async def agent(agent_no: int) -> None:
        headers = {"X-Agent-Id": f"load-{agent_no}", "X-Session-Id": f"load-{clients}-{agent_no}"}
        while time.perf_counter() < deadline:
            if budget is not None and next(tickets) >= budget:
                return
            q = rng.choice(queries)
            t0 = time.perf_counter()
            try:
                response = await http.get("/api/search", params={"q": q, "k": k}, headers=headers)
                ok = response.status_code == 200
                problem = "" if ok else f"HTTP {response.status_code}: {response.text[:120]}"
            except httpx.HTTPError as exc:
                ok, problem = False, f"{type(exc).__name__}: {exc}"
            if ok:
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            else:
                result.errors += 1
                if len(result.error_samples) < 3:
                    result.error_samples.append(problem)

    await asyncio.gather(*(agent(i) for i in range(clients)))
    result.elapsed = time.perf_counter() - started
    return result


async def run(args: argparse.Namespace) -> int:
    queries = load_queries(args.queries)
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    if not levels or min(levels) < 1:
        raise SystemExit("--clients: comma-separated positive numbers, e.g. 1,8,32")
    duration = None if args.requests is not None else args.duration
    key = args.key or os.environ.get("KB_LOAD_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limits = httpx.Limits(max_connections=max(levels), max_keepalive_connections=max(levels))
    async with httpx.AsyncClient(
        base_url=args.url, headers=headers, timeout=args.timeout, limits=limits
    ) as http:
        try:
            health = (await http.get("/api/health")).json()
        except httpx.HTTPError as exc:
            raise SystemExit(f"no kb_service at {args.url}: {exc}") from exc
        print(f"target {args.url}  index {health.get('index_version')}  model {health.get('model')}")
        for q in queries[: args.warmup]:  # first searches load models and caches
            await http.get("/api/search", params={"q": q, "k": args.k})
        budget_text = f"{args.requests} requests" if duration is None else f"{duration:g}s"
        print(f"{len(queries)} queries, {budget_text} per level\n{HEADER}")
        total_errors = 0
        for clients in levels:
            result = await run_level(http, clients, queries, duration, args.requests, args.k)
            print(result.row(), flush=True)
            for sample in result.error_samples:
                print(f"        e.g. {sample}")
            total_errors += result.errors
    return 1 if total_errors else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server on this machine")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels, comma-separated")
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument("--duration", type=float, default=10.0, help="seconds per level (default 10)")
    bound.add_argument("--requests", type=int, help="requests per level instead of a duration")
    parser.add_argument("--queries", type=Path, help="file with one query per line (default: built-in list)")
    parser.add_argument("--key", help="API key (or env KB_LOAD_KEY) when the server has keys")
    parser.add_argument("--k", type=int, default=5, help="results per search")
    parser.add_argument("--warmup", type=int, default=5, help="untimed searches before the first level")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    args = parser.parse_args(argv)
    if args.requests is not None and args.requests < 1:
        parser.error("--requests must be positive")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    check_local(args.url)
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
