"""Proposed 相似问: real queries that reached an article only the hard way.

A query the search could not answer well, after which the agent still found the right article, is
exactly how agents ask for that article's content in their own words, which is what a 相似问 is. Two
paths qualify, both ending in a resolved vote that names the article:

- in the same query: the agent opened the article and voted it resolved, but the search was not
  confident or did not rank the article first (or did not show it at all);
- after a gap: the query was a gap (not confident, or voted unresolved) and a later query of the
  same agent and session, within FOLLOW_UP_SECONDS, was resolved by the article, and the two are
  about the same thing: the gap query shares a content bigram (question and generic words removed)
  with the resolving query or with the article's title, aliases or headings, or (with the engine's
  embedder) means nearly the same as the resolving query. Agents search many
  unrelated things in a row; without that check every gap would be proposed for whatever came next.
  The first query's wording is what the search missed.

The section proposed is the one the search showed for the article in the resolving query (its
passage), so the 相似问 lands under the heading whose text answered. Texts come from the log,
already masked; a text that still carries a masking placeholder (〔手机号〕) is no question to teach
the search and is skipped. Proposals are deduplicated by normalised text per article section and
counted; texts already among the section's 相似问, or an alias of the article, are not proposed.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb_service.reports.data import Period
from kb_service.reports.sqlite_reader import period_condition
from kb_service.usage_log.grouping import grouping_form

FOLLOW_UP_SECONDS = 300
# Re-scaled cosine (gap_topics.baseline_cosine) from which a follow-up means the same as the gap:
# 二手车转给别人保单咋办 → 过户后保单怎么处理 is 0.38 (m3e-small) / 0.45 (USE); unrelated next
# questions (质检 → 南北方客户沟通差异, 工资什么时候发 → 续保提醒时间) are at or below 0.
RELATED_SEMANTIC = 0.3


@dataclass
class Proposal:
    proposal_id: str
    text: str  # the most frequent masked spelling
    normalised: str
    article_id: str
    article_title: str
    section: str  # the heading (last level) its questions are listed under
    queries: int = 0  # how many logged queries back it
    in_query: int = 0  # resolved in the same query after opening the article
    after_gap: int = 0  # a gap query followed by a resolving one
    query_ids: list[str] = field(default_factory=list)  # a few examples, for drill-down


def proposal_id(article_id: str, section: str, normalised: str) -> str:
    """Stable across runs and periods: the same question for the same section keeps its id."""
    digest = hashlib.sha1(f"{article_id}\n{section}\n{normalised}".encode()).hexdigest()
    return f"p-{digest[:10]}"


_IN_QUERY = """
SELECT q.query_id, q.query_masked, q.query_normalised, f.article_id, q.query_id, NULL
FROM queries q JOIN feedback f ON f.query_id = q.query_id AND f.resolved = 1 AND f.article_id IS NOT NULL
WHERE {where} AND EXISTS (SELECT 1 FROM events e WHERE e.query_id = q.query_id AND e.type = 'open'
                          AND e.article_id = f.article_id)
  AND (q.confident = 0 OR NOT EXISTS (SELECT 1 FROM impressions i WHERE i.query_id = q.query_id
                                      AND i.article_id = f.article_id AND i.rank = 1))
"""
# A gap query, then (same agent and session, within the window) a query resolved by an article.
# The resolving queries go into a small temp table indexed by session first: the log has no
# session index, and a self-join of the queries table would scan it once per gap query.
_RESOLVING = """
CREATE TEMP TABLE rq AS SELECT q.query_id, q.session_id, q.agent_id, q.ts, q.query_normalised, f.article_id
FROM feedback f JOIN queries q ON q.query_id = f.query_id
WHERE f.resolved = 1 AND f.article_id IS NOT NULL AND q.session_id IS NOT NULL AND {where}
"""
_AFTER_GAP = """
SELECT g.query_id, g.query_masked, g.query_normalised, rq.article_id, rq.query_id, rq.query_normalised
FROM queries g
JOIN rq ON rq.session_id = g.session_id AND rq.agent_id IS g.agent_id AND rq.ts > g.ts AND rq.ts <= g.ts + {window}
WHERE {where} AND g.query_normalised != rq.query_normalised
  AND (g.confident = 0 OR EXISTS (SELECT 1 FROM feedback u WHERE u.query_id = g.query_id AND u.resolved = 0))
  AND NOT EXISTS (SELECT 1 FROM feedback v WHERE v.query_id = g.query_id AND v.resolved = 1)
