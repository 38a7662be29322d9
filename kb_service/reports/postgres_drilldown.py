"""The workbench drill-down reads (`drilldown.py`) on a PostgreSQL usage log.

The same statements as the SQLite reads, in PostgreSQL's dialect: `= ANY(array)` for the wanted
texts and query ids, booleans summed as 0/1, averages as float, text order bytewise (COLLATE "C",
SQLite's BINARY). Impressions are joined to their query on the key (query id, ts) and bounded by the
period too, so only the period's monthly partitions are read. Votes come in the order they were
cast (`feedback.seq`, SQLite's integer id). `drilldown.py` shapes the rows for both logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kb_service.reports.data import Period
from kb_service.reports.drilldown import GAP_TEMPLATE
from kb_service.reports.postgres_reader import _STANDING_VOTE

C = 'COLLATE "C"'
# The report's definition of a gap query (drilldown.GAP_CONDITION), with PostgreSQL's standing-vote rule.
GAP_CONDITION = GAP_TEMPLATE.format(standing=_STANDING_VOTE.format(tie="g.seq > f.seq"))


def _connect(url: str) -> Any:
    import psycopg

    # Read-only, like the SQLite reads' mode=ro: a drill-down never writes to the log.
    conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    conn.execute("SET default_transaction_read_only = on")
    return conn


def _bounds(period: Period, alias: str) -> tuple[str, dict[str, float]]:
    low, high = period.bounds()
    clauses, args = [], {}
    if low != float("-inf"):
        clauses.append(f"{alias}.ts >= %(low)s")
        args["low"] = low
    if high != float("inf"):
        clauses.append(f"{alias}.ts < %(high)s")
        args["high"] = high
    return (" AND ".join(clauses) or "TRUE"), args


def fetch_queries(url: str, period: Period, normalised: Sequence[str], limit: int,
                  gaps_only: bool) -> tuple[list[tuple], dict, dict, dict]:
    """(query rows, shown, clicks, votes) as `drilldown.query_cases` takes them."""
    where, args = _bounds(period, "q")
    if gaps_only:
        where = f"{where} AND {GAP_CONDITION}"
    with _connect(url) as conn:
        rows = conn.execute(
            "SELECT q.query_id, q.ts, q.query_masked, q.confident, q.n_hits FROM queries q "
            f"WHERE q.query_normalised = ANY(%(texts)s) AND {where} ORDER BY q.ts DESC LIMIT %(limit)s",
            {**args, "texts": list(dict.fromkeys(normalised)), "limit": limit}).fetchall()
        keys = {"ids": [r[0] for r in rows], "ts": [r[1] for r in rows]}
        shown: dict[str, list[tuple[int, str]]] = {}
        clicks: dict[str, list[tuple[str, str]]] = {}
        votes: dict[str, list[tuple[str | None, int]]] = {}
        for qid, rank, article in conn.execute(
                "SELECT i.query_id, i.rank, i.article_id FROM impressions i JOIN unnest(%(ids)s::text[], "
                "%(ts)s::float8[]) k(query_id, ts) ON i.query_id = k.query_id AND i.ts = k.ts ORDER BY i.rank",
                keys):
            shown.setdefault(qid, []).append((rank, article))
        for qid, article, kind in conn.execute(
                "SELECT query_id, article_id, type FROM events WHERE query_id = ANY(%(ids)s) "
                f"GROUP BY query_id, article_id, type ORDER BY MIN(ts), article_id {C}, type {C}", keys):
            clicks.setdefault(qid, []).append((article, kind))
        for qid, article, resolved in conn.execute(
                "SELECT query_id, article_id, resolved FROM feedback WHERE query_id = ANY(%(ids)s) ORDER BY seq",
                keys):
            votes.setdefault(qid, []).append((article, resolved))
    return rows, shown, clicks, votes


def fetch_article(url: str, period: Period, article_id: str, limit: int) -> tuple[list[tuple], list[tuple]]:
    """(per-version rows, per-question rows) as `drilldown.article_result` takes them."""
    where, args = _bounds(period, "q")
    both = f"{where} AND {where.replace('q.ts', 'i.ts')}"  # the impressions' months only
    opened = ("(EXISTS (SELECT 1 FROM events e WHERE e.query_id = i.query_id AND e.article_id = i.article_id "
              "AND e.type = 'open'))::int")
    resolved = ("(EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = i.query_id AND f.article_id = i.article_id "
                "AND f.resolved = 1))::int")
    joined = "impressions i JOIN queries q ON q.query_id = i.query_id AND q.ts = i.ts"
    params = {**args, "article": article_id, "limit": limit}
    with _connect(url) as conn:
        versions = conn.execute(
            f"SELECT i.article_version, COUNT(*), AVG(i.rank)::float8, SUM({opened}), SUM({resolved}), MIN(q.ts), "
            f"MAX(q.ts) FROM {joined} WHERE i.article_id = %(article)s AND {both} "
            "GROUP BY i.article_version ORDER BY i.article_version", params).fetchall()
        queries = conn.execute(
            f"SELECT q.query_normalised, MAX(q.query_masked {C}), COUNT(*), SUM((q.confident = 0)::int), "
            f"AVG(i.rank)::float8, SUM({opened}), SUM({resolved}) FROM {joined} "
            f"WHERE i.article_id = %(article)s AND {both} GROUP BY q.query_normalised "
            f"ORDER BY COUNT(*) DESC, q.query_normalised {C} LIMIT %(limit)s", params).fetchall()
    return versions, queries
