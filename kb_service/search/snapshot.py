"""A loaded index generation (a snapshot) and the two retrievers over it.

A snapshot is immutable once loaded: `SearchEngine.reload()` builds a new one beside it and
swaps a reference. The lexical retriever scores the live rows of every segment with BM25F (or
asks the Whoosh backend); the semantic one scans the vector indexes, 相似问 vectors included.
"""

from __future__ import annotations

import functools
import gc
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kb_service.content.lexicon import Lexicon
from kb_service.index.lexical import LexicalRetriever
from kb_service.index.lexical.bm25f import SegmentView, search_segments
from kb_service.index.lexical.whoosh import LexicalIndex
from kb_service.index.records import ArticleRecord, Manifest
from kb_service.index.segments import Segment, load_segment
from kb_service.index.store import FORMAT, verify_generation
from kb_service.models import Passage, first_passages
from kb_service.query.analysis import QueryAnalyzer
from kb_service.query.spelling import HomophoneCorrector, sound_table
from kb_service.query.tokenizer import DomainTokenizer, QueryTerms
from kb_service.search.situations import SignalEntry, signal_index

LEXICON_WORD_COUNT = 10_000  # lexicon terms win a sound over any word merely frequent in the articles
WARM_UP_QUERY = "交强险理赔材料 lipei"


class IndexNotBuiltError(RuntimeError):
    """No usable generation: none built yet, an older layout, or built for another embedder."""


@dataclass
class Snapshot:
    generation: str
    manifest: Manifest
    segments: list[Segment]
    live: list[np.ndarray]  # per segment: rows whose article version is the live one
    passages: dict[str, Passage]
    articles: dict[str, ArticleRecord]
    analyzer: QueryAnalyzer
    vocabulary: frozenset[str]
    lexical: LexicalRetriever
    vector_mean: np.ndarray | None = None  # mean of the live passages' vectors: the query's baseline cosine
    question_mean: np.ndarray | None = None  # mean of the live 相似问 vectors: the same for question matches
    signals: list[SignalEntry] = field(default_factory=list)  # situations.signal_index of the live passages
    section_heads: dict[tuple[str, str], str] = field(default_factory=dict)  # section → its first live passage's id

    def article_of(self, passage_id: str) -> str:
        return self.passages[passage_id].article_id

    def sections(self) -> set[tuple[str, str]]:
        """(article id, heading) of every live passage."""
        return set(self.section_heads)

    def close(self) -> None:
        self.lexical.close()


