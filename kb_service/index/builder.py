"""Build the lexical and semantic indexes into a new generation (the store switches atomically).

After an edit only changed and added articles are analysed and embedded, into one small new
segment (see segments.py); the manifest points each article at the segment holding its live
version. When segments pile up or too many rows are dead, the next build merges: a full build
that takes unchanged vectors from the embedding cache. An article that fails validation keeps
its last good version. What to build is decided in planning.py; where it goes is store.py.

Every segment and generation carries a `checksums.json` (integrity.py) and the manifest records
each segment's checksum-file digest. An update first verifies the serving generation and its
segments: anything damaged makes it a full build (vectors from the embedding cache), which
replaces the damaged files instead of building on them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kb_service import __version__
from kb_service.content.articles import ArticleCache, content_digest
from kb_service.content.lexicon import Lexicon, load_lexicon_or_empty
from kb_service.content.validation import check_knowledge_base
from kb_service.index.embedding import Embedder, load_embedder, model_key
from kb_service.index.embedding_cache import EmbeddingCache
from kb_service.index.integrity import (
    checksum_digest,
    write_checksums,
)
from kb_service.index.lexical.bm25f import (
    BM25FParams,
    LexicalSegment,
    analyze_passage,
    average_lengths,
    word_document_counts,
)
from kb_service.index.lexical.whoosh import LexicalIndex
from kb_service.index.planning import (
    BuildPlan,
    Changes,
    PreviousIndex,
    find_changes,
    full_merge_due,
    plan_full,
    plan_update,
    previous_index,
)
from kb_service.index.records import ArticleEntry, ArticleRecord, Manifest
from kb_service.index.segments import (
    SEGMENTS_DIR,
    new_segment_id,
    segment_path,
    write_segment,
)
from kb_service.index.store import (
    CURRENT,
    FORMAT,
    KEEP_GENERATIONS,
    article_path,
    build_lock,
    prune,
    remove_leftovers,
    write_atomic,
    write_manifest,
)
from kb_service.index.vectors import FaissVectorIndex
from kb_service.models import Passage, Problem
from kb_service.query.tokenizer import DomainTokenizer
from kb_service.settings import Settings

log = logging.getLogger(__name__)
ProgressFn = Callable[[str, int, int], None]


@dataclass
class BuildReport:
    generation: str
    full: bool
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_last_good: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    articles: int = 0
    passages: int = 0
    embedded: int = 0  # texts newly embedded (passages and 相似问): the rest came from the cache
    merged: bool = False  # the small segments were folded into this build's segment
    full_merge_due: bool = False  # too many outdated rows: run a full build (from the cache) next
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for benchmarks
    repaired: list[str] = field(default_factory=list)  # damage found in the previous index (one line each)
    cleaned: list[str] = field(default_factory=list)  # leftovers of killed builds that were removed

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.changed or self.removed) and not self.full


def embedding_text(passage: Passage, aliases: int = 6) -> str:
    """What the embedder sees: the heading path gives a short section its topic. The article's
    first aliases (how agents name it: 二销, 顺便推荐) go with its first passage, the introduction.
    On every passage they helped semantic search more but cost hybrid R@5 on our set with each
    embedder (README, "How the design was chosen")."""
    names = "、".join(passage.aliases[:aliases]) if passage.ordinal == 0 else ""
    head = f"{passage.title}（{names}）" if names else passage.title
    return f"{head}｜{passage.heading}\n{passage.text}" if passage.heading else f"{head}\n{passage.text}"


def file_hash(path: Path) -> str:
    return content_digest(path.read_bytes())


def _link_tree(source: Path, target: Path) -> None:
    """Copy a Whoosh folder by hard links: its segment files are never modified in place."""
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.is_file() and not item.name.endswith(".lock") and "LOCK" not in item.name:
            try:
                os.link(item, target / item.name)
            except OSError:
                shutil.copy2(item, target / item.name)


def bm25f_params(settings: Settings) -> BM25FParams:
    return BM25FParams(k1=settings.bm25_k1, b=settings.bm25_b)


def index_signature(settings: Settings, lexicon: Lexicon) -> dict:
    """Everything that, when it changes, invalidates the whole index."""
    tokenizer = DomainTokenizer(lexicon.dictionary_words)
    params = bm25f_params(settings)
    return {
        "format": FORMAT,
        "embedding_model": model_key(settings.embedding_model, settings.embedding_runtime),
        "vector_index": settings.vector_index,
        "tokenizer": tokenizer.fingerprint,
        "max_passage_chars": settings.max_passage_chars,
        "embedded_aliases": settings.embedded_aliases,
        "embedded_questions": settings.embedded_questions,
        "bm25f": {"k1": params.k1, "b": params.b, "boosts": dict(params.boosts)},
        "whoosh": settings.lexical_backend == "whoosh",
    }


def build_index(
    settings: Settings,
    *,
    full: bool = False,
    embedder: Embedder | None = None,
    progress: ProgressFn | None = None,
    cache: ArticleCache | None = None,
    lock_timeout: float | None = None,
) -> BuildReport:
    """Build or update the indexes; returns what changed. Raises only on real failures.

    `cache` lets a long-running process (the watcher of `kb serve --watch`) skip re-parsing
    files that have not changed since its last build. Builds of one index folder take turns;
    `lock_timeout` (default Settings.build_lock_timeout, 600 s) bounds the wait: BuildLockTimeout.
    """
    index_dir = Path(settings.index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with build_lock(index_dir, settings.build_lock_timeout if lock_timeout is None else lock_timeout):
        cleaned = remove_leftovers(index_dir)
        report = _build_index(settings, full, embedder, progress, cache)
        report.cleaned = cleaned
        return report


def build_and_merge(
    settings: Settings,
    *,
    full: bool = False,
    embedder: Embedder | None = None,
    progress: ProgressFn | None = None,
    cache: ArticleCache | None = None,
    lock_timeout: float | None = None,
    on_live: Callable[[], None] | None = None,
) -> BuildReport:
    """Build or update, then fold every segment into one if the update made that due.

    The update is live before the merge starts (`on_live` runs then, e.g. a reload), since the
    merge only reclaims outdated rows; the report keeps the update's figures and the merged
    generation. Both `kb index` and the `--watch` rebuild go through here.
    """
    report = build_index(settings, full=full, embedder=embedder, progress=progress, cache=cache,
                         lock_timeout=lock_timeout)
    if report.full_merge_due and not report.full:
        if on_live is not None:
            on_live()
        log.info("merging index segments: many outdated rows")
        merged = build_index(settings, full=True, embedder=embedder, progress=progress, cache=cache,
                             lock_timeout=lock_timeout)
        report.generation, report.seconds = merged.generation, report.seconds + merged.seconds
    return report


def _build_index(
    settings: Settings,
    full: bool,
    embedder: Embedder | None,
    progress: ProgressFn | None,
    cache: ArticleCache | None,
) -> BuildReport:
    started = time.perf_counter()
    index_dir = Path(settings.index_dir)
    check = check_knowledge_base(settings.articles_dir, settings, cache=cache)
    lexicon = load_lexicon_or_empty(settings.lexicon_path)
    tokenizer = DomainTokenizer(lexicon.dictionary_words)
    signature = index_signature(settings, lexicon)
    timings = {"check": time.perf_counter() - started}

    previous = previous_index(index_dir)
    timings["verify"] = time.perf_counter() - started - timings["check"]
    records = {a.id: ArticleRecord.of(a, cache.digest(a.path) if cache is not None else file_hash(a.path),
                                      article_path(a.path, settings.articles_dir)) for a in check.articles}
    broken = {article_path(p, settings.articles_dir) for p in check.broken_paths}
    changes = find_changes(previous, signature, full, {aid: r.hash for aid, r in records.items()}, broken)
    report = BuildReport(generation="", full=not changes.incremental, added=changes.added, changed=changes.changed,
                         removed=changes.removed, kept_last_good=sorted(changes.kept), problems=check.problems,
                         repaired=previous.damage)
    if changes.incremental and not (changes.added or changes.changed or changes.removed):
        assert previous.generation is not None and previous.manifest is not None
        report.generation = previous.generation.name
        report.articles = len(previous.manifest.articles)
        report.passages = previous.manifest.passages
        report.seconds = time.perf_counter() - started
        return report

    base = previous if changes.incremental else PreviousIndex()
    plan, report.merged = _plan(settings, base, changes, check.passages, records)

    generation = index_dir / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    staging = index_dir / f".building-{generation.name}"
    segment_id = new_segment_id()
    try:
        manifest = _build_generation(settings, staging, base, plan, segment_id, tokenizer, signature, embedder,
                                     progress, report, timings)
        os.replace(staging, generation)
        write_atomic(index_dir / CURRENT, generation.name)
    except BaseException:
        shutil.rmtree(index_dir / SEGMENTS_DIR / segment_id, ignore_errors=True)
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    report.generation = generation.name
    report.full_merge_due = full_merge_due(manifest, settings.max_dead_fraction)
    prune(index_dir, keep=KEEP_GENERATIONS)
    report.seconds = time.perf_counter() - started
    report.timings = timings
    return report


def _plan(settings: Settings, base: PreviousIndex, changes: Changes, passages: list[Passage],
          records: dict[str, ArticleRecord]) -> tuple[BuildPlan, bool]:
    """The build's plan, and whether small segments were folded into its new one."""
    by_article: dict[str, list[Passage]] = {}
    for passage in passages:
        by_article.setdefault(passage.article_id, []).append(passage)
    if base.manifest is None:
        return plan_full(Path(settings.index_dir), changes, by_article, records), False
    return plan_update(Path(settings.index_dir), base.manifest, changes, by_article, records, settings.max_segments)


