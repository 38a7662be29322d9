"""The search engine: one loaded index generation (a snapshot) plus the embedder.

`reload()` builds a new snapshot beside the serving one and swaps a single reference, so a
search in flight finishes on the snapshot it started with and none fails during a reload.
"""

from __future__ import annotations

import gc
import json
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kb_service.content.lexicon import Lexicon, load_lexicon_or_empty
from kb_service.index.embedding import Embedder, load_embedder, model_key
from kb_service.index.integrity import IndexDamagedError  # noqa: F401  (re-exported: what a damaged index raises)
from kb_service.index.lexical.bm25f import SegmentView, search_segments
from kb_service.index.lexical.whoosh import LexicalIndex
from kb_service.index.records import ArticleRecord, Manifest
from kb_service.index.segments import Segment, load_segment
from kb_service.index.store import FORMAT, current_generation, verify_generation
from kb_service.models import Article, Hit, Passage, QuestionAnswer, SearchResponse, merge_hits
from kb_service.query.reading import read_query
from kb_service.query.spelling import HomophoneCorrector, sound_table
from kb_service.query.tokenizer import DomainTokenizer
from kb_service.search.confidence import ConfidenceFeatures, ConfidenceModel, confidence_features
from kb_service.search.ranking import (
    AnalyzedQuery,
    Candidate,
    QueryAnalyzer,
    best_passages,
    coverage_scorer,
    group_by_article,
    highlight_terms,
    reciprocal_rank_fusion,
    weighted_score_fusion,
)
from kb_service.settings import Settings

LEXICON_WORD_COUNT = 10_000  # lexicon terms win a sound over any word merely frequent in the articles


class QueryError(ValueError):
    """The query cannot be searched (empty, too long); the message is shown to the agent."""


class IndexNotBuiltError(RuntimeError):
    pass


@dataclass
class Snapshot:
    generation: str
    manifest: Manifest
    segments: list[Segment]
    live: list[np.ndarray]  # per segment: rows whose article version is the live one
    passages: dict[str, Passage]
    articles: dict[str, dict]
    analyzer: QueryAnalyzer
    vocabulary: frozenset[str]
    whoosh: LexicalIndex | None = None
    vector_mean: np.ndarray | None = None  # mean of the live passages' vectors: the query's baseline cosine
    question_mean: np.ndarray | None = None  # mean of the live 相似问 vectors: the same for question matches

    def article_of(self, passage_id: str) -> str:
        return self.passages[passage_id].article_id

    def close(self) -> None:
        if self.whoosh is not None:
            self.whoosh.close()


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
    whoosh = None
    if backend == "whoosh":
        if not (generation / "lexical").exists():
            raise IndexNotBuiltError(f"index {generation.name} has no Whoosh index: run `kb index` with KB_LEXICAL_BACKEND=whoosh")
        whoosh = LexicalIndex.open(generation / "lexical")
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
        whoosh=whoosh,
        vector_mean=vector_mean,
        question_mean=question_mean,
    )


def lexical_search(snap: Snapshot, terms, limit: int, category: str | None = None,  # type: ignore[no-untyped-def]
                   tags: list[str] | None = None) -> list[tuple[str, float]]:
    """(passage id, score) best first, from whichever lexical backend the snapshot has."""
    if snap.whoosh is not None:
        return [(pid, s) for pid, s in snap.whoosh.search(terms, limit, category, tags) if pid in snap.passages]
    views = []
    for segment, live in zip(snap.segments, snap.live, strict=True):
        allowed = None
        if category:
            allowed = segment.category_mask(category)
        for tag in tags or ():
            allowed = segment.tag_mask(tag) if allowed is None else allowed & segment.tag_mask(tag)
        views.append(SegmentView(segment.lexical, live, allowed))
    return [(snap.segments[i].passages[row].passage_id, score) for i, row, score in search_segments(views, terms, limit)]


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


@dataclass
class Ranked:
    """One question's ranked results over one filter, and the features the confidence model reads."""

    grouped: list[Candidate]
    top: Candidate | None
    features: ConfidenceFeatures


def _settle_heap() -> None:
    """Move the loaded index out of the garbage collector's sight.

    A snapshot is millions of long-lived objects; every full collection walked them all, which
    measured ~1 s of an edit's path at 100k passages and shows up as latency spikes in serving.
    Frozen objects are still freed by reference counting when a replaced snapshot is dropped.
    """
    gc.collect()
    gc.freeze()


WARM_UP_QUERY = "交强险理赔材料 lipei"


