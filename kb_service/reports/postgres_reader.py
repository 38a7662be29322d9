"""Read side of the PostgreSQL usage log: the same aggregates as `sqlite_reader.LogReader`, computed in PostgreSQL.

Every method returns what its SQLite twin returns, row for row, so `build.py` does not know which
log it reads. As there, nothing is counted in Python: the period's queries are copied once into
a temporary table that later statements join; the period's impressions (5 per query) are read in
place, from the months of the period only (partitions on `ts`), and joined by hash against the
smaller per-query tables rather than looked up one by one.

The whole report reads one snapshot (REPEATABLE READ): replicas keep writing while it runs, and
the sections must still add up. The transaction is rolled back at the end; a report never writes
to the log (its temporary tables vanish with the session).

Expressions mirror SQLite's semantics where they differ: SQLite's CAST(real AS INTEGER) and `%`
truncate toward zero, so day and hour numbers use trunc(); `SUM(a = b)` becomes a sum of 0/1;
text ordering is bytewise (COLLATE "C"), SQLite's BINARY.
"""

from __future__ import annotations

from typing import Any

from kb_service.reports.sqlite_reader import OFFSET_SECONDS, ArticleVersionRow, merge_article_rows

C = 'COLLATE "C"'
# sqlite_reader._STANDING_VOTE in PostgreSQL: a vote stands unless a later vote of the same query replaces it
# (FEEDBACK_RULE). `seq` is the insertion order SQLite's integer id gives ({tie} without it: v1 log).
_STANDING_VOTE = """NOT EXISTS (SELECT 1 FROM feedback g WHERE g.query_id = f.query_id
    AND (g.ts > f.ts OR (g.ts = f.ts AND {tie}))
    AND (g.article_id IS NOT DISTINCT FROM f.article_id
         OR (f.resolved = 1 AND g.article_id IS NULL AND g.resolved = 0)
         OR (f.article_id IS NULL AND f.resolved = 0 AND g.resolved = 1)))"""
# The period's impressions: an impression carries its query's ts and is written in the same
# transaction as its query, so the ts range selects exactly the period queries' impressions and
# prunes every other month's partition, with no join.
IMPRESSIONS = "impressions i WHERE i.ts >= %(low)s AND i.ts < %(high)s"
# The same impressions with their query's row (its text): a hash join on the key, query id and ts.
_SHOWN = IMPRESSIONS.replace(" WHERE ", " JOIN pq ON pq.query_id = i.query_id AND pq.ts = i.ts WHERE ")


