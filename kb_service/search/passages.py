"""Which passage of a chosen article is shown, and which of its words are highlighted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from kb_service.content.lexicon import match_form
from kb_service.models import Passage
from kb_service.query.analysis import AnalyzedQuery
from kb_service.query.tokenizer import bigrams
from kb_service.search.fusion import Candidate


@lru_cache(maxsize=8192)
def passage_haystack(heading: str, text: str) -> str:
    """A passage's heading and text in the match form. Memoised (a pure function of the text):
    every query scores 20–60 candidate passages, and normalising each again cost about 1 ms of
    a 20 ms search at 10k passages (cProfile over `scripts/bench_search.py`'s corpus)."""
    return match_form(" ".join((heading, text)))


def passage_text(passage: Passage) -> str:
    """All of a passage's searched text (title, heading, body, aliases) in the match form."""
    return match_form(" ".join((passage.title, passage.heading, passage.text, *passage.aliases)))


def coverage_scorer(query: AnalyzedQuery, specificity: Callable[[str], float]) -> Callable[[Passage], float]:
    """Specificity-weighted share of the query's words and bigrams that a passage contains
    (the query's side computed once, for scoring many candidates)."""
    weights = {w: specificity(w) for w in query.content_words}
    total = sum(weights.values())
    grams = list(dict.fromkeys(bigrams(query.corrected)))

    def score(passage: Passage) -> float:
        haystack = passage_haystack(passage.heading, passage.text)
        words_part = sum(v for w, v in weights.items() if w in haystack) / total if total else 0.0
        grams_part = sum(1 for g in grams if g in haystack) / len(grams) if grams else 0.0
        return 0.5 * words_part + 0.5 * grams_part

    return score


def best_passages(
    grouped: Sequence[Candidate],
    fused: Sequence[Candidate],
    article_of: Callable[[str], str],
    coverage: Callable[[str], float],
    weight: float = 1.0,
) -> list[Candidate]:
    """For each chosen article, show the candidate passage that best answers the query.

    Articles keep their fused order; within an article the passage is re-picked by fused score
    (relative to the article's best) plus how much of the query it covers, because the agent
    reads that one passage, and the article's other sections often match the query better.
    """
    by_article: dict[str, list[Candidate]] = {}
    for candidate in fused:
        by_article.setdefault(article_of(candidate.passage_id), []).append(candidate)
    chosen = []
    for head in grouped:
        options = by_article[article_of(head.passage_id)]
        top = options[0].score or 1.0
        best = max(options, key=lambda c: c.score / top + weight * coverage(c.passage_id))
        chosen.append(Candidate(best.passage_id, head.score, best.lexical_rank, best.lexical_score,
                                best.semantic_rank, best.semantic_score))
    return chosen


def highlight_terms(query: AnalyzedQuery, text: str, limit: int = 8) -> list[str]:
    """The stretches of `text` that the query matched, for <mark> in the panel."""
    haystack = match_form(text)
    if len(haystack) != len(text):  # NFKC changed the length: offsets would not map back
        haystack = text.lower()
    needles = {t for t, _ in query.terms.words if len(t) >= 2} | {g for g, _ in query.terms.bigrams if len(g) >= 2}
    needles |= {a for a in query.additions if len(a) >= 2}
    covered = bytearray(len(haystack))
    for needle in needles:  # str.find, not a regex per needle: this runs for every hit of every query
        start = haystack.find(needle)
        while start >= 0:
            covered[start : start + len(needle)] = b"\x01" * len(needle)
            start = haystack.find(needle, start + 1)
    spans: list[str] = []
    i = 0
    while True:
        i = covered.find(1, i)
        if i < 0:
            break
        j = covered.find(0, i)
        j = len(covered) if j < 0 else j
        spans.append(text[i:j])
        i = j
    unique = list(dict.fromkeys(s for s in spans if s.strip()))
    return sorted(unique, key=len, reverse=True)[:limit]
