"""Hybrid ranking: analyse the query, fuse lexical and semantic candidates, group by article,
and decide whether the system has a confident answer.

Pure functions and small classes over plain data; the engine feeds them index results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from kb_service.content.lexicon import Lexicon, normalise
from kb_service.models import Passage
from kb_service.query.abbreviations import AbbreviationReader
from kb_service.query.spelling import HomophoneCorrector
from kb_service.query.tokenizer import DomainTokenizer, QueryTerms, bigrams, index_words, words

EXPANSION_WEIGHT = 0.7


@dataclass(frozen=True)
class AnalyzedQuery:
    text: str
    corrected: str
    semantic_text: str
    additions: tuple[str, ...]
    terms: QueryTerms
    content_words: tuple[str, ...]
    domain_terms: tuple[str, ...] = ()


class QueryAnalyzer:
    """Normalise, correct typos (lexicon list + homophones) and expand synonyms."""

    def __init__(
        self,
        tokenizer: DomainTokenizer,
        lexicon: Lexicon,
        corrector: HomophoneCorrector | None,
        domain_terms: frozenset[str] = frozenset(),
        intended_word_count: int = 20,
    ) -> None:
        self.tokenizer = tokenizer
        self.lexicon = lexicon
        self.corrector = corrector
        self.intended_word_count = intended_word_count
        # Lexicon words and article aliases: words that only this domain's questions contain.
        self.domain_terms = frozenset(normalise(t) for t in domain_terms | lexicon.dictionary_words if len(t) >= 2)

    def analyze(self, query: str) -> AnalyzedQuery:
        corrected = self.lexicon.correct_typos(normalise(query).strip())
        if self.corrector is not None:
            # Pinyin names its word exactly, so it is rewritten in place like a listed typo: the
            # words, bigrams and coverage then see 理赔, not an unknown "lipei".
            for typed, meant in self.corrector.spelled_words(corrected):
                corrected = corrected.replace(typed, meant)
        semantic_text = corrected
        additions: list[str] = []
        spans = list(self.tokenizer.spans(corrected))  # one jieba pass serves the typo guard and the terms
        intended = self.intended_words(spans)
        # Stand-ins: the word a typo or an abbreviation means, for a typed word that matches nothing.
        stand_ins: list[str] = []
        if self.corrector is not None:
            for typed, meant in self.corrector.corrections(corrected, intended=[(s, e) for _, s, e in intended]):
                stand_ins.append(meant)
                semantic_text = semantic_text.replace(typed, meant)
        stand_ins.extend(self.abbreviations_in(spans))
        additions.extend(stand_ins)
        general = [(s, e) for word, s, e in intended if word not in self.domain_terms]
        for canonical in self.lexicon.expansions(" ".join([corrected, *additions]), enclosing=general):
            if canonical not in additions:
                additions.append(canonical)
        if additions:
            semantic_text = f"{semantic_text}（{'、'.join(a for a in additions if a not in semantic_text)}）".replace("（）", "")
        word_weights: dict[str, float] = {}
        gram_weights: dict[str, float] = {}
        typed_words = [word for word, _, _ in index_words(spans)]
        word_weights.update(dict.fromkeys(typed_words, 1.0))
        gram_weights.update(dict.fromkeys(bigrams(corrected), 1.0))
        for extra in additions:
            # A stand-in weighs what the typed word would have weighed (理培 matches nothing, 理赔
            # does); synonyms only widen a query whose typed words already match.
            word_weight = 1.0 if extra in stand_ins else EXPANSION_WEIGHT
            gram_weight = 1.0 if extra in stand_ins else EXPANSION_WEIGHT * 0.7
            for term in words(extra, self.tokenizer):
                word_weights[term] = max(word_weights.get(term, 0.0), word_weight)
            for gram in bigrams(extra):
                gram_weights[gram] = max(gram_weights.get(gram, 0.0), gram_weight)
        terms = QueryTerms(tuple(word_weights.items()), tuple(gram_weights.items()))
        content = whole_words(typed_words)
        haystack = " ".join([corrected, *additions])
        domain = tuple(t for t in self.domain_terms if t in haystack)
        return AnalyzedQuery(query, corrected, semantic_text, tuple(additions), terms, content, domain)

    @cached_property
    def _abbreviations(self) -> AbbreviationReader:
        """Built on first use: reading the whole vocabulary has no place in a reload."""
        known = self.corrector.vocabulary if self.corrector is not None else frozenset()
        return AbbreviationReader(self.domain_terms | known)

    def abbreviations_in(self, spans: Sequence[tuple[str, int, int]]) -> list[str]:
        """Long terms for the query's words that can only be abbreviations (个信 → 个人信息)."""
        known = self.corrector.vocabulary if self.corrector is not None else frozenset()
        found: list[str] = []
        for word, _, _ in spans:
            if len(word) < 2 or word in known or word in self.domain_terms:
                continue
            if self.tokenizer.dictionary_count(word) >= self.intended_word_count:
                continue
            term = self._abbreviations.expand(word)
            if term and term not in found:
                found.append(term)
        return found

    def intended_words(self, spans: Sequence[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
        """The query's words typed on purpose: common in general Chinese, or words the articles use."""
        known = self.corrector.vocabulary if self.corrector is not None else frozenset()
        return [(w, s, e) for w, s, e in spans
                if len(w) >= 2 and (w in known or self.tokenizer.dictionary_count(w) >= self.intended_word_count)]


def whole_words(tokens: Sequence[str]) -> tuple[str, ...]:
    """Multi-character words, without the sub-words search-mode jieba also emits (电动 in 电动车)."""
    unique = list(dict.fromkeys(t for t in tokens if len(t) >= 2))
    return tuple(t for t in unique if not any(t != other and t in other for other in unique))


# ---------------------------------------------------------------- fusion


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


def coverage_scorer(query: AnalyzedQuery, specificity: Callable[[str], float]) -> Callable[[Passage], float]:
    """Specificity-weighted share of the query's words and bigrams that a passage contains
    (the query's side computed once, for scoring many candidates)."""
    weights = {w: specificity(w) for w in query.content_words}
    total = sum(weights.values())
    grams = list(dict.fromkeys(bigrams(query.corrected)))

    def score(passage: Passage) -> float:
        haystack = normalise(" ".join((passage.heading, passage.text)))
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


# ---------------------------------------------------------------- highlights


def highlight_terms(query: AnalyzedQuery, text: str, limit: int = 8) -> list[str]:
    """The stretches of `text` that the query matched, for <mark> in the panel."""
    haystack = normalise(text)
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
