"""Per-day roll-ups of the SQLite usage log, kept by the writer in the same transaction as the rows.

A workbench page over a million logged queries cannot scan ~5M impression rows on every request;
with these tables a period of whole days is a sum over its days (reports/sqlite_daily.py). They
are exact, not estimates:

- everything is keyed by the day of the *query* (UTC+8, the reports' day), so a click or vote that
  arrives hours later still counts for its query's day, as the reports count it;
- what depends on later rows (opens, the standing votes of FEEDBACK_RULE, whether a query is a
  gap) is kept as each query's contribution: before a batch is written the contributions of the
  queries it touches are computed from their rows, after it again, and the difference is added.
  Rows are never deleted, so the query's own part (counts, texts, impressions) is added once;
- figures that are not sums over days (distinct agents, sessions, texts per article) keep one row
  per day and value, and the reader counts the distinct values over the period's days.

`rebuild` computes every table from the raw rows (the schema-v3 migration of an existing log, and
the simulator's bulk writer); `record_batch` is the writer's incremental path. Both use the same
per-query code, so the two cannot disagree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

OFFSET_SECONDS = 8 * 3600  # the reports' UTC+8 (reports.data.UTC_OFFSET_HOURS; usage_log sits below reports)
DAY_SQL = f"CAST((ts + {OFFSET_SECONDS}) / 86400 AS INTEGER)"
HOUR_SQL = f"CAST(((ts + {OFFSET_SECONDS}) % 86400) / 3600 AS INTEGER)"

SCHEMA = """
CREATE TABLE IF NOT EXISTS daily_queries (day INTEGER, hour INTEGER, queries INTEGER NOT NULL DEFAULT 0,
    non_confident INTEGER NOT NULL DEFAULT 0, no_hits INTEGER NOT NULL DEFAULT 0,
    conversation INTEGER NOT NULL DEFAULT 0, with_open INTEGER NOT NULL DEFAULT 0,
    votes INTEGER NOT NULL DEFAULT 0, resolved_votes INTEGER NOT NULL DEFAULT 0, first_ts REAL, last_ts REAL,
    UNIQUE (day, hour));
CREATE TABLE IF NOT EXISTS daily_agents (day INTEGER, agent_id TEXT, UNIQUE (day, agent_id));
CREATE TABLE IF NOT EXISTS daily_sessions (day INTEGER, session_id TEXT, UNIQUE (day, session_id));
CREATE TABLE IF NOT EXISTS daily_texts (day INTEGER, query_normalised TEXT, query_masked TEXT,
    queries INTEGER NOT NULL DEFAULT 0, non_confident INTEGER NOT NULL DEFAULT 0,
    first_row INTEGER, first_ts REAL, first_ts_row INTEGER, UNIQUE (day, query_normalised, query_masked));
CREATE TABLE IF NOT EXISTS daily_shown (day INTEGER, article_id TEXT, version INTEGER,
    impressions INTEGER NOT NULL DEFAULT 0, rank_sum INTEGER NOT NULL DEFAULT 0,
    queries INTEGER NOT NULL DEFAULT 0, UNIQUE (day, article_id, version));
CREATE TABLE IF NOT EXISTS daily_shown_texts (article_id TEXT, version INTEGER, query_normalised TEXT,
    day INTEGER, UNIQUE (article_id, version, query_normalised, day));
CREATE TABLE IF NOT EXISTS daily_clicks (day INTEGER, article_id TEXT, version INTEGER,
    pairs INTEGER NOT NULL DEFAULT 0, opens INTEGER NOT NULL DEFAULT 0, copies INTEGER NOT NULL DEFAULT 0,
    open_queries INTEGER NOT NULL DEFAULT 0, copy_queries INTEGER NOT NULL DEFAULT 0,
    UNIQUE (day, article_id, version));
CREATE TABLE IF NOT EXISTS daily_votes (day INTEGER, article_id TEXT, version INTEGER,
    votes INTEGER NOT NULL DEFAULT 0, resolved INTEGER NOT NULL DEFAULT 0, UNIQUE (day, article_id, version));