class PgLogReader:
    """Read-only view of a PostgreSQL usage log restricted to [low, high) in unix seconds."""

    def __init__(self, url: str, low: float, high: float, *, work_mem: str = "256MB") -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=False)
        try:
            self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self._exec(f"SET LOCAL work_mem = '{work_mem}'")  # one session, for the big GROUP BYs
            bounds = {"low": low, "high": high}
            # A log written before schema v2 has no source column (all its queries were typed), no
            # flags table and no vote order; like LogReader, read it all the same.
            self._v2 = self._has_column("flags", "id")
            source = "source" if self._has_column("queries", "source") else "'search' AS source"
            self._exec(
                "CREATE TEMP TABLE pq AS SELECT query_id, ts, agent_id, session_id, query_masked, query_normalised, "
                f"confident, n_hits, {source} FROM queries WHERE ts >= %(low)s AND ts < %(high)s",
                bounds,
            )
            self._exec("CREATE INDEX ON pq (query_id)")
            self._exec("ANALYZE pq")
        except BaseException:
            self.conn.close()
            raise
        self._bounds = {"low": low, "high": high}
        self._derived = False
        self._gaps = False

    def _exec(self, sql: str, args: Any = None) -> None:
        self.conn.execute(sql, args)  # type: ignore[arg-type]

    def _rows(self, sql: str, args: Any = None) -> list[tuple]:
        return self.conn.execute(sql, args).fetchall()  # type: ignore[arg-type]

    def _has_column(self, table: str, column: str) -> bool:
        return bool(self._rows(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s AND column_name = %s", (table, column)))

    def close(self) -> None:
        try:
            self.conn.rollback()
        finally:
            self.conn.close()

    def __enter__(self) -> PgLogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- per-query derived tables ----------------------------------------------------------

    def _ensure_derived(self) -> None:
        """Per (query, article) clicks and per-query feedback outcome, restricted to the period."""
        if self._derived:
            return
        self._exec(
            "CREATE TEMP TABLE ev AS SELECT e.query_id, e.article_id, SUM((e.type = 'open')::int) AS opens, "
            "SUM((e.type = 'copy')::int) AS copies FROM events e JOIN pq ON pq.query_id = e.query_id "
            "GROUP BY e.query_id, e.article_id"
        )
        # Contradictory votes on one query: the latest counts (see FEEDBACK_RULE).
        standing = _STANDING_VOTE.format(tie="g.seq > f.seq" if self._v2 else "FALSE")
        self._exec(
            "CREATE TEMP TABLE fb AS SELECT f.query_id, f.article_id, COUNT(*) AS n, SUM((f.resolved = 1)::int) AS res "
            f"FROM feedback f JOIN pq ON pq.query_id = f.query_id WHERE {standing} GROUP BY f.query_id, f.article_id"
        )
        self._exec(
            "CREATE TEMP TABLE qfb AS SELECT query_id, MAX((res > 0)::int) AS any_resolved, "
            "MAX((res < n)::int) AS any_unresolved FROM fb GROUP BY query_id"
        )
        self._exec("CREATE INDEX ON qfb (query_id)")
        for table in ("ev", "fb", "qfb"):
            self._exec(f"ANALYZE {table}")
        self._derived = True

    # --- frequency -------------------------------------------------------------------------

    def totals(self) -> dict[str, object]:
        # COUNT(DISTINCT) sorts; grouping first lets PostgreSQL hash instead.
        distinct = "(SELECT COUNT(*) FROM (SELECT {c} FROM pq WHERE {c} IS NOT NULL GROUP BY {c}) d)"
        (row,) = self._rows(
            f"SELECT COUNT(*), {distinct.format(c='agent_id')}, {distinct.format(c='session_id')}, "
            "COALESCE(SUM((confident = 0)::int), 0), COALESCE(SUM((n_hits = 0)::int), 0), MIN(ts), MAX(ts), "
            f"{distinct.format(c='query_normalised')} FROM pq"
        )
        keys = ("queries", "agents", "sessions", "non_confident", "no_hits", "first_ts", "last_ts", "distinct")
        totals = dict(zip(keys, row, strict=True))
        ((totals["conversation"],),) = self._rows("SELECT COUNT(*) FROM pq WHERE source = 'conversation'")
        return totals

    def flags(self) -> list[tuple[str, str, int, int, float, str]]:
        """(article, reason, flags, newest version flagged, latest ts, up to 3 masked comments joined by
        U+001F) per article and reason, for flags raised in the period (see LogReader.flags)."""
        if not self._v2:
            return []
        rows = self._rows(
            "SELECT article_id, reason, COUNT(*), MAX(article_version), MAX(ts), array_to_string((array_agg(comment "
            "ORDER BY ts DESC, id DESC) FILTER (WHERE comment IS NOT NULL))[1:3], chr(31)) FROM flags "
            "WHERE ts >= %(low)s AND ts < %(high)s GROUP BY article_id, reason "
            f"ORDER BY COUNT(*) DESC, MAX(ts) DESC, article_id {C}, reason {C}",
            self._bounds,
        )
        return [(a, r, int(n), int(v or 0), float(latest), comments or "") for a, r, n, v, latest, comments in rows]

    def text_counts(self) -> list[tuple[str, str, int, int]]:
        """(normalised, masked, queries, non-confident) per distinct pair."""
        return self._rows(
            "SELECT query_normalised, query_masked, COUNT(*), SUM((confident = 0)::int) FROM pq "
            f"GROUP BY query_normalised, query_masked ORDER BY query_normalised {C}, query_masked {C}"
        )

    def daily(self) -> list[tuple[int, int, int]]:
        """(day number since epoch in UTC+8, queries, non-confident)."""
        return self._rows(
            f"SELECT trunc((ts + {OFFSET_SECONDS}) / 86400)::bigint AS d, COUNT(*), SUM((confident = 0)::int) "
            "FROM pq GROUP BY d ORDER BY d"
        )

    def hourly(self) -> list[tuple[int, int, int]]:
        return self._rows(
            f"SELECT ((trunc(ts + {OFFSET_SECONDS})::bigint % 86400) / 3600)::int AS h, COUNT(*), "
            "SUM((confident = 0)::int) FROM pq GROUP BY h ORDER BY h"
        )

    # --- articles --------------------------------------------------------------------------

    def article_versions(self) -> list[ArticleVersionRow]:
        """One row per (article, version) shown or named by a click or vote in the period (see LogReader)."""
        self._ensure_derived()
        shown = self._rows(
            # Bytewise comparison (COLLATE "C") for the big sort: a server's linguistic locale is
            # several times slower and changes nothing about which ids are equal.
            f"SELECT i.article_id {C}, i.article_version, COUNT(*), SUM(i.rank)::bigint, "
            f"COUNT(DISTINCT i.query_id {C}), COUNT(DISTINCT pq.query_normalised {C}) FROM {_SHOWN} "
            f"GROUP BY i.article_id {C}, i.article_version",
            self._bounds,
        )
        # The version an article had when the query showed it: a hash join of the (smaller) click
        # or vote table against the period's impressions; None when the query never showed it.
        with_version = (
            "SELECT t.*, MAX(i.article_version) AS version FROM {t} t LEFT JOIN impressions i "
            "ON i.query_id = t.query_id AND i.article_id = t.article_id AND i.ts >= %(low)s AND i.ts < %(high)s "
            "GROUP BY t.query_id, t.article_id, {cols}"
        )
        # ev and fb hold one row per (query, article), so counting rows counts queries.
        clicks = self._rows(
            "SELECT article_id, version, SUM(opens)::bigint, SUM(copies)::bigint, SUM((opens > 0)::int), "
            f"SUM((copies > 0)::int) FROM ({with_version.format(t='ev', cols='t.opens, t.copies')}) x "
            "GROUP BY article_id, version",
            self._bounds,
        )
        votes = self._rows(
            f"SELECT article_id, version, SUM(n)::bigint, SUM(res)::bigint FROM "
            f"({with_version.format(t='fb', cols='t.n, t.res')}) x WHERE article_id IS NOT NULL "
            "GROUP BY article_id, version",
            self._bounds,
        )
        return merge_article_rows(shown, clicks, votes)

    def article_texts(self) -> dict[str, int]:
        """article → distinct normalised query texts that showed it (all versions together)."""
        return dict(self._rows(
            f"SELECT i.article_id, COUNT(DISTINCT pq.query_normalised {C}) FROM {_SHOWN} GROUP BY i.article_id",
            self._bounds,
        ))

    def feedback_totals(self) -> tuple[int, int, int]:
        """(votes, resolved votes, queries with any open) over all feedback in the period."""
        self._ensure_derived()
        ((votes, resolved),) = self._rows("SELECT COALESCE(SUM(n), 0), COALESCE(SUM(res), 0) FROM fb")
        ((opened,),) = self._rows("SELECT COUNT(*) FROM (SELECT query_id FROM ev WHERE opens > 0 GROUP BY 1) o")
        return int(votes), int(resolved), int(opened)

    # --- gaps ------------------------------------------------------------------------------

    def _ensure_gaps(self) -> None:
        self._ensure_derived()
        if self._gaps:
            return
        self._exec(
            "CREATE TEMP TABLE gq AS SELECT pq.query_id, pq.query_normalised, pq.query_masked, pq.confident, "
            "COALESCE(qfb.any_unresolved, 0) AS unresolved FROM pq LEFT JOIN qfb ON qfb.query_id = pq.query_id "
            "WHERE (pq.confident = 0 OR COALESCE(qfb.any_unresolved, 0) = 1) AND COALESCE(qfb.any_resolved, 0) = 0"
        )
        self._exec("ANALYZE gq")
        self._gaps = True

    def gap_text_counts(self) -> list[tuple[str, str, int, int, int]]:
        """(normalised, masked, gap queries, non-confident, unresolved) per distinct pair."""
        self._ensure_gaps()
        return self._rows(
            "SELECT query_normalised, query_masked, COUNT(*), SUM((confident = 0)::int), SUM(unresolved)::bigint "
            f"FROM gq GROUP BY query_normalised, query_masked ORDER BY query_normalised {C}, query_masked {C}"
        )

    def gap_articles(self) -> list[tuple[str, str, int]]:
        """(normalised, article, gap queries that showed it)."""
        self._ensure_gaps()
        return self._rows(
            f"SELECT gq.query_normalised, i.article_id, COUNT(DISTINCT i.query_id {C}) FROM gq "
            f"JOIN {IMPRESSIONS.replace(' WHERE ', ' ON i.query_id = gq.query_id AND ')} "
            f"GROUP BY gq.query_normalised, i.article_id ORDER BY gq.query_normalised {C}, i.article_id {C}",
            self._bounds,
        )

    def gap_opens(self) -> list[tuple[str, str, int]]:
        """(normalised, article, gap queries in which the agent opened it)."""
        self._ensure_gaps()
        return self._rows(
            "SELECT gq.query_normalised, ev.article_id, COUNT(DISTINCT ev.query_id) FROM gq "
            "JOIN ev ON ev.query_id = gq.query_id WHERE ev.opens > 0 GROUP BY gq.query_normalised, ev.article_id "
            f"ORDER BY gq.query_normalised {C}, ev.article_id {C}"
        )

    def distinct_normalised(self) -> list[str]:
        return [row[0] for row in self._rows(f"SELECT DISTINCT query_normalised {C} FROM pq")]
