"""Why each hit ranks where it does (`kb explain "查询"`).

For an editor wondering why a query finds the wrong section, or an analyst checking a gap, the
answer is in the parts the ranking adds up: how the query was read (cleaned text, questions,
corrections and synonyms, a chat signal's section, the section a section question put in its slot), each hit's lexical and semantic share of the fused score, whether a
相似问 carried its semantic score, how much of the query the passage covers, and each confidence
feature's contribution to the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kb_service.search.confidence import FEATURES
from kb_service.search.engine import SearchEngine
from kb_service.search.passages import coverage_scorer


@dataclass
class HitExplanation:
    rank: int
    article_id: str
    heading: str
    fused: float
    lexical_rank: int | None
    lexical_score: float
    semantic_rank: int | None
    semantic_score: float
    coverage: float
    closest_question: str | None = None  # the passage's 相似问 nearest the query
    closest_question_cosine: float = 0.0


@dataclass
class QuestionExplanation:
    question: str
    corrected: str
    additions: list[str]
    hits: list[HitExplanation]
    confident: bool
    probability: float
    threshold: float
    contributions: dict[str, tuple[float, float]] = field(default_factory=dict)  # feature: (value, weight × value)


def explain(engine: SearchEngine, query: str, k: int = 5, mode: str = "hybrid") -> tuple[dict, list[QuestionExplanation]]:
    """(how the query was read, one explanation per question searched)."""
    response = engine.search(query, k=k, mode=mode, truncate=len(query.strip()) > engine.settings.max_query_chars)
    reading = response.reading.to_dict()  # type: ignore[union-attr]
    rank, hit = next(((rank, h) for rank, h in enumerate(response.hits, start=1) if h.signal), (0, None))
    reading["signalled"] = f"#{rank} {hit.article_id} › {hit.heading} (「{hit.signal}」)" if hit else None
    rank, hit = next(((rank, h) for rank, h in enumerate(response.hits, start=1) if h.via_section_question), (0, None))
    reading["section_question"] = f"#{rank} {hit.article_id} › {hit.heading}" if hit else None
    snap = engine._snapshot  # noqa: SLF001 - an explanation reads the same snapshot the search used
    model = engine.confidence[mode]
    explained = []
    for question in response.reading.questions:  # type: ignore[union-attr]
        analyzed = snap.analyzer.analyze(question)
        vector = None if mode == "lexical" else np.asarray(engine.embedder.encode([analyzed.semantic_text])[0])
        ranked = engine._rank(snap, analyzed, vector, k, None, None, mode)  # noqa: SLF001
        coverage = coverage_scorer(analyzed, snap.analyzer.tokenizer.specificity)
        hits = []
        for rank, candidate in enumerate(ranked.grouped, start=1):
            passage = snap.passages[candidate.passage_id]
            hit = HitExplanation(rank, passage.article_id, passage.heading, round(candidate.score, 4),
                                 candidate.lexical_rank, round(candidate.lexical_score, 3), candidate.semantic_rank,
                                 round(candidate.semantic_score, 4), round(coverage(passage), 3))
            if vector is not None and passage.questions:
                cosines = np.asarray(engine.embedder.encode(list(passage.questions))) @ vector
                best = int(np.argmax(cosines))
                hit.closest_question, hit.closest_question_cosine = passage.questions[best], round(float(cosines[best]), 4)
            hits.append(hit)
        values = ranked.features.vector()
        probability = model.probability_of(values)
        contributions = {name: (round(v, 4), round(w * v, 3)) for name, v, w in zip(FEATURES, values, model.weights, strict=True)}
        explained.append(QuestionExplanation(question, analyzed.corrected, list(analyzed.additions), hits,
                                             bool(hits) and probability >= model.threshold, round(probability, 4),
                                             round(model.threshold, 4), contributions))
    return reading, explained


def render(reading: dict, questions: list[QuestionExplanation], bias: float) -> str:
    """Plain text for the terminal."""
    lines = [f"read as: {' / '.join(reading['questions'])}"
             + (" (traditional → simplified)" if reading["converted"] else "")
             + (f"; removed {', '.join(reading['personal_data'])}" if reading["personal_data"] else "")]
    if reading.get("signalled"):
        lines.append(f"chat signal, shown at {reading['signalled']}")
    if reading.get("section_question"):
        lines.append(f"nearest section question's section (articles/section-questions.jsonl), shown at {reading['section_question']}")
    for q in questions:
        lines.append(f"\n「{q.question}」 analysed as 「{q.corrected}」" + (f" + {', '.join(q.additions)}" if q.additions else ""))
        for h in q.hits:
            lex = f"lexical #{h.lexical_rank} ({h.lexical_score})" if h.lexical_rank else "lexical —"
            sem = f"semantic #{h.semantic_rank} ({h.semantic_score})" if h.semantic_rank else "semantic —"
            asked = f"; closest 相似问 「{h.closest_question}」 {h.closest_question_cosine}" if h.closest_question else ""
            lines.append(f"  {h.rank}. {h.article_id} › {h.heading}: fused {h.fused} = {lex} + {sem}; "
                         f"coverage {h.coverage}{asked}")
        verdict = "confident" if q.confident else "NOT confident"
        lines.append(f"  confidence {q.probability} vs threshold {q.threshold}: {verdict}; bias {bias:.3f}, features:")
        for name, (value, part) in q.contributions.items():
            lines.append(f"    {name:18s} {value:>8} → {part:+.3f}")
    return "\n".join(lines)
