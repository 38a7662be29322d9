"""The section questions (content/section_questions.py) embedded, and how close a query comes to them.

The confidence model's `question_match` reads the closest 相似问, which editors write as clean
questions; a pasted chat message or a dictated one sits far from all of them even when a section
answers it, and an out-of-scope question worded like a clean one sits near. The section
questions are written in the agents' styles, so the closest one's cosine (`answered_match`) says
how much the query looks like a question the knowledge base answers, in its own style. Held out
by style on the calibration pool it rejected more out-of-scope queries for fewer answerable ones
(docs/evaluation.md, "Eighteenth session").

Embedded like the not-covered list (the reading's first question, analysed; through the index's
embedding cache) and re-read when the file changes. Only rows whose section is in the serving
snapshot count: a removed section no longer answers its questions.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kb_service.content.section_questions import load_section_questions
from kb_service.index.embedding import Embedder
from kb_service.models import Hit, place_hit
from kb_service.search.not_covered import FileState, ReadQuestion, embed_cached, file_state


@dataclass(frozen=True)
class AnsweredIndex:
    """One embedded version of the file: row i asks `queries[i]`, answered by `sections[i]`."""

    queries: list[str] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)  # (article id, heading)
    vectors: np.ndarray | None = None
    state: FileState = None
    searched: dict[str, ReadQuestion] = field(default_factory=dict)  # question → how it was read
    _live: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)  # per generation

    def live_rows(self, generation: str, current: Callable[[], Collection[tuple[str, str]]]) -> np.ndarray:
        """Which rows name a section of this generation (`current` lists its sections; asked once)."""
        mask = self._live.get(generation)
        if mask is None:
            present = set(current())
            mask = np.array([section in present for section in self.sections], dtype=bool)
            self._live.clear()  # one generation serves at a time
            self._live[generation] = mask
        return mask

    def closest(self, vector: np.ndarray, live: np.ndarray,
                allowed: Callable[[tuple[str, str]], bool] = lambda _: True) -> tuple[float, tuple[str, str] | None]:
        """From one product with the stored vectors: the cosine of the closest live question (0
        without any), and the section of the closest live question `allowed` (a filter) accepts."""
        if self.vectors is None or not len(self.queries) or not live.any():
            return 0.0, None
        scores = np.where(live, self.vectors @ vector, -np.inf)
        best = int(np.argmax(scores))
        if allowed(self.sections[best]):  # the usual case: no filter, or the closest passes it
            return float(scores[best]), self.sections[best]
        for row in np.argsort(-scores, kind="stable")[1:]:
            if not live[row]:
                break
            if allowed(self.sections[row]):
                return float(scores[best]), self.sections[row]
        return float(scores[best]), None


def with_answered_section(hits: list[Hit], section: Hit, slot: int, k: int) -> list[Hit]:
    """`section` at `slot` (1-based) unless its article is among the hits above that slot; its
    article's other hit goes. A list shorter than the slot gets it last."""
    if any(hit.article_id == section.article_id for hit in hits[: slot - 1]):
        return hits
    return place_hit(hits, section, slot, k)


def embed_section_questions(path: Path, read: Callable[[str], ReadQuestion], embedder: Embedder,
                            cache_path: Path | None) -> AnsweredIndex:
    """Read the file and embed each question as the engine would embed it as a query."""
    state = file_state(path)
    rows = load_section_questions(path).rows
    if not rows:
        return AnsweredIndex(state=state)
    searched = {text: read(text) for text in dict.fromkeys(row.query for row in rows)}
    vectors = embed_cached([searched[row.query][0] for row in rows], embedder, cache_path)
    return AnsweredIndex([row.query for row in rows], [row.section for row in rows], vectors, state, searched)
