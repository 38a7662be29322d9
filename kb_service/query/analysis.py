"""Query analysis: the searched text → the words, bigrams, corrections and expansions both indexes use.

Runs after query reading (reading.py picked the question); spelling, abbreviations and the
lexicon's synonyms are applied here, so the lexical and the semantic side see one reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from kb_service.content.lexicon import Lexicon, match_form
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
    spelled_as: str | None = None  # the question with its typos corrected, when that changed it
    # Typed words the analysis read as a knowledge-base word (a homophone typo, an abbreviation):
    # understood, so the confidence model must not count them as words the articles never use.
    read_as_known: tuple[str, ...] = ()


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
        self.domain_terms = frozenset(match_form(t) for t in domain_terms | lexicon.dictionary_words if len(t) >= 2)

    def analyze(self, query: str, correct: bool = True) -> AnalyzedQuery:
        """`correct=False` searches the words as typed (the agent's "search as typed"): no listed
        typos, pinyin or homophones are corrected; abbreviations and synonyms still widen it."""
        typed = match_form(query).strip()
        corrected = self.lexicon.correct_typos(typed) if correct else typed
        corrector = self.corrector if correct else None
        if corrector is not None:
            # Pinyin names its word exactly, so it is rewritten in place like a listed typo: the
            # words, bigrams and coverage then see 理赔, not an unknown "lipei".
            for spelled, meant in corrector.spelled_words(corrected):
                corrected = corrected.replace(spelled, meant)
        semantic_text = corrected
        additions: list[str] = []
        spans = list(self.tokenizer.spans(corrected))  # one jieba pass serves the typo guard and the terms
        intended = self.intended_words(spans)
        # Stand-ins: the word a typo or an abbreviation means, for a typed word that matches nothing.
        stand_ins: list[str] = []
        understood: list[str] = []
        if corrector is not None:
            for wrong, meant in corrector.corrections(corrected, intended=[(s, e) for _, s, e in intended]):
                stand_ins.append(meant)
                understood.append(wrong)
                semantic_text = semantic_text.replace(wrong, meant)
        spelled_as = semantic_text if semantic_text != typed else None
        for short, term in self.abbreviations_in(spans):
            understood.append(short)
            if term not in stand_ins:
                stand_ins.append(term)
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
        return AnalyzedQuery(query, corrected, semantic_text, tuple(additions), terms, content, domain, spelled_as,
                             tuple(understood))

    @cached_property
    def _abbreviations(self) -> AbbreviationReader:
        """Built on first use: reading the whole vocabulary has no place in a reload."""
        known = self.corrector.vocabulary if self.corrector is not None else frozenset()
        return AbbreviationReader(self.domain_terms | known)

    def abbreviations_in(self, spans: Sequence[tuple[str, int, int]]) -> list[tuple[str, str]]:
        """(typed word, long term) for the query's words that can only be abbreviations (个信 → 个人信息)."""
        known = self.corrector.vocabulary if self.corrector is not None else frozenset()
        found: list[tuple[str, str]] = []
        for word, _, _ in spans:
            if len(word) < 2 or word in known or word in self.domain_terms:
                continue
            if self.tokenizer.dictionary_count(word) >= self.intended_word_count:
                continue
            term = self._abbreviations.expand(word)
            if term and (word, term) not in found:
                found.append((word, term))
        return found

    def intended_words(self, spans: Sequence[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
        """The query's words typed on purpose: common in general Chinese, or words the articles use."""
        known = self.corrector.vocabulary if self.corrector is not None else frozenset()
        return [(w, s, e) for w, s, e in spans
                if len(w) >= 2 and (w in known or self.tokenizer.dictionary_count(w) >= self.intended_word_count)]


def with_story_bigrams(analyzed: AnalyzedQuery, message: str) -> AnalyzedQuery:
    """The question's analysis, its lexical terms widened by the character bigrams of the whole
    message. Bigrams only: jieba over a 500-character paste costs 2-3 ms, and adding its words
    measured no better on the selection side (docs/evaluation.md). The question's own terms keep
    their weights; the embedding and the coverage features still read the question alone (the
    lexical-strength feature divides by the widened term count, as it was fitted)."""
    gram_weights = dict(analyzed.terms.bigrams)
    for gram in bigrams(match_form(message)):
        gram_weights.setdefault(gram, 1.0)
    return replace(analyzed, terms=QueryTerms(analyzed.terms.words, tuple(gram_weights.items())))


def whole_words(tokens: Sequence[str]) -> tuple[str, ...]:
    """Multi-character words, without the sub-words search-mode jieba also emits (电动 in 电动车)."""
    unique = list(dict.fromkeys(t for t in tokens if len(t) >= 2))
    return tuple(t for t in unique if not any(t != other and t in other for other in unique))
