"""The search engine: one loaded index generation (a snapshot) plus the embedder.

`reload()` builds a new snapshot beside the serving one and swaps a single reference, so a
search in flight finishes on the snapshot it started with and none fails during a reload.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .analysis import DomainTokenizer
from .embedding import Embedder, load_embedder, model_key
from .indexing import MANIFEST, current_generation
from .lexical_index import LexicalIndex
from .lexicon import Lexicon, load_lexicon
from .models import Article, Hit, Passage, SearchResponse
from .ranking import (
    Candidate,
    ConfidenceModel,
    QueryAnalyzer,
    best_passages,
    confidence_features,
    group_by_article,
    highlight_terms,
    passage_coverage,
    reciprocal_rank_fusion,
    weighted_score_fusion,
)
from .settings import Settings
from .spelling import HomophoneCorrector
from .vector_index import FaissVectorIndex


class QueryError(ValueError):
    """The query cannot be searched (empty, too long); the message is shown to the agent."""


class IndexNotBuiltError(RuntimeError):
    pass


@dataclass
class Snapshot:
    generation: str
    manifest: dict
    lexical: LexicalIndex
    vectors: FaissVectorIndex
    passages: dict[str, Passage]
    by_vector_id: dict[int, str]
    articles: dict[str, dict]
    analyzer: QueryAnalyzer
    vocabulary: frozenset[str]

    def article_of(self, passage_id: str) -> str:
        return self.passages[passage_id].article_id

    def close(self) -> None:
        self.lexical.close()


def load_snapshot(generation: Path, lexicon: Lexicon) -> Snapshot:
    manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    tokenizer = DomainTokenizer(json.loads((generation / "tokenizer.json").read_text(encoding="utf-8")))
    passages: dict[str, Passage] = {}
    by_vector_id: dict[int, str] = {}
    with open(generation / "passages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            passage = Passage.from_dict(row["passage"])
            passages[passage.passage_id] = passage
            by_vector_id[int(row["vid"])] = passage.passage_id
    articles: dict[str, dict] = {}
    with open(generation / "articles.jsonl", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            articles[record["id"]] = record
    corrector = HomophoneCorrector.from_dict(json.loads((generation / "spelling.json").read_text(encoding="utf-8")))
    aliases = frozenset(alias for record in articles.values() for alias in record["aliases"])
    analyzer = QueryAnalyzer(tokenizer, lexicon, corrector, aliases)
    return Snapshot(
        generation=generation.name,
        manifest=manifest,
        lexical=LexicalIndex.open(generation / "lexical"),
        vectors=FaissVectorIndex.load(generation / "vectors.faiss"),
        passages=passages,
        by_vector_id=by_vector_id,
        articles=articles,
        analyzer=analyzer,
        vocabulary=corrector.vocabulary,
    )


def warm_up(snapshot: Snapshot) -> None:
    analyzed = snapshot.analyzer.analyze("交强险理赔流程")
    snapshot.lexical.search(analyzed.terms, 5)


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
        snapshot = load_snapshot(generation, cls._lexicon(settings))
        if embedder is None:
            embedder = load_embedder(settings.embedding_model, settings.embedding_runtime,
                                     Path(settings.index_dir) / "models", settings.threads)
        key = model_key(settings.embedding_model, settings.embedding_runtime)
        if snapshot.manifest["signature"]["embedding_model"] != key:
            raise IndexNotBuiltError(
                f"index was built with {snapshot.manifest['signature']['embedding_model']}, settings ask for {key}: run `kb index`"
            )
        confidence = {mode: ConfidenceModel.load(Path(settings.confidence_path), f"{key}/{mode}")
                      for mode in ("lexical", "semantic", "hybrid")}
        engine = cls(settings, snapshot, embedder, confidence)
        engine.search("理赔流程")  # warm up jieba, the ONNX session and Whoosh so the first agent waits no longer
        return engine

    @staticmethod
    def _lexicon(settings: Settings) -> Lexicon:
        path = Path(settings.lexicon_path)
        return load_lexicon(path) if path.exists() else Lexicon()

    # ------------------------------------------------------------ serving

    def reload(self) -> bool:
        """Swap to the newest complete generation; False when it is already serving."""
        with self._reload_lock:
            generation = current_generation(Path(self.settings.index_dir))
            if generation is None or generation.name == self._snapshot.generation:
                return False
            snapshot = load_snapshot(generation, self._lexicon(self.settings))
            warm_up(snapshot)  # pay jieba's and Whoosh's start-up before agents see the new snapshot
            old, self._snapshot = self._snapshot, snapshot
            # Searches already running finish on the old snapshot; close its files once they are done.
            timer = threading.Timer(self.settings.snapshot_grace_seconds, old.close)
            timer.daemon = True
            timer.start()
            return True

    def info(self) -> dict:
        snap = self._snapshot
        return {
            "index_version": snap.generation,
            "built_at": snap.manifest.get("built_at"),
            "articles": len(snap.articles),
            "passages": len(snap.passages),
            "model": snap.manifest.get("embedding_model"),
        }

    def article(self, article_id: str) -> Article | None:
        record = self._snapshot.articles.get(article_id)
        if record is None:
            return None
        return Article(
            id=record["id"], title=record["title"], category=record["category"], tags=tuple(record["tags"]),
            aliases=tuple(record["aliases"]), updated=record["updated"], version=record["version"],
            owner=record["owner"], path=Path(record["path"]), markdown=record["markdown"], body_line=0, sections=(),
        )

    def passages_of(self, article_id: str) -> list[Passage]:
        return [p for p in self._snapshot.passages.values() if p.article_id == article_id]

    def validate_query(self, query: str) -> str:
        text = (query or "").strip()
        if not text:
            raise QueryError("查询内容为空：请输入要搜索的问题")
        if len(text) > self.settings.max_query_chars:
            raise QueryError(f"查询过长：最多 {self.settings.max_query_chars} 个字，当前 {len(text)} 个字")
        return text

    def search(
        self,
        query: str,
        k: int | None = None,
        category: str | None = None,
        tags: list[str] | None = None,
        mode: str = "hybrid",
    ) -> SearchResponse:
        if mode not in ("hybrid", "lexical", "semantic"):
            raise QueryError(f"unknown search mode {mode!r}")
        text = self.validate_query(query)
        k = k or self.settings.top_k
        snap = self._snapshot  # one snapshot for the whole request
        analyzed = snap.analyzer.analyze(text)
        n = self.settings.candidates

        def allowed(pid: str) -> bool:
            p = snap.passages[pid]
            return (not category or p.category == category) and all(t in p.tags for t in tags or ())

        lexical = snap.lexical.search(analyzed.terms, n, category, tags) if mode != "semantic" else []
        lexical = [(p, s) for p, s in lexical if p in snap.passages]
        semantic: list[tuple[str, float]] = []
        if mode != "lexical":
            vector = self._embedder.encode([analyzed.semantic_text])[0]
            fetch = n if not (category or tags) else n * 8
            for vid, score in snap.vectors.search(np.asarray(vector), fetch):
                pid = snap.by_vector_id.get(vid)
                if pid is not None and allowed(pid):
                    semantic.append((pid, score))
            semantic = semantic[:n]
        if self.settings.fusion == "weighted":
            fused = weighted_score_fusion(lexical, semantic, self.settings.lexical_weight, self.settings.semantic_weight)
        else:
            fused = reciprocal_rank_fusion(lexical, semantic, self.settings.rrf_k, self.settings.lexical_weight,
                                           self.settings.semantic_weight)
        grouped = group_by_article(fused, snap.article_of, k)
        specificity = snap.analyzer.tokenizer.specificity
        if self.settings.passage_coverage_weight > 0:
            grouped = best_passages(
                grouped, fused, snap.article_of,
                lambda pid: passage_coverage(analyzed, snap.passages[pid], specificity),
                self.settings.passage_coverage_weight,
            )
        top: Candidate | None = grouped[0] if grouped else None
        features = confidence_features(
            analyzed, top, snap.passages[top.passage_id] if top else None, semantic, lexical, snap.article_of,
            lambda w: w in snap.vocabulary, specificity,
        )
        model = self.confidence[mode]
        probability = model.probability(features)
        hits = [self._hit(snap, c, analyzed) for c in grouped]
        response = SearchResponse(query=text, confident=bool(hits) and probability >= model.threshold,
                                  hits=hits, confidence=probability)
        response.features = features  # type: ignore[attr-defined]  # for calibration and eval
        return response

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
