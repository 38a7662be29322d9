"""A small usage log written through the SQLite store that exercises every roll-up rule.

Queries on three days (UTC+8) with some just before and after midnight, one agent and session
spanning midnight, texts repeated across days, an article in two versions, clicks and votes
arriving in later batches (a vote hours after its query, on the next day), contradictory votes
(later and in the same second), a vote for an article the query did not show, a list-wide
都没解决, a replayed query id, an event logged before its query, conversation-sourced queries and
flags. Every period report over it must be the same from the roll-ups and from the raw rows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import FlagLog, Impression, QueryLog

UTC8 = dt.timezone(dt.timedelta(hours=8))
DAY1 = dt.datetime(2026, 11, 2, tzinfo=UTC8).timestamp()  # midnight starting 2026-11-02, Beijing time
TEXTS = ("三者险赔多少", "三者险能赔多少", "新能源车电池坏了赔吗", "代驾撞车了谁来赔", "请问玻璃碎了能赔吗",
         "客户电话13812345678问退保", "港澳自驾保险怎么买", "三者险赔多少")


def _query(n: int, ts: float, *, confident: bool = True, shown: tuple[str, ...] = ("art-a", "art-b"),
           version: int = 1, source: str = "search") -> QueryLog:
    impressions = [Impression(r + 1, a, version if a == "art-a" else 1, f"{a}#0", 1.0 / (r + 1))
                   for r, a in enumerate(shown)]
    return QueryLog(f"q{n}", ts, f"agent-{n % 3}", f"sess-{n % 4}", TEXTS[n % len(TEXTS)], confident,
                    len(shown), 10.0, "gen-1", impressions, source)  # type: ignore[arg-type]


def write_tricky_log(path: Path) -> None:
    """The log described in the module docstring (times relative to DAY1)."""
    with SQLiteLogStore(path) as store:
        store.record_event("q5", "art-a", "open", ts=DAY1 + 30)  # before its query is logged
        store.flush()
        moments = [-7200, -60, -1, 0, 1, 60, 3600, 86399, 86400, 86400 + 5, 2 * 86400 + 100, 2 * 86400 + 80000]
        for n, offset in enumerate(moments):
            store.record_query(_query(n, DAY1 + offset, confident=n % 3 != 0, version=1 if n < 7 else 2,
                                      shown=("art-a", "art-b", "art-c")[: 1 + n % 3],
                                      source="conversation" if n % 5 == 2 else "search"))
        store.record_query(_query(1, DAY1 + 999))  # replayed id: ignored with its impressions
        store.record_query(_query(99, DAY1 + 500, shown=()))  # no hits
        store.flush()
        for n in (1, 2, 4, 7, 8, 10):
            store.record_event(f"q{n}", "art-a", "open", ts=DAY1 + 86400 * 3)
        store.record_event("q4", "art-a", "copy")
        store.record_event("q8", "art-z", "open")  # an article the query did not show
        store.record_event("missing", "art-a", "open")  # a query that was never logged
        store.flush()
        store.record_feedback("q1", "art-a", True, ts=DAY1 + 10)
        store.record_feedback("q1", "art-a", False, ts=DAY1 + 10)  # same second, later id: stands
        store.record_feedback("q2", "art-a", True, ts=DAY1 + 86400 * 2)  # a day later
        store.flush()
        store.record_feedback("q2", None, False, ts=DAY1 + 86400 * 2 + 5)  # 都没解决 replaces 已解决
        store.record_feedback("q3", None, False, ts=DAY1 + 100)
        store.record_feedback("q3", "art-b", True, ts=DAY1 + 200)  # 已解决 replaces 都没解决
        store.record_feedback("q6", "art-z", True, ts=DAY1 + 100)  # never shown: version unknown
        store.record_feedback("q9", "art-a", False, ts=DAY1 + 86400 + 50)
        store.record_feedback("q0", "art-a", True, ts=DAY1)
        store.record_flag(FlagLog("art-a", 2, "wrong", "金额写错了", DAY1 + 70, "q7", "agent-1", "sess-3"))