def _build_generation(  # noqa: PLR0913 - one build's state, passed rather than kept in globals
    settings: Settings,
    staging: Path,
    base: PreviousIndex,
    plan: BuildPlan,
    segment_id: str,
    tokenizer: DomainTokenizer,
    signature: dict,
    embedder: Embedder | None,
    progress: ProgressFn | None,
    report: BuildReport,
    timings: dict[str, float],
) -> Manifest:
    """Write the new segment and the generation's files into `staging`; returns its manifest."""
    staging.mkdir(parents=True)
    index_dir = Path(settings.index_dir)
    clock = time.perf_counter()
    lexical, counts, stats = _lexical_part(settings, staging, base, plan, tokenizer, progress)
    timings["lexical"] = time.perf_counter() - clock
    clock = time.perf_counter()
    if embedder is None:
        embedder = load_embedder(settings.embedding_model, settings.embedding_runtime, index_dir / "models",
                                 settings.threads)
    vector_index, question_index, report.embedded = _vector_part(settings, plan.passages, embedder,
                                                                 signature["embedding_model"], progress)
    timings["embedding+vectors"] = time.perf_counter() - clock
    clock = time.perf_counter()
    segment_records = [plan.records[aid] for aid in sorted(plan.records)]
    write_segment(index_dir, segment_id, plan.passages, segment_records, lexical, vector_index, counts,
                  question_index)
    checksums = {**{sid: plan.checksums[sid] for sid in plan.segments},
                 segment_id: checksum_digest(segment_path(index_dir, segment_id))}
    passages_per_article = Counter(p.article_id for p in plan.passages)
    entries = dict(plan.entries)
    for r in segment_records:
        entries[r.id] = ArticleEntry(path=r.path, version=r.version, hash=r.hash, title=r.title,
                                     category=r.category, segment=segment_id, passages=passages_per_article[r.id])
    (staging / "tokenizer.json").write_text(json.dumps(list(tokenizer.words), ensure_ascii=False), encoding="utf-8")
    rows = {sid: n for sid, n in (base.manifest.segment_rows if base.manifest else {}).items() if sid in plan.segments}
    manifest = Manifest(
        signature=signature, segments=[*plan.segments, segment_id], articles={a: entries[a] for a in sorted(entries)},
        passages=sum(e.passages for e in entries.values()), segment_rows={**rows, segment_id: len(plan.passages)},
        lexical_stats=stats, segment_checksums=checksums, embedding_model=embedder.name,
        embedding_dim=embedder.dim, built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), kb_service_version=__version__,
    )
    write_manifest(staging, manifest)
    write_checksums(staging)  # last: it covers the manifest, which covers the segments
    report.articles, report.passages = len(entries), manifest.passages
    timings["store+vocabulary"] = time.perf_counter() - clock
    return manifest