CREATE TABLE IF NOT EXISTS daily_gap_texts (day INTEGER, query_normalised TEXT, query_masked TEXT,
    queries INTEGER NOT NULL DEFAULT 0, non_confident INTEGER NOT NULL DEFAULT 0,
    unresolved INTEGER NOT NULL DEFAULT 0, UNIQUE (day, query_normalised, query_masked));
CREATE TABLE IF NOT EXISTS daily_gap_articles (day INTEGER, query_normalised TEXT, article_id TEXT,
    queries INTEGER NOT NULL DEFAULT 0, UNIQUE (day, query_normalised, article_id));
CREATE TABLE IF NOT EXISTS daily_gap_opens (day INTEGER, query_normalised TEXT, article_id TEXT,
    queries INTEGER NOT NULL DEFAULT 0, UNIQUE (day, query_normalised, article_id));
CREATE TABLE IF NOT EXISTS daily_resolving (query_id TEXT, qrow INTEGER, feedback_id INTEGER, day INTEGER, ts REAL,
    session_id TEXT, agent_id TEXT, query_masked TEXT, query_normalised TEXT, article_id TEXT, in_query INTEGER,
    passage_id TEXT);
CREATE INDEX IF NOT EXISTS idx_daily_resolving_query ON daily_resolving(query_id);
CREATE INDEX IF NOT EXISTS idx_daily_resolving_session ON daily_resolving(session_id, ts);
CREATE TABLE IF NOT EXISTS daily_gap_queries (query_id TEXT, qrow INTEGER, day INTEGER, ts REAL, session_id TEXT,
    agent_id TEXT, query_masked TEXT, query_normalised TEXT);
CREATE INDEX IF NOT EXISTS idx_daily_gap_queries_query ON daily_gap_queries(query_id);
CREATE INDEX IF NOT EXISTS idx_daily_gap_queries_day ON daily_gap_queries(day);
-- Covering indexes in the order the reports group by: a whole-log section then reads its groups off
-- the index instead of sorting every day's rows (1M queries: 0.5-0.8 s -> 0.05-0.1 s per section).
CREATE INDEX IF NOT EXISTS idx_daily_texts_text ON daily_texts(query_normalised, query_masked, queries,
    non_confident, first_row, first_ts, first_ts_row, day);
CREATE INDEX IF NOT EXISTS idx_daily_gap_texts_text ON daily_gap_texts(query_normalised, query_masked, queries,
    non_confident, unresolved, day);
CREATE INDEX IF NOT EXISTS idx_daily_gap_articles_text ON daily_gap_articles(query_normalised, article_id, queries,
    day);
