"""Fusion of the lexical and semantic candidate lists, and one result per article."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class Candidate:
    passage_id: str
    score: float = 0.0
    lexical_rank: int | None = None
    lexical_score: float = 0.0
    semantic_rank: int | None = None
    semantic_score: float = 0.0


def reciprocal_rank_fusion(
    lexical: Sequence[tuple[str, float]],
    semantic: Sequence[tuple[str, float]],
    k: float = 60.0,
    lexical_weight: float = 1.0,
    semantic_weight: float = 1.0,
) -> list[Candidate]:
    """score = w_l/(k + rank_l) + w_s/(k + rank_s), ranks from 1; absent lists contribute 0."""
    table: dict[str, Candidate] = {}
    for rank, (pid, score) in enumerate(lexical, start=1):
        c = table.setdefault(pid, Candidate(pid))
        c.lexical_rank, c.lexical_score = rank, score
        c.score += lexical_weight / (k + rank)
    for rank, (pid, score) in enumerate(semantic, start=1):
        c = table.setdefault(pid, Candidate(pid))
        c.semantic_rank, c.semantic_score = rank, score
        c.score += semantic_weight / (k + rank)
    return sorted(table.values(), key=lambda c: (-c.score, c.passage_id))


def weighted_score_fusion(
    lexical: Sequence[tuple[str, float]],
    semantic: Sequence[tuple[str, float]],
    lexical_weight: float = 1.0,
    semantic_weight: float = 1.0,
    semantic_floor: float | None = None,
) -> list[Candidate]:
    """score = w_l * bm25/max_bm25 + w_s * (cos - floor)/(max_cos - floor) over each list.

    floor: the query's mean cosine to all passages when known, else the list's lowest cosine.
    """
    table: dict[str, Candidate] = {}
    top_lex = max((s for _, s in lexical), default=0.0)
    for rank, (pid, score) in enumerate(lexical, start=1):
        c = table.setdefault(pid, Candidate(pid))
        c.lexical_rank, c.lexical_score = rank, score
        c.score += lexical_weight * (score / top_lex if top_lex > 0 else 0.0)
    if semantic:
        high = max(s for _, s in semantic)
        low = min(s for _, s in semantic) if semantic_floor is None else min(semantic_floor, high)
        span = high - low
        for rank, (pid, score) in enumerate(semantic, start=1):
            c = table.setdefault(pid, Candidate(pid))
            c.semantic_rank, c.semantic_score = rank, score
            c.score += semantic_weight * ((score - low) / span if span > 1e-9 else 1.0)
    return sorted(table.values(), key=lambda c: (-c.score, c.passage_id))


def group_by_article(candidates: Sequence[Candidate], article_of: Callable[[str], str], k: int) -> list[Candidate]:
    """One result per article, carrying its best passage, in fused order."""
    seen: set[str] = set()
    grouped: list[Candidate] = []
    for candidate in candidates:
        article = article_of(candidate.passage_id)
        if article in seen:
            continue
        seen.add(article)
        grouped.append(candidate)
        if len(grouped) == k:
            break
    return grouped