def _lexical_part(settings: Settings, staging: Path, base: PreviousIndex, plan: BuildPlan,
                  tokenizer: DomainTokenizer, progress: ProgressFn | None) -> tuple[LexicalSegment, dict, dict]:
    """The new segment's BM25F columns and word counts (and the Whoosh index when that backend is on).

    An update keeps the previous generation's average field lengths, so old segments' scores stay valid."""
    analyzed = []
    for n, passage in enumerate(plan.passages, start=1):
        analyzed.append(analyze_passage(passage, tokenizer))
        if progress and (n % 500 == 0 or n == len(plan.passages)):
            progress("analysing", n, len(plan.passages))
    stats = base.manifest.lexical_stats if base.manifest else average_lengths(analyzed)
    lexical = LexicalSegment.build(analyzed, stats, bm25f_params(settings))
    if settings.lexical_backend == "whoosh":
        whoosh_add = plan.passages if plan.add_to_whoosh is None else plan.add_to_whoosh
        _update_whoosh(staging, base.generation, whoosh_add, plan.delete_from_whoosh, tokenizer)
    return lexical, word_document_counts(analyzed), stats


def _vector_part(settings: Settings, passages: list[Passage], embedder: Embedder, model: str,
                 progress: ProgressFn | None) -> tuple[FaissVectorIndex, FaissVectorIndex | None, int]:
    """Passage vectors and 相似问 vectors (texts already embedded come from the cache); how many were new."""
    embedding_cache = EmbeddingCache(Path(settings.index_dir) / "cache" / f"embeddings-{model}.sqlite3")
    questions = [q for p in passages for q in p.questions] if settings.embedded_questions else []
    try:
        vectors, embedded = embedding_cache.embed(
            [*(embedding_text(p, settings.embedded_aliases) for p in passages), *questions], embedder, progress)
    finally:
        embedding_cache.close()
    vector_index = FaissVectorIndex.create(embedder.dim, settings.vector_index, settings.hnsw_m)
    vector_index.add(np.arange(len(passages), dtype=np.int64), vectors[: len(passages)])
    question_index = None
    if questions:
        # Vector id = the question's position; the segment maps it back to its passage's row.
        question_index = FaissVectorIndex.create(embedder.dim, settings.question_vector_index, settings.hnsw_m,
                                                 half_precision=True)
        question_index.add(np.arange(len(questions), dtype=np.int64), vectors[len(passages):])
    return vector_index, question_index, embedded


def _update_whoosh(staging: Path, previous: Path | None, passages: list[Passage], delete: list[str],
                   tokenizer: DomainTokenizer) -> None:
    """The Whoosh backend's index: linked from the previous generation and updated, or built."""
    if previous is not None and (previous / "lexical").exists():
        _link_tree(previous / "lexical", staging / "lexical")
        whoosh = LexicalIndex.open(staging / "lexical")
        whoosh.update(passages, delete_articles=delete)
    else:
        whoosh = LexicalIndex.create(staging / "lexical", tokenizer)
        whoosh.update(passages)
    whoosh.close()
