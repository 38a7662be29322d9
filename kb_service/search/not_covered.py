"""The not-covered questions (content/not_covered.py) embedded, and how close a query comes to them.

The questions are embedded the way a query is (the reading's first question, analysed), so a
query and a listed question are compared like for like. Vectors come from the index's embedding
cache when it has them: the list is re-read whenever its file changes (checked at most once a
second by the engine), and an edit re-embeds only the questions it adds.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kb_service.content.not_covered import load_not_covered
from kb_service.index.embedding import Embedder
from kb_service.index.embedding_cache import EmbeddingCache

log = logging.getLogger(__name__)

FileState = tuple[int, int] | None  # (mtime_ns, size) of the list's file; None when it is absent


def file_state(path: Path) -> FileState:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@dataclass(frozen=True)
class NotCoveredIndex:
    """One embedded version of the list: row i is `topics[i]`'s question `questions[i]`."""

    topics: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    state: FileState = None
    searched: dict[str, str] = field(default_factory=dict)  # question → the text embedded for it

    def nearest(self, vector: np.ndarray) -> tuple[float, str | None]:
        """Cosine of the closest listed question and its topic; (0, None) for an empty list."""
        if self.vectors is None or not len(self.questions):
            return 0.0, None
        scores = self.vectors @ vector
        best = int(np.argmax(scores))
        return float(scores[best]), self.topics[best]


def embed_not_covered(path: Path, searched_text: Callable[[str], str], embedder: Embedder,
                      cache_path: Path | None) -> NotCoveredIndex:
    """Read the list and embed each question as the engine would embed it as a query.

    `searched_text` maps a question to the text the engine embeds for it. A list with problems
    keeps its valid topics (`kb check` reports the rest); a cache that cannot be opened is skipped."""
    state = file_state(path)
    listed = load_not_covered(path)
    pairs = listed.questions()
    if not pairs:
        return NotCoveredIndex(state=state)
    searched = {question: searched_text(question) for _, question in pairs}
    texts = [searched[question] for _, question in pairs]
    vectors = None
    if cache_path is not None:
        try:
            cache = EmbeddingCache(cache_path)
            try:
                vectors, _ = cache.embed(texts, embedder)
            finally:
                cache.close()
        except (OSError, sqlite3.Error):
            log.warning("embedding cache %s unusable; embedding the not-covered list directly", cache_path)
    if vectors is None:
        vectors = embedder.encode(texts)
    return NotCoveredIndex([t for t, _ in pairs], [q for _, q in pairs], np.asarray(vectors, dtype=np.float32), state,
                           searched)
