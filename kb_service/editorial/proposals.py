"""Proposed 相似问: real queries that reached an article only the hard way.

A query the search could not answer well, after which the agent still found the right article, is
exactly how agents ask for that article's content in their own words, which is what a 相似问 is. Two
paths qualify, both ending in a resolved vote that names the article:

- in the same query: the agent opened the article and voted it resolved, but the search was not
  confident or did not rank the article first (or did not show it at all);
- after a gap: the query was a gap (not confident, or voted unresolved) and a later query of the
  same agent and session, within FOLLOW_UP_SECONDS, was resolved by the article. The first query's
  wording is what the search missed.

The section proposed is the one the search showed for the article in the resolving query (its
passage), so the 相似问 lands under the heading whose text answered. Texts come from the log,
already masked; a text that still carries a masking placeholder (〔手机号〕) is no question to teach
the search and is skipped. Proposals are deduplicated by normalised text per article section and
counted; texts already among the section's 相似问, or an alias of the article, are not proposed.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from kb_service.reports.model import Period
from kb_service.usage_log.grouping import normalise_query

FOLLOW_UP_SECONDS = 600


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
SELECT q.query_id, q.query_masked, q.query_normalised, f.article_id, q.query_id
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
SELECT g.query_id, g.query_masked, g.query_normalised, rq.article_id, rq.query_id
FROM queries g
JOIN rq ON rq.session_id = g.session_id AND rq.agent_id IS g.agent_id AND rq.ts > g.ts AND rq.ts <= g.ts + {window}
WHERE {where} AND g.query_normalised != rq.query_normalised
  AND (g.confident = 0 OR EXISTS (SELECT 1 FROM feedback u WHERE u.query_id = g.query_id AND u.resolved = 0))
  AND NOT EXISTS (SELECT 1 FROM feedback v WHERE v.query_id = g.query_id AND v.resolved = 1)
"""


def _where(period: Period, alias: str) -> tuple[str, list[float]]:
    low, high = period.bounds()
    clauses, args = ["1 = 1"], []
    if low != float("-inf"):
        clauses.append(f"{alias}.ts >= ?")
        args.append(low)
    if high != float("inf"):
        clauses.append(f"{alias}.ts < ?")
        args.append(high)
    return " AND ".join(clauses), args


def _shown_passage(conn: sqlite3.Connection, query_id: str, article_id: str) -> str | None:
    row = conn.execute("SELECT passage_id FROM impressions WHERE query_id = ? AND article_id = ? ORDER BY rank LIMIT 1",
                       (query_id, article_id)).fetchone()
    return row[0] if row else None


def find_proposals(db_path: Path | str, period: Period, articles: dict[str, object],
                   max_examples: int = 5) -> list[Proposal]:
    """Proposals from the log for the period, most-backed first.

    `articles`: article id → loaded Article (kb_service.models.Article) for the articles that
    exist now; a resolving article that no longer exists proposes nothing.
    """
    from kb_service.content.chunking import chunk_article

    headings: dict[str, dict[str, str]] = {}  # article → passage id → heading (last level)
    for article_id, article in articles.items():
        headings[article_id] = {p.passage_id: p.heading.split(" > ")[-1] for p in chunk_article(article)  # type: ignore[arg-type]
                                if p.heading}
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True, timeout=30.0)
    try:
        found: dict[str, Proposal] = {}
        spellings: dict[str, dict[str, int]] = {}
        high = period.bounds()[1]
        where, args = _where(Period(period.since, None), "q")
        if high != float("inf"):  # a resolving query may fall just after the period's end
            where, args = f"{where} AND q.ts < ?", [*args, high + FOLLOW_UP_SECONDS]
        conn.execute(_RESOLVING.format(where=where), args)
        conn.execute("CREATE INDEX temp.rq_session ON rq(session_id, ts)")
        for kind, sql, alias in (("in_query", _IN_QUERY, "q"), ("after_gap", _AFTER_GAP, "g")):
            where, args = _where(period, alias)
            rows = conn.execute(sql.format(where=where, window=FOLLOW_UP_SECONDS), args).fetchall()
            seen: set[tuple[str, str]] = set()
            for query_id, masked, normalised, article_id, resolving in rows:
                if (query_id, article_id) in seen or article_id not in articles or "〔" in (masked or ""):
                    continue
                seen.add((query_id, article_id))
                section = _section_for(conn, resolving, article_id, articles[article_id], headings[article_id])
                if section is None:
                    continue
                _count(found, spellings, kind, query_id, masked, normalised or normalise_query(masked), article_id,
                       articles[article_id], section, max_examples)
    finally:
        conn.close()
    return _finalise(found, spellings, articles)


def _section_for(conn: sqlite3.Connection, resolving_query: str, article_id: str, article: object,
                 passages: dict[str, str]) -> str | None:
    """The heading of the passage shown for the article in the resolving query, else its first section."""
    passage = _shown_passage(conn, resolving_query, article_id)
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
    for pid, proposal in found.items():
        proposal.text = max(spellings[pid].items(), key=lambda kv: (kv[1], -len(kv[0]), kv[0]))[0].strip()
        article = articles[proposal.article_id]
        known = {normalise_query(a) for a in article.aliases} | {normalise_query(article.title)}  # type: ignore[attr-defined]
        for section in article.sections:  # type: ignore[attr-defined]
            if section.heading_path and section.heading_path[-1] == proposal.section:
                known |= {normalise_query(q) for q in section.questions}
        if proposal.normalised in known or not proposal.text:
            continue
        result.append(proposal)
    result.sort(key=lambda p: (-p.queries, p.article_id, p.section, p.normalised))
    return result


def load_current_articles(articles_dir: Path) -> dict[str, object]:
    """Article id → Article for the articles folder as it is now (what adoption would edit)."""
    from kb_service.content.articles import load_articles

    return {a.id: a for a in load_articles(Path(articles_dir)).articles}
