"""BM25F over column-compressed term weights in memory: the lexical scorer that serves queries.

Whoosh scores in pure Python, one posting at a time; an agent's query expands to ~40 words and
bigrams over four fields, and at 10k passages that measured p50 65 ms / p95 195 ms per query
(scripts/bench_search.py). Here each (passage, term) weight is computed once at index time and a
query is a handful of numpy gathers. The analyzers are the same ones Whoosh uses (jieba words on
the domain tokenizer, CJK bigrams), so the two backends see identical terms.

The weight is BM25F (Robertson & Zaragoza): per term, field frequencies are length-normalised,
boosted and summed into one pseudo-frequency that saturates once, so a word in the title and the
body is not counted as two independent matches. Average field lengths are frozen at the last full
build and reused by incremental segments (an edit moves them by nothing measurable); document
frequencies are counted over live passages at query time, so deletions never skew idf.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb_service.models import Passage
from kb_service.query.tokenizer import (
    TEXT_FIELDS,
    DomainTokenizer,
    QueryTerms,
    bigrams,
    passage_fields,
    words,
)

VIEWS = ("w", "b")  # jieba words, character bigrams: term keys are "w:理赔", "b:理赔"


@dataclass(frozen=True)
class AnalyzedPassage:
    """Term frequencies per field and view, and the field lengths in tokens."""

    frequencies: dict[str, Counter[str]]  # "title_w" → Counter
    lengths: dict[str, int]


def analyze_passage(passage: Passage, tokenizer: DomainTokenizer) -> AnalyzedPassage:
    frequencies: dict[str, Counter[str]] = {}
    lengths: dict[str, int] = {}
    for name, value in passage_fields(passage).items():
        for view, tokens in (("w", words(value, tokenizer)), ("b", bigrams(value))):
            # Interned: 100k passages repeat the same few hundred thousand terms, one copy each.
            frequencies[f"{name}_{view}"] = Counter(map(sys.intern, tokens))
            lengths[f"{name}_{view}"] = len(tokens)
    return AnalyzedPassage(frequencies, lengths)


def average_lengths(analyzed: Sequence[AnalyzedPassage]) -> dict[str, float]:
    keys = [f"{name}_{view}" for name in TEXT_FIELDS for view in VIEWS]
    count = max(len(analyzed), 1)
    return {key: sum(a.lengths[key] for a in analyzed) / count for key in keys}


@dataclass(frozen=True)
class BM25FParams:
    k1: float = 1.2
    b: float = 0.75
    boosts: tuple[tuple[str, float], ...] = tuple(TEXT_FIELDS.items())


class LexicalSegment:
    """Term weights of one index segment, column-compressed: term → (rows, weights)."""

    def __init__(self, terms: Sequence[str], indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_docs: int) -> None:
        self.columns = {term: j for j, term in enumerate(terms)}
        self.indptr = indptr
        self.indices = indices
        self.data = data
        self.n_docs = n_docs

    @classmethod
    def build(cls, analyzed: Sequence[AnalyzedPassage], avg_lengths: dict[str, float], params: BM25FParams) -> LexicalSegment:
        columns: dict[str, int] = {}
        # Packed C arrays, not lists: 100k passages make ~30M (row, term, weight) entries, and as
        # Python ints and floats those took gigabytes during a build.
        rows, cols, values = array("i"), array("q"), array("f")
        for row, passage in enumerate(analyzed):
            for view in VIEWS:
                pseudo: dict[str, float] = {}
                for name, boost in params.boosts:
                    key = f"{name}_{view}"
                    norm = 1.0 - params.b + params.b * passage.lengths[key] / (avg_lengths.get(key) or 1.0)
                    for term, tf in passage.frequencies[key].items():
                        pseudo[term] = pseudo.get(term, 0.0) + boost * tf / norm
                for term, tf in pseudo.items():
                    rows.append(row)
                    cols.append(columns.setdefault(f"{view}:{term}", len(columns)))
                    values.append(tf * (params.k1 + 1.0) / (tf + params.k1))
        col_array = np.frombuffer(cols, dtype=np.int64)
        order = np.argsort(col_array, kind="stable")
        indptr = np.zeros(len(columns) + 1, dtype=np.int64)
        np.cumsum(np.bincount(col_array, minlength=len(columns)), out=indptr[1:])
        return cls(list(columns), indptr, np.frombuffer(rows, dtype=np.int32)[order],
                   np.frombuffer(values, dtype=np.float32)[order], len(analyzed))

    def postings(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        j = self.columns.get(key)
        if j is None:
            return None
        start, end = self.indptr[j], self.indptr[j + 1]
        return self.indices[start:end], self.data[start:end]

    def save(self, path: Path) -> None:
        with open(path, "wb") as fh:  # a file object: np.savez would otherwise append ".npz"
            np.savez(fh, terms=np.array(list(self.columns), dtype=str), indptr=self.indptr, indices=self.indices,
                     data=self.data, n_docs=np.array([self.n_docs]))

    @classmethod
    def load(cls, path: Path) -> LexicalSegment:
        with np.load(path) as arrays:
            return cls(arrays["terms"].tolist(), arrays["indptr"], arrays["indices"], arrays["data"], int(arrays["n_docs"][0]))


@dataclass
class SegmentView:
    """One segment as a query sees it: which rows are live, which pass the filters."""

    lexical: LexicalSegment
    live: np.ndarray  # bool per row
    allowed: np.ndarray | None = None  # bool per row, None = no filter


def idf(n_docs: int, df: int) -> float:
    """BM25's idf with Lucene's +1, so that a term in most passages never scores negative."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def search_segments(views: Sequence[SegmentView], terms: QueryTerms, limit: int) -> list[tuple[int, int, float]]:
    """Top (segment index, row, score) over live, allowed rows, best first."""
    weighted: list[tuple[str, float]] = [(f"w:{t}", w) for t, w in terms.words] + [(f"b:{t}", w) for t, w in terms.bigrams]
    gathered: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in views]
    df: dict[str, int] = dict.fromkeys((key for key, _ in weighted), 0)
    per_key: list[tuple[str, int, np.ndarray, np.ndarray, float]] = []
    for i, view in enumerate(views):
        for key, weight in weighted:
            found = view.lexical.postings(key)
            if found is None:
                continue
            rows, values = found
            live = view.live[rows]
            df[key] += int(np.count_nonzero(live))
            per_key.append((key, i, rows, values, weight))
    n_docs = sum(int(np.count_nonzero(v.live)) for v in views)
    for key, i, rows, values, weight in per_key:
        gathered[i].append((rows, values, weight * idf(n_docs, df[key])))
    best: list[tuple[float, int, int]] = []
    for i, parts in enumerate(gathered):
        if not parts:
            continue
        view = views[i]
        rows = np.concatenate([r for r, _, _ in parts])
        values = np.concatenate([v * np.float32(w) for _, v, w in parts])
        scores = np.bincount(rows, weights=values, minlength=view.lexical.n_docs)
        usable = view.live if view.allowed is None else view.live & view.allowed
        scores[~usable] = 0.0
        hit_rows = np.flatnonzero(scores > 0)
        if len(hit_rows) > limit:
            hit_rows = hit_rows[np.argpartition(-scores[hit_rows], limit - 1)[:limit]]
        best.extend((float(scores[r]), i, int(r)) for r in hit_rows)
    best.sort(key=lambda item: (-item[0], item[1], item[2]))
    return [(i, row, score) for score, i, row in best[:limit]]


def word_document_counts(analyzed: Iterable[AnalyzedPassage]) -> Counter[str]:
    """Passages per jieba word, over all fields: the knowledge base's own vocabulary."""
    counts: Counter[str] = Counter()
    for passage in analyzed:
        seen: set[str] = set()
        for name in TEXT_FIELDS:
            seen.update(passage.frequencies[f"{name}_w"])
        counts.update(seen)
    return counts