"""


class _PostgresLog:
    """The log in PostgreSQL behind the three calls proposals make of a SQLite connection.

    The queries above are plain SQL over the same tables and columns in both logs; only the
    placeholder and two SQLite idioms differ, translated here rather than kept as a second copy."""

    DIALECT = (("?", "%s"), (" IS g.agent_id", " IS NOT DISTINCT FROM g.agent_id"),
               ("CREATE INDEX temp.", "CREATE INDEX "))

    def __init__(self, url: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True)  # the temp table lives as long as this session

    def execute(self, sql: str, args: Sequence[object] = ()) -> Any:
        for sqlite_form, postgres_form in self.DIALECT:
            sql = sql.replace(sqlite_form, postgres_form)
        return self._conn.execute(sql, list(args))

    def close(self) -> None:
        self._conn.close()


def _connect(db: Path | str) -> Any:
    """A read connection to the log: a SQLite file (read-only) or a `postgresql://` URL."""
    from kb_service.usage_log.postgres import is_postgres_url

    if is_postgres_url(db):
        return _PostgresLog(str(db))
    return sqlite3.connect(f"file:{Path(db)}?mode=ro", uri=True, timeout=30.0)


def _where(period: Period, alias: str) -> tuple[str, list[float]]:
    return period_condition(f"{alias}.ts", *period.bounds())


def _shown_passages(conn: Any, pairs: set[tuple[str, str]], chunk: int = 500) -> dict[tuple[str, str], str]:
    """(query, article) → the passage the search showed for the article (its best rank), read in
    chunks of queries: one lookup per proposal row cost seconds at 1M logged queries."""
    best: dict[tuple[str, str], tuple[int, str]] = {}
    query_ids = sorted({q for q, _ in pairs})
    for start in range(0, len(query_ids), chunk):
        part = query_ids[start : start + chunk]
        rows = conn.execute("SELECT query_id, article_id, rank, passage_id FROM impressions WHERE query_id IN "
                            f"({', '.join('?' * len(part))})", part).fetchall()
        for query_id, article_id, rank, passage in rows:
            key = (query_id, article_id)
            if key in pairs and (key not in best or rank < best[key][0]):
                best[key] = (rank, passage)
    return {key: passage for key, (_, passage) in best.items()}


def find_proposals(db_path: Path | str, period: Period, articles: dict[str, object],
                   max_examples: int = 5, embedder: Any = None, vector_cache: Path | None = None) -> list[Proposal]:
    """Proposals from the log for the period, most-backed first.

    `articles`: article id → loaded Article (kb_service.models.Article) for the articles that
    exist now; a resolving article that no longer exists proposes nothing. `embedder` (the
    engine's) also counts a gap and its follow-up as related when they mean the same
    (RELATED_SEMANTIC); without one only shared content bigrams do.
    """
    from kb_service.content.chunking import chunk_article
    from kb_service.editorial.proposal_rows import daily_shown_passages

    headings: dict[str, dict[str, str]] = {}  # article → passage id → heading (last level)
    for article_id, article in articles.items():
        headings[article_id] = {p.passage_id: p.heading.split(" > ")[-1] for p in chunk_article(article)  # type: ignore[arg-type]
                                if p.heading}
    conn = _connect(db_path)
    try:
        found: dict[str, Proposal] = {}
        spellings: dict[str, dict[str, int]] = {}
        accepted_by_kind: dict[str, list[tuple]] = {}
        for kind, rows in _candidate_rows(conn, period).items():
            related = _related_pairs(rows, articles, embedder, vector_cache) if kind == "after_gap" else None
            seen: set[tuple[str, str]] = set()
            accepted = []
            for query_id, masked, normalised, article_id, resolving, follow_up in rows:
                if (query_id, article_id) in seen or article_id not in articles or "〔" in (masked or ""):
                    continue
                if related is not None and (normalised, follow_up, article_id) not in related:
                    continue
                seen.add((query_id, article_id))
                accepted.append((query_id, masked, normalised, article_id, resolving))
            accepted_by_kind[kind] = accepted
        # One look-up for both kinds: the roll-up read is a scan of every resolved vote.
        wanted = {(r[4], r[3]) for accepted in accepted_by_kind.values() for r in accepted}
        passages = daily_shown_passages(conn, wanted)
        if passages is None:  # no roll-ups (PostgreSQL, an older SQLite log): from the impressions
            passages = _shown_passages(conn, wanted)
        for kind, accepted in accepted_by_kind.items():
            for query_id, masked, normalised, article_id, resolving in accepted:
                section = _section_for(passages.get((resolving, article_id)), articles[article_id],
                                       headings[article_id])
                if section is None:
                    continue
                _count(found, spellings, kind, query_id, masked, normalised or grouping_form(masked), article_id,
                       articles[article_id], section, max_examples)
    finally:
        conn.close()
    return _finalise(found, spellings, articles)


def _candidate_rows(conn: sqlite3.Connection, period: Period) -> dict[str, list[tuple]]:
    from kb_service.editorial.proposal_rows import daily_candidate_rows

    kept = daily_candidate_rows(conn, period, FOLLOW_UP_SECONDS)  # whole days of a SQLite log with roll-ups
    if kept is not None:
        return kept
    high = period.bounds()[1]
    where, args = _where(Period(period.since, None), "q")
    if high != float("inf"):  # a resolving query may fall just after the period's end
        where, args = f"{where} AND q.ts < ?", [*args, high + FOLLOW_UP_SECONDS]
    conn.execute(_RESOLVING.format(where=where), args)
    conn.execute("CREATE INDEX temp.rq_session ON rq(session_id, ts)")
    rows: dict[str, list[tuple]] = {}
    for kind, sql, alias in (("in_query", _IN_QUERY, "q"), ("after_gap", _AFTER_GAP, "g")):
        where, args = _where(period, alias)
        rows[kind] = conn.execute(sql.format(where=where, window=FOLLOW_UP_SECONDS), args).fetchall()
    return rows


def _related_pairs(rows: list[tuple], articles: dict[str, object], embedder: Any,
                   vector_cache: Path | None) -> set[tuple[str, str, str]]:
    """(gap text, follow-up text, article) triples where the follow-up was about the same thing."""
    pairs = {(r[2] or "", r[5] or "", r[3]) for r in rows if r[3] in articles}
    bigrams_of = _BigramMemo()
    related = {p for p in pairs if _lexically_related(p[0], p[1], articles[p[2]], bigrams_of)}
    rest = sorted(pairs - related)
    if embedder is None or not rest:
        return related
    from kb_service.reports.gap_topics import baseline_cosine, embed_texts

    texts = sorted({t for g, f, _ in rest for t in (g, f)})
    vectors = dict(zip(texts, embed_texts(texts, embedder, vector_cache), strict=True))
    base = baseline_cosine(embedder)
    for gap, follow_up, article_id in rest:
        if (float(vectors[gap] @ vectors[follow_up]) - base) / (1.0 - base) >= RELATED_SEMANTIC:
            related.add((gap, follow_up, article_id))
    return related


def _cut_words() -> tuple[str, ...]:
    from kb_service.reports.gap_topics import CUT_WORDS

    return CUT_WORDS


def content_bigrams(text: str, cut_words: Sequence[str] | None = None) -> set[str]:
    """Character bigrams of what is left after question and generic words are cut out."""
    for word in cut_words if cut_words is not None else _cut_words():
        text = text.replace(word, " ")
    return {text[i : i + 2] for i in range(len(text) - 1) if " " not in text[i : i + 2]}


class _BigramMemo:
    """content_bigrams per text, and the union over an article's names, each computed once per call of
    find_proposals: at 1M logged queries the same texts and articles come back in thousands of pairs."""

    def __init__(self) -> None:
        self.cut_words = _cut_words()
        self._texts: dict[str, set[str]] = {}
        self._articles: dict[int, set[str]] = {}

    def __call__(self, text: str) -> set[str]:
        found = self._texts.get(text)
        if found is None:
            found = self._texts[text] = content_bigrams(text, self.cut_words)
        return found

    def of_article(self, article: object) -> set[str]:
        """Bigrams of the article's title, aliases and headings together (any shared one relates)."""
        found = self._articles.get(id(article))
        if found is None:
            names = [article.title, *article.aliases, *(h for s in article.sections for h in s.heading_path)]  # type: ignore[attr-defined]
            found = self._articles[id(article)] = set().union(*(self(grouping_form(n)) for n in names))
        return found


def _lexically_related(gap_text: str, follow_up: str, article: object, bigrams_of: _BigramMemo) -> bool:
    """The gap query and the query that resolved it share a content bigram (or the gap query shares one
    with the article's title, aliases or headings)."""
    mine = bigrams_of(gap_text)
    return bool(mine & bigrams_of(follow_up)) or bool(mine & bigrams_of.of_article(article))


def _section_for(passage: str | None, article: object, passages: dict[str, str]) -> str | None:
    """The heading of the passage shown for the article in the resolving query, else its first section."""
    if passage and passage in passages:
        return passages[passage]
    sections = [s for s in article.sections if s.heading_path]  # type: ignore[attr-defined]
    return sections[0].heading_path[-1] if sections else None


def _count(found: dict[str, Proposal], spellings: dict[str, dict[str, int]], kind: str, query_id: str, masked: str,
           normalised: str, article_id: str, article: object, section: str, max_examples: int) -> None:
    pid = proposal_id(article_id, section, normalised)
    proposal = found.get(pid)
    if proposal is None:
        proposal = found[pid] = Proposal(pid, masked, normalised, article_id, str(article.title), section)  # type: ignore[attr-defined]
    proposal.queries += 1
    setattr(proposal, kind, getattr(proposal, kind) + 1)
    if len(proposal.query_ids) < max_examples:
        proposal.query_ids.append(query_id)
    per = spellings.setdefault(pid, {})
    per[masked] = per.get(masked, 0) + 1


def _finalise(found: dict[str, Proposal], spellings: dict[str, dict[str, int]],
              articles: dict[str, object]) -> list[Proposal]:
    """Pick each proposal's spelling and drop what the article already knows."""
    result = []
    known_of: dict[tuple[str, str], set[str]] = {}  # (article, section) → what it already knows
    for pid, proposal in found.items():
        proposal.text = max(spellings[pid].items(), key=lambda kv: (kv[1], -len(kv[0]), kv[0]))[0].strip()
        known = known_of.get((proposal.article_id, proposal.section))
        if known is None:
            article = articles[proposal.article_id]
            known = {grouping_form(a) for a in article.aliases} | {grouping_form(article.title)}  # type: ignore[attr-defined]
            for section in article.sections:  # type: ignore[attr-defined]
                if section.heading_path and section.heading_path[-1] == proposal.section:
                    known |= {grouping_form(q) for q in section.questions}
            known_of[(proposal.article_id, proposal.section)] = known
        if proposal.normalised in known or not proposal.text:
            continue
        result.append(proposal)
    result.sort(key=lambda p: (-p.queries, p.article_id, p.section, p.normalised))
    return result


def load_current_articles(articles_dir: Path) -> dict[str, object]:
    """Article id → Article for the articles folder as it is now (what adoption would edit)."""
    from kb_service.content.articles import load_articles

    return {a.id: a for a in load_articles(Path(articles_dir)).articles}