def warm_snapshot(snapshot: Snapshot) -> None:
    """A new snapshot's lexical side warmed before it serves (the embedder is already warm)."""
    analyzed = snapshot.analyzer.analyze(WARM_UP_QUERY)
    lexical_search(snapshot, analyzed.terms, 5)


class SearchEngine:
    def __init__(self, settings: Settings, snapshot: Snapshot, embedder: Embedder, confidence: dict[str, ConfidenceModel]) -> None:
        self.settings = settings
        self._snapshot = snapshot
        self._embedder = embedder
        self.confidence = confidence  # per mode: lexical / semantic / hybrid
        self._reload_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> SearchEngine:
        generation = current_generation(Path(settings.index_dir))
        if generation is None:
            raise IndexNotBuiltError(f"no index in {settings.index_dir}: run `kb index` first")
        snapshot = load_snapshot(generation, cls._lexicon(settings), backend=settings.lexical_backend,
                                 intended_word_count=settings.intended_word_count)
        if embedder is None:
            embedder = load_embedder(settings.embedding_model, settings.embedding_runtime,
                                     Path(settings.index_dir) / "models", settings.threads)
        key = model_key(settings.embedding_model, settings.embedding_runtime)
        if snapshot.manifest.signature["embedding_model"] != key:
            raise IndexNotBuiltError(
                f"index was built with {snapshot.manifest.signature['embedding_model']}, settings ask for {key}: run `kb index`"
            )
        confidence = {mode: ConfidenceModel.load(Path(settings.confidence_path), f"{key}/{mode}")
                      for mode in ("lexical", "semantic", "hybrid")}
        engine = cls(settings, snapshot, embedder, confidence)
        _settle_heap()
        engine.warm_up()
        return engine

    def warm_up(self) -> None:
        """One unlogged search: loads jieba's dictionary, the pinyin syllables, the ONNX session and
        Whoosh (seconds), which must not land on the first agent, nor after a worker restart."""
        self.search(WARM_UP_QUERY, k=1)

    @staticmethod
    def _lexicon(settings: Settings) -> Lexicon:
        return load_lexicon_or_empty(settings.lexicon_path)

    # ------------------------------------------------------------ serving

    def reload(self) -> bool:
        """Swap to the newest complete generation; False when it is already serving."""
        with self._reload_lock:
            generation = current_generation(Path(self.settings.index_dir))
            if generation is None or generation.name == self._snapshot.generation:
                return False
            loaded = {segment.segment_id: segment for segment in self._snapshot.segments}
            snapshot = load_snapshot(generation, self._lexicon(self.settings), loaded, self.settings.lexical_backend,
                                     self.settings.intended_word_count)
            warm_snapshot(snapshot)  # pay jieba's start-up (and Whoosh's) before agents see the new snapshot
            old, self._snapshot = self._snapshot, snapshot
            _settle_heap()
            # Searches already running finish on the old snapshot; close its files once they are done.
            timer = threading.Timer(self.settings.snapshot_grace_seconds, old.close)
            timer.daemon = True
            timer.start()
            return True

    @property
    def embedder(self) -> Embedder:
        """The loaded query embedder; an index update in this process can reuse it."""
        return self._embedder

    def info(self) -> dict:
        snap = self._snapshot
        return {
            "index_version": snap.generation,
            "built_at": snap.manifest.built_at,
            "articles": len(snap.articles),
            "passages": len(snap.passages),
            "model": snap.manifest.embedding_model,
            "max_query_chars": self.settings.max_query_chars,
        }

    def article(self, article_id: str) -> Article | None:
        record = self._snapshot.articles.get(article_id)
        if record is None:
            return None
        return record.to_article(Path(self.settings.articles_dir))

    def passages_of(self, article_id: str) -> list[Passage]:
        return [p for p in self._snapshot.passages.values() if p.article_id == article_id]

    def passages(self) -> list[Passage]:
        return list(self._snapshot.passages.values())

    def validate_query(self, query: str, truncate: bool = False) -> str:
        """The query's text, or a QueryError an agent can act on. `truncate`: a text over the limit
        is read from its start instead of refused (the panel asks for that and says so)."""
        text = (query or "").strip()
        if not text:
            raise QueryError("查询内容为空：请输入要搜索的问题")
        if len(text) > self.settings.max_query_chars and not truncate:
            raise QueryError(f"查询过长：最多 {self.settings.max_query_chars} 个字，当前 {len(text)} 个字")
        return text

    def search(
        self,
        query: str,
        k: int | None = None,
        category: str | None = None,
        tags: list[str] | None = None,
        mode: str = "hybrid",
        truncate: bool = False,
    ) -> SearchResponse:
        """Read the query (query_reading), search each question it asks, and merge.

        The response's hits put the first question's results first and then the best of each
        further question; its confidence is the first question's. With a category or tag filter a
        question is confident only if the whole knowledge base's best answer passes the filter:
        otherwise the filtered list is a runner-up, however well it matches."""
        if mode not in ("hybrid", "lexical", "semantic"):
            raise QueryError(f"unknown search mode {mode!r}")
        text = self.validate_query(query, truncate)
        k = k or self.settings.top_k
        snap = self._snapshot  # one snapshot for the whole request
        reading = read_query(text, self.settings.max_query_chars)
        if truncate or reading.truncated:  # the caller cut a longer text: its first question only
            reading = replace(reading, questions=reading.questions[:1], truncated=True)
        answers = [self._answer(snap, question, k, category, tags, mode) for question in reading.questions]
        first = answers[0]
        response = SearchResponse(query=text, confident=first.confident, hits=merge_hits(answers, k),
                                  confidence=first.confidence, reading=reading,
                                  questions=answers if len(answers) > 1 else [], outside_filter=first.outside_filter)
        response.features = first.features  # type: ignore[attr-defined]  # for calibration and eval
        return response

    def _answer(self, snap: Snapshot, question: str, k: int, category: str | None, tags: list[str] | None,
                mode: str) -> QuestionAnswer:
        analyzed = snap.analyzer.analyze(question)
        vector = None
        if mode != "lexical":
            vector = np.asarray(self._embedder.encode([analyzed.semantic_text])[0])
        ranked = self._rank(snap, analyzed, vector, k, category, tags, mode)
        model = self.confidence[mode]
        probability = model.probability(ranked.features)
        confident = bool(ranked.top) and probability >= model.threshold
        outside = None
        if confident and (category or tags):
            best = self._rank(snap, analyzed, vector, 1, None, None, mode).top
            if best is not None and ranked.top is not None and \
                    snap.article_of(best.passage_id) != snap.article_of(ranked.top.passage_id):
                confident, outside = False, snap.passages[best.passage_id].category
        hits = [self._hit(snap, c, analyzed) for c in ranked.grouped]
        return QuestionAnswer(question, hits, confident, probability, ranked.features, outside)

    def _rank(self, snap: Snapshot, analyzed: AnalyzedQuery, vector: np.ndarray | None, k: int,
              category: str | None, tags: list[str] | None, mode: str) -> Ranked:
        n = self.settings.candidates
        lexical = lexical_search(snap, analyzed.terms, n, category, tags) if mode != "semantic" else []
        semantic: list[tuple[str, float]] = []
        matches = SemanticMatches([])
        baseline: float | None = None
        if vector is not None:
            matches = semantic_search(snap, vector, n if not (category or tags) else n * 8, category, tags,
                                      self.settings.question_offset)
            semantic = matches.ranked[:n]
            if snap.vector_mean is not None:
                baseline = float(np.dot(vector, snap.vector_mean))
        if self.settings.fusion == "weighted":
            fused = weighted_score_fusion(lexical, semantic, self.settings.lexical_weight, self.settings.semantic_weight,
                                          baseline)
        else:
            fused = reciprocal_rank_fusion(lexical, semantic, self.settings.rrf_k, self.settings.lexical_weight,
                                           self.settings.semantic_weight)
        grouped = group_by_article(fused, snap.article_of, k)
        specificity = snap.analyzer.tokenizer.specificity
        if self.settings.passage_coverage_weight > 0:
            coverage = coverage_scorer(analyzed, specificity)
            grouped = best_passages(
                grouped, fused, snap.article_of,
                lambda pid: coverage(snap.passages[pid]),
                self.settings.passage_coverage_weight,
            )
        top: Candidate | None = grouped[0] if grouped else None
        features = confidence_features(
            analyzed, top, snap.passages[top.passage_id] if top else None, semantic, lexical,
            snap.article_of, lambda w: w in snap.vocabulary, specificity, baseline, matches.question_match,
        )
        return Ranked(grouped, top, features)

    def _hit(self, snap: Snapshot, candidate: Candidate, analyzed) -> Hit:  # type: ignore[no-untyped-def]
        passage = snap.passages[candidate.passage_id]
        return Hit(
            article_id=passage.article_id,
            title=passage.title,
            heading=passage.heading,
            text=passage.text,
            score=round(candidate.score, 6),
            category=passage.category,
            version=passage.version,
            highlights=highlight_terms(analyzed, passage.text),
            passage_id=passage.passage_id,
            scripts=list(passage.scripts),
        )

    def close(self) -> None:
        self._snapshot.close()
