"""The search engine: one loaded index generation (a snapshot) plus the embedder.

`reload()` builds a new snapshot beside the serving one and swaps a single reference, so a
search in flight finishes on the snapshot it started with and none fails during a reload.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kb_service.content.lexicon import Lexicon, load_lexicon_or_empty
from kb_service.content.not_covered import not_covered_file
from kb_service.content.section_questions import section_questions_file
from kb_service.index.embedding import Embedder, load_embedder, model_key
from kb_service.index.integrity import IndexDamagedError  # noqa: F401  (re-exported: what a damaged index raises)
from kb_service.index.store import current_generation
from kb_service.index.vectors import limit_search_threads
from kb_service.models import Article, Hit, Passage, QuestionAnswer, SearchResponse, merge_hits
from kb_service.query.analysis import AnalyzedQuery, with_story_bigrams
from kb_service.query.reading import read_query
from kb_service.search.answered import AnsweredIndex, embed_section_questions, with_answered_section
from kb_service.search.confidence import ConfidenceFeatures, ConfidenceModel, confidence_features
from kb_service.search.fusion import (
    Candidate,
    group_by_article,
    reciprocal_rank_fusion,
    weighted_score_fusion,
)
from kb_service.search.not_covered import AbsentNames, NotCoveredIndex, embed_not_covered, file_state
from kb_service.search.passages import best_passages, coverage_scorer, highlight_terms
from kb_service.search.rerank import TreeEnsemble, candidate_features, load_reranker, reranked
from kb_service.search.situations import (
    Signalled,
    insert_signalled,
    passes_filter,
    signal_rank,
    signalled_section,
)
from kb_service.search.snapshot import (
    WARM_UP_QUERY,
    IndexNotBuiltError,
    SemanticMatches,
    Snapshot,
    lexical_search,
    load_snapshot,
    semantic_search,
    settle_heap,
    warm_snapshot,
)
from kb_service.settings import Settings

log = logging.getLogger(__name__)

QUESTION_LISTS_CHECK_SECONDS = 1.0  # how often a search looks whether the not-covered list or section questions changed


class QueryError(ValueError):
    """The query cannot be searched (empty, too long); the message is shown to the agent."""


@dataclass
class Ranked:
    """One question's ranked results over one filter, and the features the confidence model reads."""

    grouped: list[Candidate]
    top: Candidate | None
    features: ConfidenceFeatures
    not_covered_topic: str | None = None  # the not-covered topic to name (NotCoveredIndex.nearest)
    answered_section: tuple[str, str] | None = None  # the nearest section question's, within the filter


