"""Read side of the PostgreSQL usage log: the same aggregates as `sqlite_reader.LogReader`, computed in PostgreSQL.

Every method returns what its SQLite twin returns, row for row, so `build.py` does not know which
log it reads. As there, nothing is counted in Python. The impressions (~5 per query) are not read
at all: each query row carries what it showed, one element per distinct (article, version) with
its impression count and rank sum (schema v3, `pg_schema.SHOWN_COLUMNS`, written by the store).
So the shown queries of an article are rows, not COUNT(DISTINCT query_id) over impressions; the
version a click or vote refers to is looked up in its query's row; and queries with the same text
and the same results (most repeats of a question) are aggregated once and weighted by their number.
The statements read the period's queries in place (`self._pq`, a subquery on the `ts` range that
prunes other months' partitions); the few small per-period tables they share are temporary. When
some period queries have no summary (a log before v3, or rows written by a replica running older
code) the period's queries are copied into a temporary table and those rows summarised from
`impressions` first.

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
from kb_service.usage_log.pg_schema import SHOWN_COLUMNS, SUMMARISE_SHOWN

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
_SHOWN_TYPES = ("text[]", "int[]", "int[]", "int[]")
# The version of `{t}.article_id` its query showed (the newest if several: an article's first element
# holds it), NULL if it showed none; array_position would find a NULL article, a join never does.
_VERSION_SHOWN = ("CASE WHEN {t}.article_id IS NOT NULL "
                  "THEN pq.shown_versions[array_position(pq.shown_articles, {t}.article_id)] END")


class PgLogReader:
    """Read-only view of a PostgreSQL usage log restricted to [low, high) in unix seconds."""

    def __init__(self, url: str, low: float, high: float, *, work_mem: str = "256MB") -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=False)
        try:
            self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self._exec(f"SET LOCAL work_mem = '{work_mem}'")  # one session, for the big GROUP BYs
            # Serial plans without JIT: on the 2 shared cores measured (docs/benchmarks.md) parallel
            # workers made the report slower, and a report should leave the writers their cores.
            self._exec("SET LOCAL max_parallel_workers_per_gather = 0")
            self._exec("SET LOCAL jit = off")
            bounds = {"low": low, "high": high}
            # A log written before schema v2 has no source column (all its queries were typed), no
            # flags table and no vote order; like LogReader, read it all the same.
            self._v2 = self._has_column("flags", "id")
            source = "source" if self._has_column("queries", "source") else "'search' AS source"
            v3 = self._has_column("queries", SHOWN_COLUMNS[0])
            shown = ", ".join(c if v3 else f"NULL::{t} AS {c}" for c, t in zip(SHOWN_COLUMNS, _SHOWN_TYPES, strict=True))
            columns = (f"query_id, ts, agent_id, session_id, query_masked, query_normalised, confident, n_hits, {source}, "
                       f"{shown}")
            # Bounds are floats formatted here (repr round-trips; 'inf' and '-inf' are float8 input).
            period = f"ts >= '{float(low)!r}'::float8 AND ts < '{float(high)!r}'::float8"
            if v3 and not self._rows(f"SELECT 1 FROM queries WHERE {period} AND shown_articles IS NULL LIMIT 1"):
                # Every query summarised (the partial index of unsummarised rows answers at once): the
                # statements read the period's queries in place, with their partitions' statistics.
                self._pq = f"(SELECT {columns} FROM queries WHERE {period}) pq"
            else:
                self._exec(f"CREATE TEMP TABLE pq AS SELECT {columns} FROM queries WHERE {period}")
                self._summarise_missing(bounds)
                self._exec("ANALYZE pq")
                self._pq = "pq"
        except BaseException:
            self.conn.close()
            raise
        self._bounds = {"low": low, "high": high}
        self._derived = False
        self._shown = False
        self._frequency = False
        self._gaps = False

    def _summarise_missing(self, bounds: dict[str, float]) -> None:
        """Fill the shown summary of period queries that have none, from their impressions (every
        query of a log before v3; otherwise the few a replica running older code wrote)."""
        missing = ("impressions i JOIN (SELECT query_id, ts FROM pq WHERE shown_articles IS NULL) m "
                   f"ON m.query_id = i.query_id AND m.ts = i.ts WHERE {IMPRESSIONS.split(' WHERE ')[1]}")
        columns = ", ".join(SHOWN_COLUMNS)
        self._exec(
            f"UPDATE pq SET ({columns}) = (s.a, s.v, s.n, s.r) FROM ({SUMMARISE_SHOWN.format(impressions=missing)}) s "
            "WHERE pq.query_id = s.query_id AND pq.ts = s.ts AND pq.shown_articles IS NULL",
            bounds,
        )
        self._exec(f"UPDATE pq SET ({columns}) = ('{{}}', '{{}}', '{{}}', '{{}}') WHERE shown_articles IS NULL")

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
        """Per (query, article) clicks and votes with the version the query showed, and per-query
        feedback outcome, restricted to the period."""
        if self._derived:
            return
        self._exec(
            "CREATE TEMP TABLE ev AS SELECT e.query_id, e.article_id, SUM((e.type = 'open')::int) AS opens, "
            f"SUM((e.type = 'copy')::int) AS copies, MAX({_VERSION_SHOWN.format(t='e')}) AS version FROM events e "
            f"JOIN {self._pq} ON pq.query_id = e.query_id GROUP BY e.query_id, e.article_id"
        )
        # Contradictory votes on one query: the latest counts (see FEEDBACK_RULE).
        # A vote that replaces another is on the same query, so both are among the period queries' votes
        # (pf): the NOT EXISTS is a hash anti-join within them, not an index probe per vote.
        seq = "f.seq" if self._v2 else "NULL::bigint AS seq"
        self._exec(
            f"CREATE TEMP TABLE pf AS SELECT f.query_id, f.article_id, f.ts, f.resolved, {seq}, "
            f"{_VERSION_SHOWN.format(t='f')} AS version FROM feedback f JOIN {self._pq} ON pq.query_id = f.query_id"
        )
        self._exec("ANALYZE pf")
        standing = _STANDING_VOTE.format(tie="g.seq > f.seq" if self._v2 else "FALSE").replace("FROM feedback g", "FROM pf g")
        self._exec(
            "CREATE TEMP TABLE fb AS SELECT f.query_id, f.article_id, COUNT(*) AS n, SUM((f.resolved = 1)::int) AS res, "
            f"MAX(f.version) AS version FROM pf f WHERE {standing} GROUP BY f.query_id, f.article_id"
        )
        self._exec(
            "CREATE TEMP TABLE qfb AS SELECT query_id, MAX((res > 0)::int) AS any_resolved, "
            "MAX((res < n)::int) AS any_unresolved FROM fb GROUP BY query_id"
        )
        for table in ("ev", "fb", "qfb"):
            self._exec(f"ANALYZE {table}")
        self._derived = True

    def _ensure_shown(self) -> None:
        """Per (query text, article, version): impressions, rank sum and queries that showed it.

        Queries with the same text and the same shown summary are counted once and weighted by
        their number: the sums are the same, and a repeated question is the common case."""
        if self._shown:
            return
        summary = ", ".join(SHOWN_COLUMNS)
        self._exec(
            "CREATE TEMP TABLE sat AS SELECT g.query_normalised, u.a AS article_id, u.v AS version, "
            "SUM(u.n * g.c) AS impressions, SUM(u.r * g.c) AS rank_sum, SUM(g.c) AS queries "
            f"FROM (SELECT query_normalised, {summary}, COUNT(*) AS c FROM {self._pq} GROUP BY query_normalised, {summary}) g, "
            f"unnest({summary}) AS u(a, v, n, r) GROUP BY g.query_normalised, u.a, u.v"
        )
        self._shown = True

    # --- frequency -------------------------------------------------------------------------

    def _ensure_frequency(self) -> None:
        """Every frequency figure is a sum over one small table, filled by two scans of the period
        with a hash table per grouping: queries per (day, hour), per (normalised, masked) text, per
        agent and per session (by_x = 0 marks the rows grouped by x)."""
        if self._frequency:
            return
        # Two aggregates, each hashed: in one GROUPING SETS the planner, unable to tell that (day,
        # hour) has few values, sorted 10M rows twice (27 s of a 10M report).
        self._exec(
            "CREATE TEMP TABLE pfq AS SELECT 0 AS by_time, 1 AS by_text, 1 AS by_agent, 1 AS by_session, d, h, "
            "NULL::text AS query_normalised, NULL::text AS query_masked, NULL::text AS agent_id, NULL::text AS session_id, "
            "COUNT(*) AS n, SUM(nc) AS nc, SUM(no_hits) AS no_hits, SUM(conversation) AS conversation, "
            "MIN(ts) AS first_ts, MAX(ts) AS last_ts "
            f"FROM (SELECT trunc((ts + {OFFSET_SECONDS}) / 86400)::bigint AS d, "
            f"((trunc(ts + {OFFSET_SECONDS})::bigint % 86400) / 3600)::int AS h, (confident = 0)::int AS nc, "
            f"(n_hits = 0)::int AS no_hits, (source = 'conversation')::int AS conversation, ts FROM {self._pq}) x "
            "GROUP BY d, h UNION ALL "
            "SELECT 1, GROUPING(query_normalised), GROUPING(agent_id), GROUPING(session_id), NULL, NULL, query_normalised, "
            "query_masked, agent_id, session_id, COUNT(*), SUM((confident = 0)::int), NULL, NULL, NULL, NULL "
            f"FROM {self._pq} GROUP BY GROUPING SETS ((query_normalised, query_masked), (agent_id), (session_id))"
        )
        self._frequency = True

    def totals(self) -> dict[str, object]:
        self._ensure_frequency()
        (row,) = self._rows(
            "SELECT COALESCE(SUM(n) FILTER (WHERE by_time = 0), 0)::bigint, "
            "COALESCE(SUM(nc) FILTER (WHERE by_time = 0), 0)::bigint, "
            "COALESCE(SUM(no_hits) FILTER (WHERE by_time = 0), 0)::bigint, "
            "MIN(first_ts) FILTER (WHERE by_time = 0), MAX(last_ts) FILTER (WHERE by_time = 0), "
            "COALESCE(SUM(conversation) FILTER (WHERE by_time = 0), 0)::bigint, "
            "COUNT(*) FILTER (WHERE by_agent = 0 AND agent_id IS NOT NULL), "
            "COUNT(*) FILTER (WHERE by_session = 0 AND session_id IS NOT NULL), "
            "COUNT(DISTINCT query_normalised) FILTER (WHERE by_text = 0) FROM pfq"
        )
        keys = ("queries", "non_confident", "no_hits", "first_ts", "last_ts", "conversation", "agents", "sessions",
                "distinct")
        return dict(zip(keys, row, strict=True))

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
        self._ensure_frequency()
        return self._rows(f"SELECT query_normalised, query_masked, n, nc FROM pfq WHERE by_text = 0 "
                          f"ORDER BY query_normalised {C}, query_masked {C}")

    def daily(self) -> list[tuple[int, int, int]]:
        """(day number since epoch in UTC+8, queries, non-confident)."""
        self._ensure_frequency()
        return self._rows("SELECT d, SUM(n)::bigint, SUM(nc)::bigint FROM pfq WHERE by_time = 0 GROUP BY d ORDER BY d")

    def hourly(self) -> list[tuple[int, int, int]]:
        self._ensure_frequency()
        return self._rows("SELECT h, SUM(n)::bigint, SUM(nc)::bigint FROM pfq WHERE by_time = 0 GROUP BY h ORDER BY h")

    # --- articles --------------------------------------------------------------------------

    def article_versions(self) -> list[ArticleVersionRow]:
        """One row per (article, version) shown or named by a click or vote in the period (see LogReader)."""
        self._ensure_derived()
        self._ensure_shown()
        # COUNT(query_normalised): distinct texts per (article, version), NULL not counted (as COUNT DISTINCT).
        shown = self._rows(
            "SELECT article_id, version, SUM(impressions)::bigint, SUM(rank_sum)::bigint, SUM(queries)::bigint, "
            "COUNT(query_normalised) FROM sat GROUP BY article_id, version"
        )
        # ev and fb hold one row per (query, article), so counting rows counts queries.
        clicks = self._rows(
            "SELECT article_id, version, SUM(opens)::bigint, SUM(copies)::bigint, SUM((opens > 0)::int), "
            "SUM((copies > 0)::int) FROM ev GROUP BY article_id, version"
        )
        votes = self._rows(
            "SELECT article_id, version, SUM(n)::bigint, SUM(res)::bigint FROM fb WHERE article_id IS NOT NULL "
            "GROUP BY article_id, version"
        )
        return merge_article_rows(shown, clicks, votes)

    def article_texts(self) -> dict[str, int]:
        """article → distinct normalised query texts that showed it (all versions together)."""
        self._ensure_shown()
        return dict(self._rows("SELECT article_id, COUNT(DISTINCT query_normalised) FROM sat GROUP BY article_id"))

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
            f"pq.shown_articles, COALESCE(qfb.any_unresolved, 0) AS unresolved FROM {self._pq} "
            "LEFT JOIN qfb ON qfb.query_id = pq.query_id "
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
        """(normalised, article, gap queries that showed it): each query's distinct shown articles,
        queries with the same text and articles counted together."""
        self._ensure_gaps()
        return self._rows(
            "SELECT g.query_normalised, u.a, SUM(g.c)::bigint FROM (SELECT query_normalised, shown_articles, "
            "COUNT(*) AS c FROM gq GROUP BY query_normalised, shown_articles) g, "
            "LATERAL (SELECT DISTINCT a FROM unnest(g.shown_articles) AS a) u "
            f"GROUP BY g.query_normalised, u.a ORDER BY g.query_normalised {C}, u.a {C}"
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
        self._ensure_frequency()
        return [row[0] for row in self._rows(f"SELECT DISTINCT query_normalised {C} FROM pfq WHERE by_text = 0")]
