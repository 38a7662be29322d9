"""The greedy step of gap topics: each phrasing group joins the best-scoring topic or starts one.

Split from gap_topics.py so the inner loop is array work. A group's score for a topic mixes the
re-scaled cosine of its vector to the topic's centroid with the cosine of its word vector to the
topic's summed word vector. The word part was a Python dot product per (group, candidate topic),
~250k of them for the gap texts of a million-query log; here the topics' word sums are rows of a
matrix over the words at least two groups share (a word only one group has meets no topic before
that group joins one), so a group's word cosines to all its candidate topics are one small gather
and product (1.0 s -> 0.8 s for the whole assignment at 1M, the same topics). Norms count every word.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

import numpy as np


class AssignOptions(Protocol):
    join: float  # mixed score needed to join a topic
    semantic_only: float  # re-scaled cosine that joins without a shared content word
    semantic_weight: float


class _WordSums:
    """Per topic: the weighted sum of its members' word vectors over the shared words, and its norm."""

    def __init__(self, lex: Sequence[dict[str, float]]) -> None:
        seen: dict[str, int] = {}
        for words in lex:
            for w in words:
                seen[w] = seen.get(w, 0) + 1
        self.column = {w: c for c, w in enumerate(w for w, n in seen.items() if n > 1)}
        self.items = [self._columns(words) for words in lex]
        self.sums = np.zeros((16, max(len(self.column), 1)), dtype=np.float64)
        self.norms_sq = np.zeros(16, dtype=np.float64)
        self.divisors = np.ones(16, dtype=np.float64)  # the norms, 1 where a topic has no words yet

    def _columns(self, words: dict[str, float]) -> tuple[np.ndarray, np.ndarray, float]:
        """(columns of the shared words, their values, squared mass of the words no one else has)."""
        shared = [(self.column[w], v) for w, v in words.items() if w in self.column]
        own = sum(v * v for w, v in words.items() if w not in self.column)
        return (np.array([c for c, _ in shared], dtype=np.int64), np.array([v for _, v in shared], dtype=np.float64), own)

    def new_topic(self, k: int) -> None:
        if k == len(self.norms_sq):
            self.sums = np.vstack([self.sums, np.zeros_like(self.sums)])
            self.norms_sq = np.concatenate([self.norms_sq, np.zeros_like(self.norms_sq)])
            self.divisors = np.concatenate([self.divisors, np.ones_like(self.divisors)])

    def add(self, k: int, i: int, weight: float) -> None:
        columns, values, own = self.items[i]
        before = self.sums[k, columns]
        after = before + values * weight
        self.sums[k, columns] = after
        # |s + w·x|²: the shared words as they change; the group's own words are new to every topic.
        self.norms_sq[k] += float(np.dot(after, after) - np.dot(before, before)) + own * weight * weight
        norm = float(np.sqrt(max(self.norms_sq[k], 0.0)))
        self.divisors[k] = norm if norm > 0 else 1.0

    def cosines(self, i: int, topics: np.ndarray) -> np.ndarray:
        columns, values, _ = self.items[i]
        if not len(columns):
            return np.zeros(len(topics))
        return (self.sums[topics[:, None], columns] @ values) / self.divisors[topics]


def assign_topics(weights: Sequence[int], vectors: np.ndarray, lex: Sequence[dict[str, float]], base: float,
                  o: AssignOptions, generic_words: Collection[str]) -> list[list[int]]:
    """Greedy, heaviest first: each group joins the best-scoring topic at or above o.join (ties: the
    lowest topic number), else starts one. Candidates: topics sharing a non-generic word with the
    group, and topics whose centroid is at o.semantic_only (re-scaled cosine) or closer."""
    order = sorted(range(len(weights)), key=lambda i: -weights[i])
    members: list[list[int]] = []
    sums = np.zeros(vectors.shape, dtype=np.float32)  # one row per topic, at most one per group
    units = np.zeros(vectors.shape, dtype=np.float32)
    words = _WordSums(lex)
    by_word: dict[str, set[int]] = {}  # shared word → topics holding it
    lexical_weight = 1 - o.semantic_weight
    for i in order:
        best = None
        if members:
            cos = units[: len(members)] @ vectors[i]
            semantic = np.maximum(0.0, (cos - base) / (1.0 - base))
            candidates = {k for w in lex[i] if w not in generic_words for k in by_word.get(w, ())}
            candidates.update(np.flatnonzero(semantic >= o.semantic_only).tolist())
            if candidates:
                topics = np.array(sorted(candidates), dtype=np.int64)
                scores = o.semantic_weight * semantic[topics] + lexical_weight * words.cosines(i, topics)
                top = int(np.argmax(scores))  # the first maximum: the lowest topic number among ties
                if scores[top] >= o.join:
                    best = int(topics[top])
        if best is None:
            best = len(members)
            members.append([])
            words.new_topic(best)
        members[best].append(i)
        sums[best] += vectors[i] * weights[i]
        units[best] = sums[best] / max(float(np.linalg.norm(sums[best])), 1e-12)
        words.add(best, i, float(weights[i]))
        for w in lex[i]:
            if w in words.column:
                by_word.setdefault(w, set()).add(best)
    return members
