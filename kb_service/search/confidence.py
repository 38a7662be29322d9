"""The confidence model: does the top of the ranking look like an answer to the question?

Features of one question's results (how well the top passage covers the query, how known its
words are, how the semantic scores peak, whether the two indexes agree, how close the nearest
相似问 is) and a logistic model over them, fitted by `kb calibrate` (calibration.py) and stored per
embedder and mode in `confidence.json`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kb_service.models import Passage
from kb_service.query.analysis import AnalyzedQuery
from kb_service.query.tokenizer import STOP_CHARS, bigrams
from kb_service.search.fusion import Candidate
from kb_service.search.passages import passage_text

FEATURES = ("semantic_top", "semantic_margin", "word_coverage", "bigram_coverage", "known_ratio", "domain_terms",
            "agreement", "lexical_strength", "semantic_density", "question_match", "unknown_word", "unknown_share",
            "not_covered", "not_covered_words", "answered_match")

DENSITY_NEIGHBOURS = 10
SPECIFICITY_SCALE = 20.0  # -log P of a word jieba has never seen is about 18
MIN_CLAUSE_WORDS = 2  # a clause judged on its own needs this many words (one word proves little)
UNSEEN_WORD = 17.5  # -log P from which jieba's dictionary has never seen the word (once seen: 17.2)
SPECIFIC_WORD = 12.0  # -log P from which a word is a term or a name (年检, 车船税), not everyday Chinese


GLUE = "".join(sorted(STOP_CHARS))  # characters jieba glues to a neighbouring word


def understood_or(known: Callable[[str], bool], read_as_known: Container[str],
                  specificity: Callable[[str], float] | None = None) -> Callable[[str], bool]:
    """`known`, and also true for a typed word the analysis read as a knowledge-base word: 人伤 is
    an abbreviation of 人员伤亡 and 理陪 a typo of 理赔, neither a sign the question is out of scope.

    With `specificity`, also for a function character jieba glued to a word (有个, 我车, 报给): a
    pair its dictionary has never seen looks as rare as 车船税, yet without the glue nothing unknown
    is left. Only pairs it has never seen: 过户 is a dictionary word, not 过 + 户."""
    def understood(word: str) -> bool:
        if word in read_as_known or known(word):
            return True
        if specificity is None or specificity(word) < UNSEEN_WORD:
            return False
        core = word.strip(GLUE)
        return core != word and (len(core) < 2 or known(core))

    return understood


def unknown_share(query: AnalyzedQuery, known: Callable[[str], bool], specificity: Callable[[str], float],
                  among: Container[str] | None = None) -> float:
    """Share of the question's words that are specific and that the knowledge base never uses.

    Judged over the whole question, not its best-covered clause: in 「年检过期两个多月，追尾了还赔不赔」
    the clause 「还赔不赔」 is covered well and the condition that makes it out of scope (年检) is in
    another clause. A share, not a count, so a long pasted message is not rejected for its length.
    `among`: count only these words (`not_covered_words`: the not-covered topics' names, so 年检 or
    车船税 count as a topic known to be missing, where an unknown 上个月 or 保险杠 says little)."""
    words = query.content_words
    if not words:
        return 0.0
    return sum(1 for w in words if (among is None or w in among) and not known(w)
               and specificity(w) >= SPECIFIC_WORD) / len(words)


def named_topic_share(query: AnalyzedQuery, known: Callable[[str], bool], specificity: Callable[[str], float],
                      topic_words: Container[str], named_topics: int) -> float:
    """`not_covered_words`: the share of the question's words that name a not-covered topic, as
    words (unknown specific words among the topics' names' words: 年检) or as whole names no
    article uses (电子发票, which jieba cuts into 电子 + 发票, words the articles use), whichever
    says more. Held out by style on the pool the whole names raised `kb calibrate`'s choice from
    173 to 177 of 202 out-of-scope rejected, at 25 → 27 of 949 answerable (docs/evaluation.md)."""
    by_words = unknown_share(query, known, specificity, topic_words)
    by_names = min(1.0, named_topics / len(query.content_words)) if query.content_words else 0.0
    return max(by_words, by_names)


def best_clause_coverage(query: AnalyzedQuery, haystack: str, known: Callable[[str], bool],
                         specificity: Callable[[str], float]) -> tuple[float, float, float, float]:
    """(word coverage, known-word share, bigram coverage, most specific unknown word) of the
    clause the top passage covers best.

    Words are weighted by how specific they are in general Chinese: an unmatched 年检 or 公积金 says
    far more about being out of scope than an unmatched 晚上. A pasted message is judged by its
    best-covered clause, so its story (上班路上, 红绿灯, 白色轿车) does not drown the clause the
    answer addresses; a short query is one clause and is judged whole."""
    parts = [p for p in re.split(r"[，,。;；!?]+", query.corrected) if p.strip()] or [query.corrected]
    # No starting value to beat: a clause with nothing covered and an unknown word (基金定投怎么弄)
    # must keep its unknown word, not lose to an all-zero default.
    best: tuple[float, float, float, float] | None = None
    for part in parts:
        words_here = [w for w in query.content_words if w in part]
        if len(parts) > 1 and len(words_here) < MIN_CLAUSE_WORDS:
            continue
        weights = {w: specificity(w) for w in words_here}
        total = sum(weights.values())
        word_cov = sum(v for w, v in weights.items() if w in haystack) / total if total else 0.0
        known_ratio = sum(v for w, v in weights.items() if known(w)) / total if total else 0.0
        grams = list(dict.fromkeys(bigrams(part)))
        gram_cov = sum(1 for g in grams if g in haystack) / len(grams) if grams else 0.0
        # One rare word the knowledge base never uses (车船税, 年检, 食堂) marks a question it
        # cannot answer, however well the rest of the clause matches.
        unknown = max((v for w, v in weights.items() if not known(w)), default=0.0) / SPECIFICITY_SCALE
        here = (word_cov, known_ratio, gram_cov, -unknown)
        best = here if best is None else max(best, here)
    if best is None:
        return 0.0, 0.0, 0.0, 0.0
    return best[0], best[1], best[2], -best[3]


@dataclass
class ConfidenceFeatures:
    semantic_top: float  # cosine of the best passage
    semantic_margin: float  # best cosine minus the mean of the other candidates: a peak, not a flat field
    word_coverage: float  # share of the query's whole words found in the top hit
    bigram_coverage: float  # share of the query's bigrams found in the top hit
    known_ratio: float  # share of the query's whole words that occur anywhere in the knowledge base
    domain_terms: float  # lexicon words or article aliases in the query (0, 0.5, 1)
    agreement: float  # top article among the top 3 of each list
    lexical_strength: float  # BM25 of the best lexical hit per query term (log)
    # Mean cosine of the nearest passages minus the mean cosine to all passages. Short queries
    # are similar to everything (0.7+ with m3e); what separates a question the knowledge base
    # answers is how far its neighbourhood stands above that baseline.
    semantic_density: float = 0.0
    # Cosine of the closest 相似问 (0 without them): an answerable question has usually been asked
    # in other words, and question to question is what the embedder compares best.
    question_match: float = 0.0
    # Specificity of the rarest query word the knowledge base never uses (0: every word is known).
    unknown_word: float = 0.0
    # Share of the question's words that are specific and never used by the knowledge base.
    unknown_share: float = 0.0
    # The closest not-covered question's cosine minus the top passage's (0 without a list): a
    # query nearer a question the knowledge base is known not to answer than to the passage it
    # found is likely that question (content/not_covered.py).
    not_covered: float = 0.0
    # Share of the question's words that name a not-covered topic: specific words the knowledge
    # base never uses among the topics' names' words, or whole names no article uses written out
    # (named_topic_share; 0 without a list).
    not_covered_words: float = 0.0
    # Cosine of the closest section question (content/section_questions.py; 0 without them): how
    # much the query looks like a question a section answers, asked in the agents' own styles.
    answered_match: float = 0.0

    def vector(self) -> list[float]:
        return [getattr(self, name) for name in FEATURES]


def confidence_features(
    query: AnalyzedQuery,
    top: Candidate | None,
    top_passage: Passage | None,
    semantic: Sequence[tuple[str, float]],
    lexical: Sequence[tuple[str, float]],
    article_of: Callable[[str], str],
    known: Callable[[str], bool],
    specificity: Callable[[str], float] = lambda word: 1.0,
    baseline_cosine: float | None = None,
    question_match: float = 0.0,
    not_covered_match: float = 0.0,
    not_covered_words: Container[str] = frozenset(),
    answered_match: float = 0.0,
    named_topics: int = 0,
) -> ConfidenceFeatures:
    """`baseline_cosine`: the query's mean cosine to every passage (None in lexical mode);
    `question_match`: the closest 相似问's cosine (0 in lexical mode); `not_covered_match`: the
    closest not-covered question's cosine (0 in lexical mode or without a list);
    `not_covered_words`: the words of the not-covered topics' names; `answered_match`: the closest
    section question's cosine (0 in lexical mode or without them); `named_topics`: how many
    not-covered topics the question names outright (a name no article uses, written out whole)."""
    if top is None or top_passage is None:
        return ConfidenceFeatures(*[0.0] * len(FEATURES))
    known = understood_or(known, query.read_as_known, specificity)
    haystack = passage_text(top_passage)
    word_cov, known_ratio, gram_cov, unknown = best_clause_coverage(query, haystack, known, specificity)
    top_article = article_of(top.passage_id)
    lex_articles = [article_of(p) for p, _ in lexical[:3]]
    sem_articles = [article_of(p) for p, _ in semantic[:3]]
    agreement = 0.5 * (top_article in lex_articles) + 0.5 * (top_article in sem_articles)
    lexical_top = lexical[0][1] if lexical else 0.0
    strength = math.log1p(lexical_top / max(1, len(query.terms.words) + len(query.terms.bigrams)))
    semantic_top = semantic[0][1] if semantic else 0.0
    rest = [score for _, score in semantic[1:]]
    margin = semantic_top - sum(rest) / len(rest) if rest else 0.0
    domain = min(1.0, len(query.domain_terms) / 2)
    near = [score for _, score in semantic[:DENSITY_NEIGHBOURS]]
    density = sum(near) / len(near) - baseline_cosine if near and baseline_cosine is not None else 0.0
    return ConfidenceFeatures(semantic_top, margin, word_cov, gram_cov, known_ratio, domain, agreement, strength, density,
                              question_match, unknown, unknown_share(query, known, specificity),
                              not_covered_match - semantic_top if not_covered_match > 0 else 0.0,
                              named_topic_share(query, known, specificity, not_covered_words, named_topics),
                              answered_match)


@dataclass
class ConfidenceModel:
    """Logistic model over ConfidenceFeatures, fitted on labelled queries (`kb calibrate`)."""

    weights: list[float] = field(default_factory=lambda: [4.0, 10.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 20.0, 0.0, -2.0, -2.0, -20.0,
                                                          -2.0, 0.0])
    bias: float = -8.0
    threshold: float = 0.5
    fitted_on: str = "defaults"

    def probability(self, features: ConfidenceFeatures) -> float:
        return self.probability_of(features.vector())

    def probability_of(self, vector: Sequence[float]) -> float:
        z = self.bias + sum(w * float(x) for w, x in zip(self.weights, vector, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), "weights": self.weights, "bias": self.bias,
                "threshold": self.threshold, "fitted_on": self.fitted_on}

    @classmethod
    def load(cls, path: Path, model_key: str) -> ConfidenceModel:
        """The model fitted for this embedder (cosines differ between embedders), else defaults."""
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8")).get(model_key)
        if not data or data.get("features") != list(FEATURES):
            return cls()
        return cls(data["weights"], data["bias"], data["threshold"], data.get("fitted_on", ""))