def load_snapshot(generation: Path, lexicon: Lexicon, loaded: dict[str, Segment] | None = None,
                  backend: str = "sparse", intended_word_count: int = 20) -> Snapshot:
    """Open a generation; segments already in `loaded` (the serving snapshot's) are reused.

    The generation's files and those of every segment read from disk are checked against their
    checksums first: a damaged one raises IndexDamagedError, one line naming the file."""
    manifest = verify_generation(generation)
    if manifest.format != FORMAT:
        raise IndexNotBuiltError(f"index {generation.name} has an older layout: run `kb index --full`")
    index_dir = generation.parent
    tokenizer = DomainTokenizer(json.loads((generation / "tokenizer.json").read_text(encoding="utf-8")))
    loaded = loaded or {}
    checksums = manifest.segment_checksums
    segments = [loaded.get(sid) or load_segment(index_dir, sid, checksums.get(sid, ""), verify=True)
                for sid in manifest.segments]
    article_segments = {aid: entry.segment for aid, entry in manifest.articles.items()}
    live = [segment.live_rows(article_segments) for segment in segments]
    passages: dict[str, Passage] = {}
    articles: dict[str, ArticleRecord] = {}
    for segment, mask in zip(segments, live, strict=True):
        for row in np.flatnonzero(mask):
            passage = segment.passages[row]
            passages[passage.passage_id] = passage
        articles.update((aid, r) for aid, r in segment.articles.items() if article_segments.get(aid) == segment.segment_id)
    # Words of outdated rows stay in the typo vocabulary until the next merge: harmless, and it
    # keeps a reload from re-reading every live passage's words.
    lexicon_words = {w: LEXICON_WORD_COUNT for w in tokenizer.words}
    corrector = HomophoneCorrector.merged([*(s.sounds for s in segments), sound_table(lexicon_words)],
                                          [*(s.vocabulary for s in segments), lexicon_words],
                                          spelling_tables=[s.sounds for s in segments], fuzzy_words=lexicon_words)
    aliases = frozenset(alias for record in articles.values() for alias in record.aliases)
    analyzer = QueryAnalyzer(tokenizer, lexicon, corrector, aliases, intended_word_count)
    lexical: LexicalRetriever = SegmentsBM25F(segments, live)
    if backend == "whoosh":
        if not (generation / "lexical").exists():
            raise IndexNotBuiltError(f"index {generation.name} has no Whoosh index: run `kb index` with KB_LEXICAL_BACKEND=whoosh")
        lexical = LiveWhoosh(LexicalIndex.open(generation / "lexical"), passages)
    live_count = sum(int(np.count_nonzero(mask)) for mask in live)
    vector_mean = None
    if live_count:
        vector_mean = (sum(s.live_vector_sum(m) for s, m in zip(segments, live, strict=True)) / live_count).astype(np.float32)
    question_sums = [s.live_question_sum(m) for s, m in zip(segments, live, strict=True)]
    question_count = sum(n for _, n in question_sums)
    question_mean = None
    if question_count:
        question_mean = (sum(v for v, _ in question_sums) / question_count).astype(np.float32)
    return Snapshot(
        generation=generation.name,
        manifest=manifest,
        segments=segments,
        live=live,
        passages=passages,
        articles=articles,
        analyzer=analyzer,
        vocabulary=corrector.vocabulary,
        lexical=lexical,
        vector_mean=vector_mean,
        question_mean=question_mean,
        signals=signal_index(passages.values()),
        section_heads={key: p.passage_id for key, p in first_passages(passages.values()).items()},
    )


def lexical_search(snap: Snapshot, terms: QueryTerms, limit: int, category: str | None = None,
                   tags: list[str] | None = None) -> list[tuple[str, float]]:
    """(passage id, score) best first, from whichever lexical backend the snapshot has."""
    return snap.lexical.search(terms, limit, category, tags)


@dataclass(frozen=True)
class SegmentsBM25F:
    """The default lexical backend: BM25F over every segment's live (and filter-allowed) rows."""

    segments: list[Segment]
    live: list[np.ndarray]

    def search(self, terms: QueryTerms, limit: int, category: str | None = None,
               tags: Sequence[str] | None = None) -> list[tuple[str, float]]:
        views = []
        for segment, live in zip(self.segments, self.live, strict=True):
            allowed = None
            if category:
                allowed = segment.category_mask(category)
            for tag in tags or ():
                allowed = segment.tag_mask(tag) if allowed is None else allowed & segment.tag_mask(tag)
            views.append(SegmentView(segment.lexical, live, allowed))
        return [(self.segments[i].passages[row].passage_id, score)
                for i, row, score in search_segments(views, terms, limit)]

    def holding(self, grams: Sequence[str]) -> list[str]:
        """Live passages indexed with every one of these bigrams (the postings, intersected); every
        live passage when there are none (a phrase of stop characters only is not indexed)."""
        found: list[str] = []
        for segment, live in zip(self.segments, self.live, strict=True):
            postings = [segment.lexical.postings(f"b:{gram}") for gram in dict.fromkeys(grams)]
            if any(p is None for p in postings):
                continue
            rows = (functools.reduce(lambda a, b: np.intersect1d(a, b, assume_unique=True),
                                     sorted((p[0] for p in postings), key=len))  # type: ignore[index]
                    if postings else np.arange(len(segment.passages)))
            found.extend(segment.passages[row].passage_id for row in rows[live[rows]])
        return found

    def close(self) -> None:
        """Nothing to close: segments are in memory."""