CREATE INDEX IF NOT EXISTS idx_daily_gap_opens_text ON daily_gap_opens(query_normalised, article_id, queries, day)
"""

# The rows 相似问 proposals start from (editorial/proposals.py), one set per query, replaced whenever
# the query is touched: each resolved vote naming an article (in_query: the agent opened it and the
# search was not confident or did not rank it first; passage_id: what the search showed of that
# article), and the query itself when it was a gap.
_QUERY_ROWS = (
    "DELETE FROM daily_resolving WHERE query_id IN (SELECT query_id FROM temp.daily_ids)",
    "DELETE FROM daily_gap_queries WHERE query_id IN (SELECT query_id FROM temp.daily_ids)",
    f"""INSERT INTO daily_resolving SELECT q.query_id, q.rowid, f.id, {DAY_SQL.replace("ts", "q.ts")}, q.ts,
        q.session_id, q.agent_id, q.query_masked, q.query_normalised, f.article_id,
        EXISTS (SELECT 1 FROM events e WHERE e.query_id = q.query_id AND e.type = 'open' AND e.article_id = f.article_id)
        AND (q.confident = 0 OR NOT EXISTS (SELECT 1 FROM impressions i WHERE i.query_id = q.query_id
                                            AND i.article_id = f.article_id AND i.rank = 1)),
        (SELECT passage_id FROM impressions i WHERE i.query_id = q.query_id AND i.article_id = f.article_id
         ORDER BY rank LIMIT 1)
    FROM temp.daily_ids d JOIN queries q ON q.query_id = d.query_id
    JOIN feedback f ON f.query_id = q.query_id AND f.resolved = 1 AND f.article_id IS NOT NULL""",
    f"""INSERT INTO daily_gap_queries SELECT g.query_id, g.rowid, {DAY_SQL.replace("ts", "g.ts")}, g.ts, g.session_id,
        g.agent_id, g.query_masked, g.query_normalised
    FROM temp.daily_ids d JOIN queries g ON g.query_id = d.query_id
    WHERE (g.confident = 0 OR EXISTS (SELECT 1 FROM feedback u WHERE u.query_id = g.query_id AND u.resolved = 0))
      AND NOT EXISTS (SELECT 1 FROM feedback v WHERE v.query_id = g.query_id AND v.resolved = 1)""",
)

# table → (key columns, summed columns); NULL keys may repeat a row (UNIQUE lets NULLs differ),
# which is harmless: every reader sums over GROUP BY, where NULLs are one group.
_SUMMED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "daily_queries": (("day", "hour"), ("queries", "non_confident", "no_hits", "conversation", "with_open",
                                        "votes", "resolved_votes")),
    "daily_texts": (("day", "query_normalised", "query_masked"), ("queries", "non_confident")),
    "daily_shown": (("day", "article_id", "version"), ("impressions", "rank_sum", "queries")),
    "daily_clicks": (("day", "article_id", "version"), ("pairs", "opens", "copies", "open_queries", "copy_queries")),
    "daily_votes": (("day", "article_id", "version"), ("votes", "resolved")),
    "daily_gap_texts": (("day", "query_normalised", "query_masked"), ("queries", "non_confident", "unresolved")),
    "daily_gap_articles": (("day", "query_normalised", "article_id"), ("queries",)),
    "daily_gap_opens": (("day", "query_normalised", "article_id"), ("queries",)),
}
_PRESENCE = {"daily_agents": ("day", "agent_id"), "daily_sessions": ("day", "session_id"),
             "daily_shown_texts": ("article_id", "version", "query_normalised", "day")}
TABLES = (*_SUMMED, *_PRESENCE, "daily_resolving", "daily_gap_queries")

# A vote stands unless a later vote of the same query replaces it (reports.data.FEEDBACK_RULE);
# the same condition as reports/sqlite_reader.py.
_STANDING_VOTE = """NOT EXISTS (SELECT 1 FROM feedback g WHERE g.query_id = f.query_id
    AND (g.ts > f.ts OR (g.ts = f.ts AND g.id > f.id))
    AND (g.article_id IS f.article_id
         OR (f.resolved = 1 AND g.article_id IS NULL AND g.resolved = 0)
         OR (f.article_id IS NULL AND f.resolved = 0 AND g.resolved = 1)))"""


@dataclass
class Delta:
    """Additions to the roll-ups: summed rows, presence rows and first/last moments."""

    sums: dict[str, dict[tuple, list[int]]] = field(default_factory=lambda: {t: {} for t in _SUMMED})
    present: dict[str, set[tuple]] = field(default_factory=lambda: {t: set() for t in _PRESENCE})
    moments: dict[tuple, list[float]] = field(default_factory=dict)  # (day, hour) → [first ts, last ts]
    first_seen: dict[tuple, list] = field(default_factory=dict)  # text key → [row, ts, ts row]

    def add(self, table: str, key: tuple, values: Iterable[int], sign: int = 1) -> None:
        slot = self.sums[table].setdefault(key, [0] * len(_SUMMED[table][1]))
        for i, v in enumerate(values):
            slot[i] += sign * int(v or 0)


@dataclass
class _Query:
    row: int
    day: int | None
    hour: int | None
    ts: float | None
    agent_id: str | None
    session_id: str | None
    normalised: str | None
    masked: str | None
    confident: int | None
    n_hits: int | None
    source: str | None
    shown: list[tuple] = field(default_factory=list)  # (article, version, impressions, rank sum)
    clicks: list[tuple] = field(default_factory=list)  # (article, opens, copies)
    votes: list[tuple] = field(default_factory=list)  # (article, standing votes, resolved)


def _load(conn: sqlite3.Connection, query_ids: Iterable[str]) -> dict[str, _Query]:
    """The rows of these queries (those logged), grouped as the reports group them."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS daily_ids (query_id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM temp.daily_ids")
    conn.executemany("INSERT OR IGNORE INTO temp.daily_ids VALUES (?)", ((q,) for q in query_ids))
    found = {
        r[0]: _Query(*r[1:])
        for r in conn.execute(
            f"SELECT q.query_id, q.rowid, {DAY_SQL}, {HOUR_SQL}, ts, agent_id, session_id, query_normalised, "
            "query_masked, confident, n_hits, source FROM temp.daily_ids d JOIN queries q ON q.query_id = d.query_id")
    }
    if not found:
        return found
    for qid, *rest in conn.execute(
            "SELECT i.query_id, i.article_id, i.article_version, COUNT(*), SUM(i.rank) FROM temp.daily_ids d "
            "JOIN impressions i ON i.query_id = d.query_id GROUP BY i.query_id, i.article_id, i.article_version"):
        if qid in found:
            found[qid].shown.append(tuple(rest))
    for qid, *rest in conn.execute(
            "SELECT e.query_id, e.article_id, SUM(e.type = 'open'), SUM(e.type = 'copy') FROM temp.daily_ids d "
            "JOIN events e ON e.query_id = d.query_id GROUP BY e.query_id, e.article_id"):
        if qid in found:
            found[qid].clicks.append(tuple(rest))
    for qid, *rest in conn.execute(
            "SELECT f.query_id, f.article_id, COUNT(*), SUM(f.resolved = 1) FROM temp.daily_ids d "
            f"JOIN feedback f ON f.query_id = d.query_id WHERE {_STANDING_VOTE} GROUP BY f.query_id, f.article_id"):
        if qid in found:
            found[qid].votes.append(tuple(rest))
    return found


