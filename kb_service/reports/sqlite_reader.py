"""Read side of the usage log: every aggregation the report needs, done inside SQLite.

A million logged queries mean ~5 million impression rows, so nothing here pulls rows into Python
to count them: each method returns aggregates (one row per article, per day, per distinct query
text). The period's queries are copied once into a temporary table that every later statement
joins against, so the time filter is applied in one place.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from kb_service.reports.data import UTC_OFFSET_HOURS

OFFSET_SECONDS = UTC_OFFSET_HOURS * 3600

# A vote stands unless a later vote of the same query replaces it (FEEDBACK_RULE): a later vote on
# the same article (or the same list-wide vote), a later 都没解决 for a 已解决, a later 已解决 for a 都没解决.
_STANDING_VOTE = """NOT EXISTS (SELECT 1 FROM feedback g WHERE g.query_id = f.query_id
    AND (g.ts > f.ts OR (g.ts = f.ts AND g.id > f.id))
    AND (g.article_id IS f.article_id
         OR (f.resolved = 1 AND g.article_id IS NULL AND g.resolved = 0)
         OR (f.article_id IS NULL AND f.resolved = 0 AND g.resolved = 1)))"""


@dataclass(frozen=True)
class ArticleVersionRow:
    article_id: str
    version: int | None
    impressions: int
    shown_queries: int
    rank_sum: int
    open_queries: int
    copy_queries: int
    opens: int
    copies: int
    feedback: int
    resolved: int
    shown_texts: int = 0


def period_condition(column: str, low: float, high: float) -> tuple[str, list[float]]:
    """'column >= ? AND column < ?' (open sides left out, '1 = 1' when both are) and its arguments."""
    args: list[float] = []
    clauses: list[str] = []
    if low != float("-inf"):
        clauses.append(f"{column} >= ?")
        args.append(low)
    if high != float("inf"):
        clauses.append(f"{column} < ?")
        args.append(high)
    return (" AND ".join(clauses) or "1 = 1"), args


def period_filter(column: str, low: float, high: float) -> tuple[str, list[float]]:
    """'WHERE column >= ? AND column < ?' (open sides left out, '' when both are) and its arguments."""
    condition, args = period_condition(column, low, high)
    return (f"WHERE {condition}" if args else ""), args


class LogReader:
    """Read-only view of one log file restricted to [low, high) in unix seconds."""

    def __init__(self, db_path: Path | str, low: float, high: float) -> None:
        path = Path(db_path)
        # mode=ro: a report must never create or migrate the log it reads.
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        self.conn.execute("PRAGMA temp_store = MEMORY")
        self.conn.execute("PRAGMA cache_size = -262144")  # 256 MiB page cache
        self._where, self._args = where, args = period_filter("ts", low, high)
        # A log written before schema v2 has no source column: all its queries were typed.
        source = "source" if self._has_column("queries", "source") else "'search' AS source"
        self.conn.execute(
            "CREATE TEMP TABLE pq AS SELECT rowid AS qrow, query_id, ts, agent_id, session_id, query_masked, "
            f"query_normalised, confident, n_hits, {source} FROM queries {where}",
            args,
        )
        self.conn.execute("CREATE UNIQUE INDEX temp.pq_id ON pq(query_id)")
        self._derived = False

    def close(self) -> None:
        self.conn.close()

    def _has_column(self, table: str, column: str) -> bool:
        return any(row[1] == column for row in self.conn.execute(f"PRAGMA table_info({table})"))

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- per-query derived tables ----------------------------------------------------------

    def _ensure_derived(self) -> None:
        """Per (query, article) clicks and per-query feedback outcome, restricted to the period."""
        if self._derived:
            return
        c = self.conn
        c.execute(
            "CREATE TEMP TABLE ev AS SELECT e.query_id, e.article_id, "
            "SUM(e.type = 'open') AS opens, SUM(e.type = 'copy') AS copies "
            "FROM events e JOIN pq ON pq.query_id = e.query_id GROUP BY e.query_id, e.article_id"
        )
        c.execute("CREATE INDEX temp.ev_qa ON ev(query_id, article_id)")
        # Contradictory votes on one query: the latest counts (see FEEDBACK_RULE).
        c.execute(
            "CREATE TEMP TABLE fb AS SELECT f.query_id, f.article_id, COUNT(*) AS n, SUM(f.resolved = 1) AS res "
            f"FROM feedback f JOIN pq ON pq.query_id = f.query_id WHERE {_STANDING_VOTE} "
            "GROUP BY f.query_id, f.article_id"
        )
        c.execute(
            "CREATE TEMP TABLE qfb AS SELECT query_id, MAX(res > 0) AS any_resolved, MAX(res < n) AS any_unresolved "
            "FROM fb GROUP BY query_id"
        )
        c.execute("CREATE UNIQUE INDEX temp.qfb_q ON qfb(query_id)")
        self._derived = True

    # --- frequency -------------------------------------------------------------------------

    def totals(self) -> dict[str, object]:
        row = self.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT agent_id), COUNT(DISTINCT session_id), "
            "COALESCE(SUM(confident = 0), 0), COALESCE(SUM(n_hits = 0), 0), MIN(ts), MAX(ts), "
            "COUNT(DISTINCT query_normalised) FROM pq"
        ).fetchone()
        keys = ("queries", "agents", "sessions", "non_confident", "no_hits", "first_ts", "last_ts", "distinct")
        totals = dict(zip(keys, row, strict=True))
        totals["conversation"] = self.conn.execute("SELECT COUNT(*) FROM pq WHERE source = 'conversation'").fetchone()[0]
        return totals

    def flags(self) -> list[tuple[str, str, int, int, float, str]]:
        """(article, reason, flags, newest version flagged, latest ts, up to 3 masked comments joined by
        U+001F, as a comment may hold newlines) per article and reason, for flags raised in the period;
        none in a log from before schema v2."""
        if not self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'flags'").fetchone():
            return []
        rows = self.conn.execute(
            "SELECT article_id, reason, COUNT(*), MAX(article_version), MAX(ts) "
            f"FROM flags {self._where} GROUP BY article_id, reason "
            "ORDER BY COUNT(*) DESC, MAX(ts) DESC, article_id, reason",
            self._args,
        ).fetchall()
        out = []
        for article_id, reason, n, version, latest in rows:
            comments = [c for (c,) in self.conn.execute(
                f"SELECT comment FROM flags {self._where}{' AND' if self._where else ' WHERE'} article_id = ? "
                "AND reason = ? AND comment IS NOT NULL ORDER BY ts DESC, id DESC LIMIT 3",
                [*self._args, article_id, reason])]
            out.append((article_id, reason, int(n), int(version or 0), float(latest), "\x1f".join(comments)))
        return out

    def text_counts(self) -> list[tuple[str, str, int, int]]:
        """(normalised, masked, queries, non-confident) per distinct pair."""
        return self.conn.execute(
            "SELECT query_normalised, query_masked, COUNT(*), SUM(confident = 0) FROM pq "
            "GROUP BY query_normalised, query_masked"
        ).fetchall()

    def daily(self) -> list[tuple[int, int, int]]:
        """(day number since epoch in UTC+8, queries, non-confident)."""
        return self.conn.execute(
            f"SELECT CAST((ts + {OFFSET_SECONDS}) / 86400 AS INTEGER) AS d, COUNT(*), SUM(confident = 0) "
            "FROM pq GROUP BY d ORDER BY d"
        ).fetchall()

    def hourly(self) -> list[tuple[int, int, int]]:
        return self.conn.execute(
            f"SELECT CAST(((ts + {OFFSET_SECONDS}) % 86400) / 3600 AS INTEGER) AS h, COUNT(*), SUM(confident = 0) "
            "FROM pq GROUP BY h ORDER BY h"
        ).fetchall()

    # --- articles --------------------------------------------------------------------------

    def article_versions(self) -> list[ArticleVersionRow]:
        """One row per (article, version) shown or named by a click or vote in the period.

        Clicks and votes take the version the article had when it was shown in that query; those
        for an article the query never showed get version None.
        """
        self._ensure_derived()
        c = self.conn
        # Period queries drive the scan (CROSS JOIN fixes the order): impressions are then read
        # through their query index in insertion order, which is far faster than letting
        # SQLite walk the article index and fetch ~5M scattered rows.
        shown = c.execute(
            "SELECT i.article_id, i.article_version, COUNT(*), SUM(i.rank), COUNT(DISTINCT i.query_id), "
            "COUNT(DISTINCT pq.query_normalised) "
            "FROM pq CROSS JOIN impressions i ON i.query_id = pq.query_id "
            "GROUP BY i.article_id, i.article_version"
        ).fetchall()
        version_of = (
            "(SELECT MAX(i.article_version) FROM impressions i "
            "WHERE i.query_id = {t}.query_id AND i.article_id = {t}.article_id)"
        )
        # ev and fb hold one row per (query, article), so counting rows counts queries.
        clicks = c.execute(
            f"SELECT article_id, {version_of.format(t='ev')} AS version, SUM(opens), SUM(copies), "
            "SUM(opens > 0), SUM(copies > 0) FROM ev GROUP BY article_id, version"
        ).fetchall()
        votes = c.execute(
            f"SELECT article_id, {version_of.format(t='fb')} AS version, SUM(n), SUM(res) "
            "FROM fb WHERE article_id IS NOT NULL GROUP BY article_id, version"
        ).fetchall()
        return merge_article_rows(shown, clicks, votes)

    def article_texts(self) -> dict[str, int]:
        """article → distinct normalised query texts that showed it (all versions together)."""
        return dict(self.conn.execute(
            "SELECT i.article_id, COUNT(DISTINCT pq.query_normalised) FROM pq CROSS JOIN impressions i "
            "ON i.query_id = pq.query_id GROUP BY i.article_id"
        ).fetchall())

    def feedback_totals(self) -> tuple[int, int, int]:
        """(votes, resolved votes, queries with any open) over all feedback in the period."""
        self._ensure_derived()
        votes, resolved = self.conn.execute("SELECT COALESCE(SUM(n), 0), COALESCE(SUM(res), 0) FROM fb").fetchone()
        opened = self.conn.execute("SELECT COUNT(DISTINCT query_id) FROM ev WHERE opens > 0").fetchone()[0]
        return int(votes), int(resolved), int(opened)

    # --- gaps ------------------------------------------------------------------------------

    def _ensure_gaps(self) -> None:
        self._ensure_derived()
        if self.conn.execute("SELECT 1 FROM sqlite_temp_master WHERE name = 'gq'").fetchone():
            return
        self.conn.execute(
            "CREATE TEMP TABLE gq AS SELECT pq.query_id, pq.query_normalised, pq.query_masked, pq.confident, "
            "COALESCE(qfb.any_unresolved, 0) AS unresolved FROM pq LEFT JOIN qfb ON qfb.query_id = pq.query_id "
            "WHERE (pq.confident = 0 OR COALESCE(qfb.any_unresolved, 0) = 1) AND COALESCE(qfb.any_resolved, 0) = 0"
        )

    def gap_text_counts(self) -> list[tuple[str, str, int, int, int]]:
        """(normalised, masked, gap queries, non-confident, unresolved) per distinct pair."""
        self._ensure_gaps()
        return self.conn.execute(
            "SELECT query_normalised, query_masked, COUNT(*), SUM(confident = 0), SUM(unresolved) FROM gq "
            "GROUP BY query_normalised, query_masked"
        ).fetchall()

    def gap_articles(self) -> list[tuple[str, str, int]]:
        """(normalised, article, gap queries that showed it)."""
        self._ensure_gaps()
        return self.conn.execute(
            "SELECT gq.query_normalised, i.article_id, COUNT(DISTINCT i.query_id) FROM gq "
            "JOIN impressions i ON i.query_id = gq.query_id GROUP BY gq.query_normalised, i.article_id"
        ).fetchall()

    def gap_opens(self) -> list[tuple[str, str, int]]:
        """(normalised, article, gap queries in which the agent opened it)."""
        self._ensure_gaps()
        return self.conn.execute(
            "SELECT gq.query_normalised, ev.article_id, COUNT(DISTINCT ev.query_id) FROM gq "
            "JOIN ev ON ev.query_id = gq.query_id WHERE ev.opens > 0 GROUP BY gq.query_normalised, ev.article_id"
        ).fetchall()

    def distinct_normalised(self) -> list[str]:
        return [row[0] for row in self.conn.execute("SELECT DISTINCT query_normalised FROM pq")]


def merge_article_rows(shown: list[tuple], clicks: list[tuple], votes: list[tuple]) -> list[ArticleVersionRow]:
    """One row per (article, version) from the three aggregate queries every log reader runs:
    impressions (article, version, n, rank sum, queries, distinct texts), clicks (article, version, opens, copies,
    open queries, copy queries) and votes (article, version, n, resolved)."""
    rows: dict[tuple[str, int | None], dict[str, int]] = {}

    def slot(article_id: str, version: int | None) -> dict[str, int]:
        return rows.setdefault((article_id, version), dict.fromkeys(
            ("impressions", "shown", "rank_sum", "open_q", "copy_q", "opens", "copies", "fb", "res", "texts"), 0))

    for article_id, version, n, rank_sum, shown_q, texts in shown:
        slot(article_id, version).update(impressions=n, rank_sum=rank_sum, shown=shown_q, texts=texts)
    for article_id, version, opens, copies, open_q, copy_q in clicks:
        s = slot(article_id, version)
        s["opens"] += opens or 0
        s["copies"] += copies or 0
        if version is not None:  # a click on an article the query never showed is no click-through
            s["open_q"] += open_q or 0
            s["copy_q"] += copy_q or 0
    for article_id, version, n, res in votes:
        s = slot(article_id, version)
        s["fb"] += n or 0
        s["res"] += res or 0
    return [
        ArticleVersionRow(a, v, s["impressions"], s["shown"], s["rank_sum"], s["open_q"], s["copy_q"],
                          s["opens"], s["copies"], s["fb"], s["res"], s["texts"])
        for (a, v), s in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or 0))
    ]
