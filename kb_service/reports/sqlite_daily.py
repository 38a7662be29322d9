"""The report's aggregates for a period of whole days, summed from the log's per-day roll-ups.

`LogReader` copies the period's queries into a temporary table and joins ~5M impression rows on a
million-query log (tens of seconds); the writer keeps per-day roll-ups (usage_log/daily.py) in the
same transaction as the rows, so a period of whole days (what the workbench's date picker gives) is
a sum over at most a few thousand rows per day. Every method returns exactly what the same method
of `LogReader` returns: sums are summed, and figures that do not add up over days (distinct agents,
sessions and texts) are counted distinct over the days' rows. A period that starts or ends inside
a day, or a log without roll-ups (before schema v3, opened read-only), keeps `LogReader`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kb_service.reports.sqlite_reader import (
    OFFSET_SECONDS,
    ArticleVersionRow,
    LogReader,
    merge_article_rows,
    period_filter,
)

DAY_SECONDS = 86400
LONG_PERIOD_DAYS = 7


def day_bounds(low: float, high: float) -> tuple[float, float] | None:
    """[first day, end day) as day numbers (UTC+8) when both bounds fall on midnight (or are open)."""
    days = []
    for bound in (low, high):
        if bound in (float("-inf"), float("inf")):
            days.append(bound)
            continue
        day, rest = divmod(bound + OFFSET_SECONDS, DAY_SECONDS)
        if rest:
            return None
        days.append(day)
    return days[0], days[1]


def has_daily_rollups(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'daily_queries'").fetchone() is not None


def open_daily_reader(db_path: Path | str, low: float, high: float) -> DailyLogReader | None:
    """A reader over the roll-ups, or None when the period or the log needs `LogReader`."""
    days = day_bounds(low, high)
    if days is None:
        return None
    reader = DailyLogReader(db_path, low, high, days)
    if has_daily_rollups(reader.conn):
        return reader
    reader.close()
    return None


class DailyLogReader(LogReader):
    """`LogReader`'s methods over the day roll-ups of [first day, end day)."""

    def __init__(self, db_path: Path | str, low: float, high: float, days: tuple[float, float]) -> None:
        # Deliberately not LogReader.__init__: no temporary copy of the period's queries is made.
        self.conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True, timeout=30.0)
        self.conn.execute("PRAGMA cache_size = -262144")
        self._where, self._args = period_filter("ts", low, high)  # flags() reads the raw flags table
        # Over more than a week the groups are read in order off the covering indexes (usage_log/daily.py),
        # with the days filtered there too; `+day` keeps SQLite from range-scanning by day and sorting instead.
        long_period = days[1] - days[0] > LONG_PERIOD_DAYS
        self._day_where, self._day_args = period_filter("+day" if long_period else "day", *days)
        self._bounded = bool(self._args)

    def _rows(self, sql: str) -> list[tuple]:
        """sql with {where} (the period's days) filled in."""
        where = self._day_where
        return self.conn.execute(sql.format(where=where, and_=f"{where} AND" if where else "WHERE"),
                                 self._day_args).fetchall()

    def totals(self) -> dict[str, object]:
        queries, non_confident, no_hits, first, last, conversation = self._rows(
            "SELECT COALESCE(SUM(queries), 0), COALESCE(SUM(non_confident), 0), COALESCE(SUM(no_hits), 0), "
            "MIN(first_ts), MAX(last_ts), COALESCE(SUM(conversation), 0) FROM daily_queries {where}")[0]
        (agents,), = self._rows("SELECT COUNT(DISTINCT agent_id) FROM daily_agents {where}")
        (sessions,), = self._rows("SELECT COUNT(DISTINCT session_id) FROM daily_sessions {where}")
        (distinct,), = self._rows("SELECT COUNT(DISTINCT query_normalised) FROM daily_texts {and_} queries > 0")
        return {"queries": queries, "agents": agents, "sessions": sessions, "non_confident": non_confident,
                "no_hits": no_hits, "first_ts": first, "last_ts": last, "distinct": distinct,
                "conversation": conversation}

    def text_counts(self) -> list[tuple[str, str, int, int]]:
        return self._rows("SELECT query_normalised, query_masked, SUM(queries), SUM(non_confident) FROM daily_texts "
                          "{where} GROUP BY query_normalised, query_masked HAVING SUM(queries) > 0")

    def daily(self) -> list[tuple[int, int, int]]:
        return self._rows("SELECT day, SUM(queries), SUM(non_confident) FROM daily_queries {where} "
                          "GROUP BY day HAVING SUM(queries) > 0 ORDER BY day")

    def hourly(self) -> list[tuple[int, int, int]]:
        return self._rows("SELECT hour, SUM(queries), SUM(non_confident) FROM daily_queries {where} "
                          "GROUP BY hour HAVING SUM(queries) > 0 ORDER BY hour")

    def article_versions(self) -> list[ArticleVersionRow]:
        texts = {(a, v): n for a, v, n in self._rows(
            "SELECT article_id, version, COUNT(DISTINCT query_normalised) FROM daily_shown_texts {where} "
            "GROUP BY article_id, version")}
        shown = [(a, v, n, rank_sum, queries, texts.get((a, v), 0)) for a, v, n, rank_sum, queries in self._rows(
            "SELECT article_id, version, SUM(impressions), SUM(rank_sum), SUM(queries) FROM daily_shown {where} "
            "GROUP BY article_id, version HAVING SUM(queries) > 0")]
        clicks = self._rows("SELECT article_id, version, SUM(opens), SUM(copies), SUM(open_queries), "
                            "SUM(copy_queries) FROM daily_clicks {where} GROUP BY article_id, version "
                            "HAVING SUM(pairs) > 0")
        votes = self._rows("SELECT article_id, version, SUM(votes), SUM(resolved) FROM daily_votes {where} "
                           "GROUP BY article_id, version HAVING SUM(votes) > 0")
        return merge_article_rows(shown, clicks, votes)

    def article_texts(self) -> dict[str, int]:
        return dict(self._rows("SELECT article_id, COUNT(DISTINCT query_normalised) FROM daily_shown_texts {where} "
                               "GROUP BY article_id"))

    def feedback_totals(self) -> tuple[int, int, int]:
        votes, resolved, opened = self._rows(
            "SELECT COALESCE(SUM(votes), 0), COALESCE(SUM(resolved_votes), 0), COALESCE(SUM(with_open), 0) "
            "FROM daily_queries {where}")[0]
        return int(votes), int(resolved), int(opened)

    def gap_text_counts(self) -> list[tuple[str, str, int, int, int]]:
        return self._rows("SELECT query_normalised, query_masked, SUM(queries), SUM(non_confident), SUM(unresolved) "
                          "FROM daily_gap_texts {where} GROUP BY query_normalised, query_masked "
                          "HAVING SUM(queries) > 0")

    def gap_articles(self) -> list[tuple[str, str, int]]:
        return self._rows("SELECT query_normalised, article_id, SUM(queries) FROM daily_gap_articles {where} "
                          "GROUP BY query_normalised, article_id HAVING SUM(queries) > 0")

    def gap_opens(self) -> list[tuple[str, str, int]]:
        return self._rows("SELECT query_normalised, article_id, SUM(queries) FROM daily_gap_opens {where} "
                          "GROUP BY query_normalised, article_id HAVING SUM(queries) > 0")

    def distinct_normalised(self) -> list[str]:
        """In the order LogReader lists them: first appearance in its copy of the period's queries,
        which is rowid order for the whole log and (ts, rowid) order through the ts index otherwise
        (gap_topics samples every n-th text for word rarity, so the order is part of the result)."""
        if not self._bounded:  # the whole log: one first rowid per text, and no two texts share one
            return [norm for (norm,) in self._rows(
                "SELECT query_normalised FROM daily_texts {where} GROUP BY query_normalised "
                "HAVING SUM(queries) > 0 ORDER BY MIN(first_row)")]
        # A text's rows are on different days, so their first_ts differ: MIN(first_ts) picks one row, and
        # SQLite takes the bare first_ts_row from that row.
        return [norm for norm, _, _ in self._rows(
            "SELECT query_normalised, MIN(first_ts) AS ts, first_ts_row FROM daily_texts {and_} queries > 0 "
            "GROUP BY query_normalised ORDER BY ts, first_ts_row")]
