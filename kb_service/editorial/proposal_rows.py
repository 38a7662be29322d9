"""The rows 相似问 proposals start from, read from the SQLite log's per-query roll-ups.

proposals.py finds them with three statements over the raw tables (every resolved vote, every
query of the period with its votes, a self-join by session): ~2.5 s on a million-query log. The
SQLite writer keeps the same rows per query (usage_log/daily.py: daily_resolving, daily_gap_queries,
replaced in the transaction that touches the query), so for a period of whole days they are a
day-filtered read and one indexed join. The rows come back in the order the raw statements give
them (the examples a proposal lists and the resolving query that picks its section are the first
ones), which is the order of the index SQLite walks for each statement.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from kb_service.reports.data import Period
from kb_service.reports.sqlite_daily import day_bounds
from kb_service.reports.sqlite_reader import period_filter


def daily_candidate_rows(conn: Any, period: Period, window: float) -> dict[str, list[tuple]] | None:
    """{'in_query': rows, 'after_gap': rows} as proposals._candidate_rows gives them, or None when the
    log (PostgreSQL, or SQLite before the roll-ups) or the period (part of a day) needs the raw path."""
    if not isinstance(conn, sqlite3.Connection):
        return None
    low, high = period.bounds()
    days = day_bounds(low, high)
    if days is None or not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'daily_gap_queries'").fetchone():
        return None
    bounded = [bound not in (float("-inf"), float("inf")) for bound in (low, high)]
    where, args = period_filter("day", *days)
    # Raw order: the ts index drives both statements when the period has both ends (in_query) or
    # any end (after_gap); otherwise the feedback (in_query) and queries (after_gap) tables in rowid order.
    in_query = conn.execute(
        "SELECT query_id, query_masked, query_normalised, article_id, query_id, NULL FROM daily_resolving "
        f"{where}{' AND' if where else ' WHERE'} in_query "
        f"ORDER BY {'ts, qrow, feedback_id' if all(bounded) else 'feedback_id'}", args).fetchall()
    g_where, g_args = period_filter("g.day", *days)
    after_gap = conn.execute(
        "SELECT g.query_id, g.query_masked, g.query_normalised, r.article_id, r.query_id, r.query_normalised "
        "FROM daily_gap_queries g JOIN daily_resolving r ON r.session_id = g.session_id "
        f"AND r.agent_id IS g.agent_id AND r.ts > g.ts AND r.ts <= g.ts + {window} "
        f"{g_where}{' AND' if g_where else ' WHERE'} g.query_normalised != r.query_normalised "
        f"ORDER BY {'g.ts, g.qrow' if any(bounded) else 'g.qrow'}, r.ts, "
        f"{'r.qrow, r.feedback_id' if any(bounded) else 'r.feedback_id'}", g_args).fetchall()
    return {"in_query": in_query, "after_gap": after_gap}


def daily_shown_passages(conn: Any, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str] | None:
    """(resolving query, article) → the passage shown, kept with the resolved vote; None without roll-ups."""
    if not isinstance(conn, sqlite3.Connection) or not pairs:
        return None
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'daily_resolving'").fetchone():
        return None
    found: dict[tuple[str, str], str] = {}
    for query_id, article_id, passage in conn.execute(
            "SELECT query_id, article_id, passage_id FROM daily_resolving WHERE passage_id IS NOT NULL"):
        if (query_id, article_id) in pairs:
            found[(query_id, article_id)] = passage
    return found
