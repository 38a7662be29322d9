"""Drill-down reads for the analyst workbench: individual queries behind a row of a report.

The report aggregates; an analyst deciding what to write needs the cases: for a gap topic, each of
its queries with what the search showed and what the agent opened, copied and voted; for an
article, the questions that brought it up and how each of its versions fared. Every read is
bounded (LIMIT, the period) and goes through the log's query and article indexes, so a drill-down
stays fast on a million-query log. Texts are the log's masked ones.

A `postgresql://` log is read by `pg_drilldown` with the same SQL in PostgreSQL's dialect; the rows
are shaped into the answer here for both (`query_cases`, `article_result`).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from kb_service.reports.data import REPORT_TZ, Period
from kb_service.reports.sqlite_reader import _STANDING_VOTE, period_condition
from kb_service.usage_log.postgres import is_postgres_url

Catalog = Mapping[str, Mapping[str, Any]]
_CHUNK = 500


def _connect(db_path: Path | str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True, timeout=30.0)


def _bounds(period: Period, alias: str) -> tuple[str, list[float]]:
    return period_condition(f"{alias}.ts", *period.bounds())


def _local(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, REPORT_TZ).strftime("%Y-%m-%d %H:%M")


def _title(catalog: Catalog, article_id: str | None) -> str:
    if article_id is None:
        return "（都没帮上）"
    return str((catalog.get(article_id) or {}).get("title") or article_id)


# The report's definition of a gap query (reports/sqlite_reader.py, 内容缺口查询): not confident or voted
# 都没解决, and no 已解决, counting only the votes that stand (the latest counts, _STANDING_VOTE).
GAP_TEMPLATE = (
    "(q.confident = 0 OR EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.query_id AND f.resolved = 0 "
    "AND {standing})) AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.query_id AND f.resolved = 1 "
    "AND {standing})"
)
GAP_CONDITION = GAP_TEMPLATE.format(standing=_STANDING_VOTE)


def queries_for_texts(db_path: Path | str, period: Period, normalised: Sequence[str], catalog: Catalog,
                      limit: int = 200, gaps_only: bool = False) -> list[dict[str, Any]]:
    """The most recent `limit` queries whose normalised text is one of `normalised`, each with
    what it showed (rank order), opened, copied and the votes it got. `gaps_only`: only the gap
    queries among them (what a gap topic counts)."""
    if not normalised:
        return []
    if is_postgres_url(db_path):
        from kb_service.reports.postgres_drilldown import fetch_queries

        rows, shown, clicks, votes = fetch_queries(str(db_path), period, normalised, limit, gaps_only)
        return query_cases(rows, shown, clicks, votes, catalog)
    where, args = _bounds(period, "q")
    if gaps_only:
        where = f"{where} AND {GAP_CONDITION}"
    with closing(_connect(db_path)) as conn:
        conn.execute("CREATE TEMP TABLE wanted (t TEXT PRIMARY KEY)")
        conn.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(t,) for t in normalised])
        rows = conn.execute(
            "SELECT q.query_id, q.ts, q.query_masked, q.confident, q.n_hits FROM queries q "
            f"WHERE q.query_normalised IN (SELECT t FROM wanted) AND {where} ORDER BY q.ts DESC LIMIT ?",
            [*args, limit]).fetchall()
        ids = [r[0] for r in rows]
        shown, clicks, votes = _per_query(conn, ids)
    return query_cases(rows, shown, clicks, votes, catalog)


def query_cases(rows: list[tuple], shown: dict, clicks: dict, votes: dict, catalog: Catalog) -> list[dict[str, Any]]:
    """The drill-down's rows from the log's (query_id, ts, masked text, confident, hits) rows and
    per-query shown (rank, article), clicks (article, type) and votes (article, resolved) in vote order."""
    result = []
    for query_id, ts, text, confident, n_hits in rows:
        feedback = [{"article_id": a, "title": _title(catalog, a), "resolved": bool(r)} for a, r in votes.get(query_id, [])]
        outcome = ("已解决" if any(f["resolved"] for f in feedback) else "未解决" if feedback else "无反馈")
        result.append({
            "query_id": query_id, "time": _local(ts), "text": text, "confident": bool(confident), "n_hits": n_hits,
            "shown": [{"rank": rank, "article_id": a, "title": _title(catalog, a)} for rank, a in shown.get(query_id, [])],
            "opened": [a for a, kind in clicks.get(query_id, []) if kind == "open"],
            "copied": [a for a, kind in clicks.get(query_id, []) if kind == "copy"],
            "feedback": feedback, "outcome": outcome,
        })
    return result


def _per_query(conn: sqlite3.Connection, ids: list[str]) -> tuple[dict, dict, dict]:
    shown: dict[str, list[tuple[int, str]]] = {}
    clicks: dict[str, list[tuple[str, str]]] = {}
    votes: dict[str, list[tuple[str | None, int]]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for qid, rank, article in conn.execute(
                f"SELECT query_id, rank, article_id FROM impressions WHERE query_id IN ({marks}) ORDER BY rank", chunk):
            shown.setdefault(qid, []).append((rank, article))
        for qid, article, kind in conn.execute(
                f"SELECT query_id, article_id, type FROM events WHERE query_id IN ({marks}) "
                "GROUP BY query_id, article_id, type ORDER BY MIN(ts), article_id, type", chunk):
            clicks.setdefault(qid, []).append((article, kind))
        for qid, article, resolved in conn.execute(
                f"SELECT query_id, article_id, resolved FROM feedback WHERE query_id IN ({marks}) ORDER BY id", chunk):
            votes.setdefault(qid, []).append((article, resolved))
    return shown, clicks, votes


def article_detail(db_path: Path | str, period: Period, article_id: str, catalog: Catalog,
                   limit: int = 50) -> dict[str, Any]:
    """How one article was reached in the period: per version, and the questions that showed it."""
    if is_postgres_url(db_path):
        from kb_service.reports.postgres_drilldown import fetch_article

        versions, queries = fetch_article(str(db_path), period, article_id, limit)
        return article_result(article_id, catalog, versions, queries)
    where, args = _bounds(period, "q")
    opened = ("EXISTS (SELECT 1 FROM events e WHERE e.query_id = i.query_id AND e.article_id = i.article_id "
              "AND e.type = 'open')")
    resolved = ("EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = i.query_id AND f.article_id = i.article_id "
                "AND f.resolved = 1)")
    with closing(_connect(db_path)) as conn:
        versions = conn.execute(
            f"SELECT i.article_version, COUNT(*), AVG(i.rank), SUM({opened}), SUM({resolved}), MIN(q.ts), MAX(q.ts) "
            f"FROM impressions i JOIN queries q ON q.query_id = i.query_id WHERE i.article_id = ? AND {where} "
            "GROUP BY i.article_version ORDER BY i.article_version", [article_id, *args]).fetchall()
        queries = conn.execute(
            f"SELECT q.query_normalised, MAX(q.query_masked), COUNT(*), SUM(q.confident = 0), AVG(i.rank), "
            f"SUM({opened}), SUM({resolved}) FROM impressions i JOIN queries q ON q.query_id = i.query_id "
            f"WHERE i.article_id = ? AND {where} GROUP BY q.query_normalised ORDER BY COUNT(*) DESC, 1 LIMIT ?",
            [article_id, *args, limit]).fetchall()
    return article_result(article_id, catalog, versions, queries)


def article_result(article_id: str, catalog: Catalog, versions: list[tuple], queries: list[tuple]) -> dict[str, Any]:
    """The article drill-down from its per-version rows (version, shown, mean rank, opened, resolved,
    first ts, last ts) and per-question rows (normalised, masked, shown, non-confident, mean rank,
    opened, resolved)."""
    entry = catalog.get(article_id) or {}
    return {
        "article_id": article_id, "title": _title(catalog, article_id), "category": entry.get("category"),
        "current_version": entry.get("version"),
        "versions": [{"version": v, "shown": n, "mean_rank": round(r or 0, 2), "opened": o or 0, "resolved": s or 0,
                      "first_shown": _local(lo), "last_shown": _local(hi)}
                     for v, n, r, o, s, lo, hi in versions],
        "queries": [{"normalised": norm, "text": text, "shown": n, "non_confident": nc or 0,
                     "mean_rank": round(r or 0, 2), "opened": o or 0, "resolved": s or 0}
                    for norm, text, n, nc, r, o, s in queries],
    }