@dataclass(frozen=True)
class LiveWhoosh:
    """The Whoosh backend, answering only with passages of live article versions."""

    index: LexicalIndex
    passages: dict[str, Passage]

    def search(self, terms: QueryTerms, limit: int, category: str | None = None,
               tags: Sequence[str] | None = None) -> list[tuple[str, float]]:
        return [(pid, s) for pid, s in self.index.search(terms, limit, category, tags) if pid in self.passages]

    def holding(self, grams: Sequence[str]) -> list[str]:
        """Every live passage: Whoosh's postings are not read here (its searches are slow anyway)."""
        return list(self.passages)

    def close(self) -> None:
        self.index.close()


QUESTIONS_PER_PASSAGE = 3  # 相似问 searched per wanted passage: the editors' guide asks for three


@dataclass
class SemanticMatches:
    ranked: list[tuple[str, float]]  # (passage id, score) best first: a passage or one of its 相似问
    question_match: float = 0.0  # the closest 相似问's own cosine


def semantic_search(snap: Snapshot, vector: np.ndarray, limit: int, category: str | None = None,
                    tags: list[str] | None = None, question_offset: float = 0.0) -> SemanticMatches:
    """Passages by cosine over every segment's vectors, skipping outdated rows.

    A passage ranks by its closest 相似问 when that beats its own text. Two questions of the same
    form (…保险赔吗) sit closer than a question and a passage do, so a question's cosine is first
    moved onto the passages' scale: minus how much closer the query sits to the average question
    than to the average passage, minus `question_offset`. The confidence model reads these
    ranked scores and the closest question's own cosine (held out on our set, that beat reading
    the passages' own cosines: README, "How the design was chosen")."""
    shift = question_offset
    if snap.question_mean is not None and snap.vector_mean is not None:
        shift += float(np.dot(vector, snap.question_mean) - np.dot(vector, snap.vector_mean))
    ranked: list[tuple[float, str]] = []
    asked = 0.0
    for segment, live in zip(snap.segments, snap.live, strict=True):
        dead = len(live) - int(np.count_nonzero(live))
        usable = live
        if category:
            usable = usable & segment.category_mask(category)
        for tag in tags or ():
            usable = usable & segment.tag_mask(tag)
        best = {row: score for row, score in segment.vectors.search(vector, min(limit + dead, len(live))) if usable[row]}
        if segment.questions is not None:
            dead_questions = int(segment.question_counts[~live].sum()) if dead else 0
            wanted = min(limit * QUESTIONS_PER_PASSAGE + dead_questions, segment.questions.size)
            for qid, score in segment.questions.search(vector, wanted):
                row = int(segment.question_rows[qid])
                if not usable[row]:
                    continue
                asked = max(asked, score)
                if score - shift > best.get(row, -1.0):
                    best[row] = score - shift
        ranked.extend((score, segment.passages[row].passage_id) for row, score in best.items())
    ranked.sort(key=lambda item: (-item[0], item[1]))
    return SemanticMatches([(pid, score) for score, pid in ranked[:limit]], asked)


def settle_heap() -> None:
    """Move the loaded index out of the garbage collector's sight.

    A snapshot is millions of long-lived objects; every full collection walked them all, which
    measured ~1 s of an edit's path at 100k passages and shows up as latency spikes in serving.
    Frozen objects are still freed by reference counting when a replaced snapshot is dropped.
    """
    gc.collect()
    gc.freeze()


def warm_snapshot(snapshot: Snapshot) -> None:
    """A new snapshot's lexical side warmed before it serves (the embedder is already warm)."""
    analyzed = snapshot.analyzer.analyze(WARM_UP_QUERY)
    lexical_search(snapshot, analyzed.terms, 5)