def _own_part(q: _Query, delta: Delta) -> None:
    """What a query adds once, when it is written: its counts, text, agent, session and impressions."""
    delta.add("daily_queries", (q.day, q.hour), (1, q.confident == 0, q.n_hits == 0, q.source == "conversation",
                                                 0, 0, 0))
    if q.ts is not None:
        moment = delta.moments.setdefault((q.day, q.hour), [q.ts, q.ts])
        moment[0], moment[1] = min(moment[0], q.ts), max(moment[1], q.ts)
    if q.agent_id is not None:
        delta.present["daily_agents"].add((q.day, q.agent_id))
    if q.session_id is not None:
        delta.present["daily_sessions"].add((q.day, q.session_id))
    text = (q.day, q.normalised, q.masked)
    delta.add("daily_texts", text, (1, q.confident == 0))
    first = delta.first_seen.get(text)
    if first is None:
        delta.first_seen[text] = [q.row, q.ts, q.row]
    else:
        first[0] = min(first[0], q.row)
        if q.ts is not None and (first[1] is None or (q.ts, q.row) < (first[1], first[2])):
            first[1], first[2] = q.ts, q.row
    for article_id, version, n, rank_sum in q.shown:
        delta.add("daily_shown", (q.day, article_id, version), (n, rank_sum, 1))
        if q.normalised is not None:
            delta.present["daily_shown_texts"].add((article_id, version, q.normalised, q.day))


def _changing_part(q: _Query, delta: Delta, sign: int) -> None:
    """What later clicks and votes decide: opens, standing votes, gap status (added with sign ±1)."""
    version_of: dict[str | None, int | None] = {}
    for article_id, version, _n, _rank in q.shown:  # MAX(article_version), NULLs ignored
        if version is not None and (version_of.get(article_id) is None or version > version_of[article_id]):
            version_of[article_id] = version
        else:
            version_of.setdefault(article_id, None)
    opened = [a for a, opens, _ in q.clicks if (opens or 0) > 0]
    votes = sum(n for _, n, _ in q.votes)
    resolved = sum(r or 0 for _, _, r in q.votes)
    delta.add("daily_queries", (q.day, q.hour), (0, 0, 0, 0, bool(opened), votes, resolved), sign)
    for article_id, opens, copies in q.clicks:
        delta.add("daily_clicks", (q.day, article_id, version_of.get(article_id)),
                  (1, opens, copies, (opens or 0) > 0, (copies or 0) > 0), sign)
    for article_id, n, res in q.votes:
        if article_id is not None:
            delta.add("daily_votes", (q.day, article_id, version_of.get(article_id)), (n, res), sign)
    any_resolved = any((r or 0) > 0 for _, _, r in q.votes)
    any_unresolved = any((r or 0) < n for _, n, r in q.votes)
    if (q.confident == 0 or any_unresolved) and not any_resolved:
        delta.add("daily_gap_texts", (q.day, q.normalised, q.masked), (1, q.confident == 0, any_unresolved), sign)
        for article_id in {a for a, *_ in q.shown}:
            delta.add("daily_gap_articles", (q.day, q.normalised, article_id), (1,), sign)
        for article_id in opened:
            delta.add("daily_gap_opens", (q.day, q.normalised, article_id), (1,), sign)