class SearchEngine:
    def __init__(self, settings: Settings, snapshot: Snapshot, embedder: Embedder, confidence: dict[str, ConfidenceModel]) -> None:
        self.settings = settings
        self._snapshot = snapshot
        self._embedder = embedder
        self.confidence = confidence  # per mode: lexical / semantic / hybrid
        self.reranker: TreeEnsemble | None = None  # hybrid only; set by open() for the embedder's key
        self._reload_lock = threading.Lock()
        self._not_covered = NotCoveredIndex()
        self._absent_names = AbsentNames()
        self._question_lists_lock = threading.Lock()
        self._question_lists_checked = 0.0
        self._answered = AnsweredIndex()

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> SearchEngine:
        generation = current_generation(Path(settings.index_dir))
        if generation is None:
            raise IndexNotBuiltError(f"no index in {settings.index_dir}: run `kb index` first")
        snapshot = load_snapshot(generation, cls._lexicon(settings), backend=settings.lexical_backend,
                                 intended_word_count=settings.intended_word_count)
        limit_search_threads(settings.threads)
        if embedder is None:
            embedder = load_embedder(settings.embedding_model, settings.embedding_runtime,
                                     Path(settings.index_dir) / "models", settings.query_embedding_threads())
        key = model_key(settings.embedding_model, settings.embedding_runtime)
        if snapshot.manifest.signature["embedding_model"] != key:
            raise IndexNotBuiltError(
                f"index was built with {snapshot.manifest.signature['embedding_model']}, settings ask for {key}: run `kb index`"
            )
        confidence = {mode: ConfidenceModel.load(Path(settings.confidence_path), f"{key}/{mode}")
                      for mode in ("lexical", "semantic", "hybrid")}
        engine = cls(settings, snapshot, embedder, confidence)
        if settings.rerank_depth > 0:
            engine.reranker = load_reranker(Path(settings.reranker_path), key)
        engine.refresh_question_lists(force=True)
        settle_heap()
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
            settle_heap()
            # Searches already running finish on the old snapshot; close its files once they are done.
            timer = threading.Timer(self.settings.snapshot_grace_seconds, old.close)
            timer.daemon = True
            timer.start()
            return True

    def refresh_question_lists(self, force: bool = False) -> bool:
        """Re-read the not-covered list and the section questions if their files changed; True when
        a new version of either was loaded.

        Searches call this at most once a second, so an edit goes live on every worker and replica
        without a rebuild; one search embeds the questions the edit added (the others come from the
        embedding cache), the rest carry on with the previous version meanwhile."""
        now = time.monotonic()
        if not force and now - self._question_lists_checked < QUESTION_LISTS_CHECK_SECONDS:
            return False
        self._question_lists_checked = now
        path = not_covered_file(self.settings.not_covered_path, self.settings.articles_dir)
        answered_path = section_questions_file(self.settings.section_questions_path, self.settings.articles_dir)
        list_changed = force or file_state(path) != self._not_covered.state
        answered_changed = force or file_state(answered_path) != self._answered.state
        if not (list_changed or answered_changed) or not self._question_lists_lock.acquire(blocking=force):
            return False
        try:
            snap = self._snapshot
            key = snap.manifest.signature["embedding_model"]
            cache = Path(self.settings.index_dir) / "cache" / f"embeddings-{key}.sqlite3"
            if list_changed:
                known = self._not_covered.searched  # an edit reads only the questions it adds
                self._not_covered = embed_not_covered(
                    path, lambda text: known.get(text) or self._read_as_query(snap, text), self._embedder, cache)
            if answered_changed:
                asked = self._answered.searched
                self._answered = embed_section_questions(
                    answered_path, lambda text: asked.get(text) or self._read_as_query(snap, text), self._embedder,
                    cache)
            return True
        except Exception:  # a search must not fail because of a file: keep the previous versions
            log.exception("reading %s or %s failed; the previous version stays in use", path, answered_path)
            return False
        finally:
            self._question_lists_lock.release()

    @staticmethod
    def _read_as_query(snap: Snapshot, text: str) -> tuple[str, tuple[str, ...]]:
        """What the engine embeds for a query (its first question, analysed) and its content words."""
        reading = read_query(text, max(len(text), 1))
        question = reading.questions[0] if reading.questions else text
        analyzed = snap.analyzer.analyze(question)
        return analyzed.semantic_text, analyzed.content_words

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
        as_typed: bool = False,
    ) -> SearchResponse:
        """Read the query (query_reading), search each question it asks, and merge.

        The response's hits put the first question's results first and then the best of each
        further question; its confidence is the first question's. With a category or tag filter a
        question is confident only if the whole knowledge base's best answer passes the filter:
        otherwise the filtered list is a runner-up, however well it matches. `as_typed`: no typo
        correction (the agent meant the word they typed); `spelled_as` says when one was made."""
        if mode not in ("hybrid", "lexical", "semantic"):
            raise QueryError(f"unknown search mode {mode!r}")
        text = self.validate_query(query, truncate)
        k = k or self.settings.top_k
        self.refresh_question_lists()
        snap = self._snapshot  # one snapshot for the whole request
        reading = read_query(text, self.settings.max_query_chars)
        if truncate or reading.truncated:  # the caller cut a longer text: its first question only
            reading = replace(reading, questions=reading.questions[:1], truncated=True)
        answers = [self._answer(snap, question, k, category, tags, mode, not as_typed, reading.untold_story)
                   for question in reading.questions]
        first = answers[0]
        hits = merge_hits(answers, k)
        signalled = signalled_section(snap.signals, reading.cleaned) if self.settings.chat_signals else None
        if signalled is not None and passes_filter(snap.passages[signalled.passage_id], category, tags):
            hits = insert_signalled(hits, self._signal_hit(snap, signalled), k, signal_rank(text))
        response = SearchResponse(query=text, confident=first.confident, hits=hits,
                                  confidence=first.confidence, reading=reading,
                                  questions=answers if len(answers) > 1 else [], outside_filter=first.outside_filter,
                                  spelled_as=first.spelled_as, not_covered=first.not_covered)
        response.features = first.features  # type: ignore[attr-defined]  # for calibration and eval
        return response

    def _answer(self, snap: Snapshot, question: str, k: int, category: str | None, tags: list[str] | None,  # noqa: PLR0913
                mode: str, correct: bool = True, story: str | None = None) -> QuestionAnswer:
        """One question's ranked, judged answer; `story`: the whole message it was cut from, whose
        bigrams the lexical side also searches (Reading.untold_story)."""
        analyzed = snap.analyzer.analyze(question, correct)
        vector = None
        if mode != "lexical":
            vector = np.asarray(self._embedder.encode([analyzed.semantic_text])[0])
        searched = with_story_bigrams(analyzed, story) if story else analyzed
        ranked = self._rank(snap, searched, vector, k, category, tags, mode)
        model = self.confidence[mode]
        probability = model.probability(ranked.features)
        confident = bool(ranked.top) and probability >= model.threshold
        outside = None
        if confident and (category or tags):
            best = self._rank(snap, searched, vector, 1, None, None, mode).top
            if best is not None and ranked.top is not None and \
                    snap.article_of(best.passage_id) != snap.article_of(ranked.top.passage_id):
                confident, outside = False, snap.passages[best.passage_id].category
        hits = [self._hit(snap, c, analyzed) for c in ranked.grouped]
        # A pasted message or a told situation can sit nearer a section question (written in the
        # agents' styles) than any passage or 相似问: that section gets `answered_slot` when the
        # ranking put its article lower (selection side only: docs/evaluation.md, nineteenth session).
        if mode == "hybrid" and ranked.answered_section and 0 < self.settings.answered_slot <= k:
            passage = snap.passages[snap.section_heads[ranked.answered_section]]
            shown = replace(Hit.of(passage, 0.0, highlight_terms(analyzed, passage.text)), via_section_question=True)
            hits = with_answered_section(hits, shown, self.settings.answered_slot, k)
        features = ranked.features
        near = features.not_covered > 0 or features.not_covered_words > 0
        not_covered = ranked.not_covered_topic if not confident and near else None
        return QuestionAnswer(question, hits, confident, probability, features, outside, analyzed.spelled_as,
                              not_covered)

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
        reranker = self.reranker if mode == "hybrid" else None
        grouped = group_by_article(fused, snap.article_of, max(k, self.settings.rerank_depth) if reranker else k)
        specificity = snap.analyzer.tokenizer.specificity
        coverage = coverage_scorer(analyzed, specificity)
        covered: dict[str, float] = {}  # the re-pick and the re-ranker score the same passages

        def coverage_of(pid: str) -> float:
            if pid not in covered:
                covered[pid] = coverage(snap.passages[pid])
            return covered[pid]

        if self.settings.passage_coverage_weight > 0:
            grouped = best_passages(grouped, fused, snap.article_of, coverage_of, self.settings.passage_coverage_weight)
        if reranker is not None and len(grouped) > 1:
            rows = candidate_features(analyzed, grouped, snap.passages.__getitem__, coverage_of, baseline)
            grouped = reranked(grouped, reranker.scores(rows))[:k]
        top: Candidate | None = grouped[0] if grouped else None
        listed = self._not_covered
        named = listed.named_in(analyzed.corrected, self._absent_names.of(snap.passages, snap.lexical, listed))
        not_covered, topic = (listed.nearest(vector, analyzed.content_words, named) if vector is not None
                              else (0.0, named[0] if named else None))
        answered = self._answered
        answered_match, answered_section = (answered.closest(
            vector, answered.live_rows(snap.generation, snap.sections),
            lambda s: passes_filter(snap.passages[snap.section_heads[s]], category, tags),
        ) if vector is not None else (0.0, None))
        features = confidence_features(
            analyzed, top, snap.passages[top.passage_id] if top else None, semantic, lexical,
            snap.article_of, lambda w: w in snap.vocabulary, specificity, baseline, matches.question_match,
            not_covered, listed.words, answered_match, len(named),
        )
        return Ranked(grouped, top, features, topic, answered_section)

    def _hit(self, snap: Snapshot, candidate: Candidate, analyzed) -> Hit:  # type: ignore[no-untyped-def]
        passage = snap.passages[candidate.passage_id]
        return Hit.of(passage, round(candidate.score, 6), highlight_terms(analyzed, passage.text))

    def _signal_hit(self, snap: Snapshot, signalled: Signalled) -> Hit:
        passage = snap.passages[signalled.passage_id]
        return Hit.of(passage, highlights=[signalled.signal] if signalled.signal in passage.text else [],
                      signal=signalled.signal)

    def close(self) -> None:
        self._snapshot.close()