def _apply(conn: sqlite3.Connection, delta: Delta) -> None:
    for table, rows in delta.sums.items():
        keys, values = _SUMMED[table]
        changed = [(*k, *v) for k, v in rows.items() if any(v)]
        if not changed:
            continue
        columns = ", ".join((*keys, *values))
        marks = ", ".join("?" * (len(keys) + len(values)))
        updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in values)
        conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
                         f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}", changed)
    for table, rows in delta.present.items():
        columns = _PRESENCE[table]
        conn.executemany(f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES "
                         f"({', '.join('?' * len(columns))})", rows)
    conn.executemany(
        "UPDATE daily_queries SET first_ts = MIN(COALESCE(first_ts, ?1), ?1), last_ts = MAX(COALESCE(last_ts, ?2), ?2) "
        "WHERE day IS ?3 AND hour IS ?4", [(lo, hi, *key) for key, (lo, hi) in delta.moments.items()])
    conn.executemany(
        "UPDATE daily_texts SET first_row = MIN(COALESCE(first_row, ?1), ?1), "
        "first_ts_row = CASE WHEN first_ts IS NULL OR ?2 < first_ts OR (?2 = first_ts AND ?3 < first_ts_row) "
        "THEN ?3 ELSE first_ts_row END, "
        "first_ts = CASE WHEN first_ts IS NULL OR ?2 < first_ts THEN ?2 ELSE first_ts END "
        "WHERE day IS ?4 AND query_normalised IS ?5 AND query_masked IS ?6",
        [(row, ts, ts_row, *key) for key, (row, ts, ts_row) in delta.first_seen.items() if ts is not None])


def record_batch(conn: sqlite3.Connection, touched: set[str], write: Callable[[], set[str]]) -> None:
    """Run `write` (the batch's inserts, returning the ids of queries it added) and bring the roll-ups
    along, inside the caller's transaction. `touched`: every query id the batch names."""
    delta = Delta()
    for q in _load(conn, touched).values():  # as they were before the batch
        _changing_part(q, delta, -1)
    added = write()
    for qid, q in _load(conn, touched).items():
        _changing_part(q, delta, 1)
        if qid in added:
            _own_part(q, delta)
    _apply(conn, delta)
    _replace_query_rows(conn)


def _replace_query_rows(conn: sqlite3.Connection) -> None:
    """The proposal rows of the queries in temp.daily_ids (filled by the last _load), as they are now."""
    for statement in _QUERY_ROWS:
        conn.execute(statement)


def rebuild(conn: sqlite3.Connection, chunk: int = 20_000) -> int:
    """Every roll-up from the raw rows (inside the caller's transaction); returns the queries read."""
    for table in TABLES:
        conn.execute(f"DELETE FROM {table}")
    last, total = 0, 0
    while True:
        rows = conn.execute("SELECT rowid, query_id FROM queries WHERE rowid > ? ORDER BY rowid LIMIT ?",
                            (last, chunk)).fetchall()
        if not rows:
            return total
        delta = Delta()
        for q in _load(conn, (qid for _, qid in rows)).values():
            _own_part(q, delta)
            _changing_part(q, delta, 1)
        _apply(conn, delta)
        _replace_query_rows(conn)
        last, total = rows[-1][0], total + len(rows)
