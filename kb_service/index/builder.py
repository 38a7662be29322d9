"""Build the lexical and semantic indexes into a new generation, then switch atomically.

A build never touches the generation that is serving: it writes new segments and a new
`indexes/gen-…/` manifest, and only a complete generation is named in `indexes/CURRENT`
(written with an atomic rename). A crash at any point leaves the previous generation serving.

After an edit only changed and added articles are analysed and embedded, into one small new
segment (see segments.py); the manifest points each article at the segment holding its live
version. When segments pile up or too many rows are dead, the next build merges: a full build
that takes unchanged vectors from the embedding cache. An article that fails validation keeps
its last good version.

Every segment and generation carries a `checksums.json` (integrity.py) and the manifest records
each segment's checksum-file digest. An update first verifies the serving generation and its
segments: anything damaged makes it a full build (vectors from the embedding cache), which
replaces the damaged files instead of building on them.

Builds of one index folder take turns: an exclusive `flock` on `.build.lock`, waited for up to
KB_BUILD_LOCK_TIMEOUT seconds (default 600). Under the lock a build first removes what a killed
build left behind (staging folders, temporary CURRENT files).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from kb_service import __version__
from kb_service.content.articles import ArticleCache, content_digest
from kb_service.content.lexicon import Lexicon, load_lexicon
from kb_service.content.validation import check_knowledge_base
from kb_service.index.embedding import Embedder, load_embedder, model_key
from kb_service.index.embedding_cache import EmbeddingCache
from kb_service.index.integrity import (
    CHECKSUMS,
    IndexDamagedError,
    checksum_digest,
    verify_folder,
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
from kb_service.index.segments import (
    SEGMENTS_DIR,
    new_segment_id,
    read_segment_articles,
    read_segment_passages,
    segment_path,
    verify_segment,
    write_segment,
)
from kb_service.index.vectors import FaissVectorIndex
from kb_service.models import Article, Passage, Problem
from kb_service.query.tokenizer import DomainTokenizer
from kb_service.settings import Settings

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
SEGMENT_LIST = "segments.json"  # the manifest's segment ids alone, for pruning
FORMAT = 4  # generation layout: 4 = segments with their own vocabulary, rows per segment
KEEP_GENERATIONS = 3
BUILD_LOCK = ".build.lock"
LOCK_TIMEOUT_ENV = "KB_BUILD_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 600.0
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


def current_generation(index_dir: Path) -> Path | None:
    pointer = Path(index_dir) / CURRENT
    if not pointer.exists():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    generation = Path(index_dir) / name
    # A generation folder without its manifest is damaged, not absent: verify_generation says so.
    return generation if name.startswith("gen-") and "/" not in name and generation.is_dir() else None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(generation: Path) -> dict:
    # orjson: at 25k articles the manifest is ~5 MB, read and written on every update.
    return orjson.loads((generation / MANIFEST).read_bytes())


def verify_generation(generation: Path) -> dict:
    """The generation's manifest, once its files are verified; IndexDamagedError names the file.

    A generation written before checksums existed (no checksum file, no `segment_checksums` in
    its manifest) is read unverified."""
    generation = Path(generation)
    checked = (generation / CHECKSUMS).exists()
    if checked:
        verify_folder(generation, generation.name)
    try:
        manifest = read_manifest(generation)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        raise IndexDamagedError(generation.name, MANIFEST, "missing") from None
    except (OSError, ValueError) as exc:
        raise IndexDamagedError(generation.name, MANIFEST, f"unreadable: {exc}") from None
    if not checked and "segment_checksums" in manifest:
        raise IndexDamagedError(generation.name, CHECKSUMS, "missing")
    return manifest


class BuildLockTimeout(RuntimeError):
    """Another build of the same index folder did not finish in time."""


@contextlib.contextmanager
def build_lock(index_dir: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the index folder's build lock: wait while another build (thread or process) holds it."""
    if timeout is None:
        timeout = float(os.environ.get(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT))
    path = Path(index_dir) / BUILD_LOCK
    deadline = time.monotonic() + timeout
    with open(path, "a+b") as fh:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BuildLockTimeout(f"another index build is running in {index_dir}: gave up after "
                                           f"{timeout:g} s waiting for {BUILD_LOCK} ({LOCK_TIMEOUT_ENV})") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def remove_leftovers(index_dir: Path) -> list[str]:
    """What killed builds left behind: staging folders and temporary files. Call under the lock."""
    index_dir = Path(index_dir)
    stale = [*index_dir.glob(".building-*"), *index_dir.glob(f".{CURRENT}.*.tmp"),
             *(index_dir / SEGMENTS_DIR).glob(".building-*")]
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return sorted(str(p.relative_to(index_dir)) for p in stale)


def _previous_index(index_dir: Path) -> tuple[Path | None, dict | None, set[str], list[str]]:
    """The serving generation, its manifest, its damaged segments and what is damaged (one line each).

    A damaged generation counts as no previous index: the build is full."""
    previous = current_generation(index_dir)
    if previous is None:
        return None, None, set(), []
    try:
        manifest = verify_generation(previous)
    except IndexDamagedError as exc:
        return None, None, set(), [str(exc)]
    if manifest.get("signature", {}).get("format") != FORMAT:
        return None, None, set(), []  # an older layout: rebuild from the articles
    checksums = manifest.get("segment_checksums")
    damaged: set[str] = set()
    problems: list[str] = []
    if checksums is not None:
        for segment_id in manifest.get("segments", []):
            try:
                verify_segment(index_dir, segment_id, checksums.get(segment_id, ""))
            except IndexDamagedError as exc:
                damaged.add(segment_id)
                problems.append(str(exc))
    return previous, manifest, damaged, problems


def _link_tree(source: Path, target: Path) -> None:
    """Copy a Whoosh folder by hard links: its segment files are never modified in place."""
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.is_file() and not item.name.endswith(".lock") and "LOCK" not in item.name:
            try:
                os.link(item, target / item.name)
            except OSError:
                shutil.copy2(item, target / item.name)


def article_record(article: Article, digest: str) -> dict:
    return {
        "id": article.id,
        "title": article.title,
        "category": article.category,
        "tags": list(article.tags),
        "aliases": list(article.aliases),
        "updated": article.updated,
        "version": article.version,
        "owner": article.owner,
        "path": str(article.path),
        "hash": digest,
        "markdown": article.markdown,
    }


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


@dataclass
class _Plan:
    """What one build writes: the new segment's passages and records, and the live map."""

    passages: list[Passage]
    records: dict[str, dict]
    entries: dict[str, dict]  # manifest article entries carried over unchanged
    segments: list[str]  # previous segments still referenced
    delete_from_whoosh: list[str]
    add_to_whoosh: list[Passage] | None = None  # None: all of `passages`
    checksums: dict[str, str] = field(default_factory=dict)  # segment id → its checksum file's digest


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
    `lock_timeout` (default KB_BUILD_LOCK_TIMEOUT, 600 s) bounds the wait: BuildLockTimeout.
    """
    index_dir = Path(settings.index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with build_lock(index_dir, lock_timeout):
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
    lexicon = load_lexicon(settings.lexicon_path) if Path(settings.lexicon_path).exists() else Lexicon()
    tokenizer = DomainTokenizer(lexicon.dictionary_words)
    signature = index_signature(settings, lexicon)
    timings = {"check": time.perf_counter() - started}

    previous, prev_manifest, damaged, damage = _previous_index(index_dir)
    timings["verify"] = time.perf_counter() - started - timings["check"]
    known: dict[str, dict] = prev_manifest["articles"] if prev_manifest else {}
    # Damaged segments, or none with checksums (written before they existed): rebuild everything.
    incremental = (bool(prev_manifest) and not full and prev_manifest["signature"] == signature and not damage
                   and "segment_checksums" in prev_manifest)

    digests = {a.id: (cache.digest(a.path) if cache is not None else file_hash(a.path)) for a in check.articles}
    current = {a.id: a for a in check.articles}
    # A broken file that was indexed before keeps its last good version.
    broken = {str(p) for p in check.broken_paths}
    kept = {aid: entry for aid, entry in known.items()
            if entry["path"] in broken and aid not in current and entry["segment"] not in damaged}
    before = known if incremental else {}
    added = sorted(a for a in current if a not in before)
    changed = sorted(a for a in current if a in before and before[a]["hash"] != digests[a])
    removed = sorted(a for a in before if a not in current and a not in kept)
    report = BuildReport(generation="", full=not incremental, added=added, changed=changed, removed=removed,
                         kept_last_good=sorted(kept), problems=check.problems, repaired=damage)
    if incremental and not (added or changed or removed):
        report.generation = previous.name
        report.articles = len(known)
        report.passages = prev_manifest["passages"]
        report.seconds = time.perf_counter() - started
        return report

    by_article: dict[str, list[Passage]] = {}
    for passage in check.passages:
        by_article.setdefault(passage.article_id, []).append(passage)
    if incremental:
        fresh = added + changed
        plan = _Plan(
            passages=[p for aid in fresh for p in by_article.get(aid, [])],
            records={aid: article_record(current[aid], digests[aid]) for aid in fresh},
            entries={aid: e for aid, e in known.items() if aid not in set(fresh) | set(removed)},
            segments=list(prev_manifest["segments"]),
            delete_from_whoosh=changed + removed,
        )
        plan.checksums = {sid: prev_manifest["segment_checksums"][sid] for sid in plan.segments}
        plan.add_to_whoosh = list(plan.passages)  # folded articles are in the Whoosh index already
        if len(plan.segments) + 1 > settings.max_segments:
            _fold_small_segments(index_dir, prev_manifest, plan)
            report.merged = True
    else:
        plan = _Plan(passages=[p for aid in sorted(current) for p in by_article.get(aid, [])],
                     records={aid: article_record(current[aid], digests[aid]) for aid in current},
                     entries={}, segments=[], delete_from_whoosh=[])
        _carry_kept_articles(index_dir, kept, plan)

    generation = index_dir / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    staging = index_dir / f".building-{generation.name}"
    segment_id = new_segment_id()
    try:
        manifest = _build_generation(settings, staging, previous if incremental else None, prev_manifest if incremental else None,
                          plan, segment_id, tokenizer, signature, embedder, progress, report, timings)
        os.replace(staging, generation)
        _write_atomic(index_dir / CURRENT, generation.name)
    except BaseException:
        shutil.rmtree(index_dir / SEGMENTS_DIR / segment_id, ignore_errors=True)
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    report.generation = generation.name
    report.full_merge_due = full_merge_due(settings, manifest)
    _prune(index_dir, keep=KEEP_GENERATIONS)
    report.seconds = time.perf_counter() - started
    report.timings = timings
    return report


def full_merge_due(settings: Settings, manifest: dict) -> bool:
    """Too many outdated rows: queries skip them and idf ignores them, but they cost memory."""
    rows = sum(manifest["segment_rows"].values())
    return rows > 0 and (rows - manifest["passages"]) / rows > settings.max_dead_fraction


def _fold_small_segments(index_dir: Path, manifest: dict, plan: _Plan) -> None:
    """Tiered merge: the live articles of every segment but the largest move into the new one.

    The cost is the size of the small segments, not of the knowledge base, so a merge never
    delays an edit by a full rebuild; the large segment is rebuilt only by a full build.
    """
    sizes = manifest["segment_rows"]
    base = max(plan.segments, key=lambda sid: sizes.get(sid, 0))
    folded = [sid for sid in plan.segments if sid != base]
    moving: dict[str, set[str]] = {sid: set() for sid in folded}
    for aid, entry in list(plan.entries.items()):
        if entry["segment"] in moving:
            moving[entry["segment"]].add(aid)
            del plan.entries[aid]
    for sid, ids in moving.items():
        _copy_articles(index_dir, sid, ids, plan)
    plan.segments = [base]
    plan.checksums = {base: plan.checksums[base]}


def _carry_kept_articles(index_dir: Path, kept: dict[str, dict], plan: _Plan) -> None:
    """A full build copies a broken article's last good version out of its old segment."""
    by_segment: dict[str, set[str]] = {}
    for aid, entry in kept.items():
        by_segment.setdefault(entry["segment"], set()).add(aid)
    for segment_id, ids in by_segment.items():
        _copy_articles(index_dir, segment_id, ids, plan)


def _copy_articles(index_dir: Path, segment_id: str, ids: set[str], plan: _Plan) -> None:
    """Add these articles' passages and records, as stored in an older segment, to the new one."""
    if ids:
        plan.passages += [p for p in read_segment_passages(index_dir, segment_id) if p.article_id in ids]
        plan.records.update({aid: r for aid, r in read_segment_articles(index_dir, segment_id).items() if aid in ids})


def _build_generation(
    settings: Settings,
    staging: Path,
    previous: Path | None,
    prev_manifest: dict | None,
    plan: _Plan,
    segment_id: str,
    tokenizer: DomainTokenizer,
    signature: dict,
    embedder: Embedder | None,
    progress: ProgressFn | None,
    report: BuildReport,
    timings: dict[str, float],
) -> dict:
    staging.mkdir(parents=True)
    index_dir = Path(settings.index_dir)
    passages = plan.passages

    clock = time.perf_counter()
    analyzed = []
    for n, passage in enumerate(passages, start=1):
        analyzed.append(analyze_passage(passage, tokenizer))
        if progress and (n % 500 == 0 or n == len(passages)):
            progress("analysing", n, len(passages))
    stats = prev_manifest["lexical_stats"] if prev_manifest else average_lengths(analyzed)
    lexical = LexicalSegment.build(analyzed, stats, bm25f_params(settings))
    counts = word_document_counts(analyzed)
    if settings.lexical_backend == "whoosh":
        whoosh_add = passages if plan.add_to_whoosh is None else plan.add_to_whoosh
        _update_whoosh(staging, previous, whoosh_add, plan.delete_from_whoosh, tokenizer)
    timings["lexical"] = time.perf_counter() - clock
    clock = time.perf_counter()

    key = signature["embedding_model"]
    if embedder is None:
        embedder = load_embedder(settings.embedding_model, settings.embedding_runtime, index_dir / "models",
                                 settings.threads)
    embedding_cache = EmbeddingCache(index_dir / "cache" / f"embeddings-{key}.sqlite3")
    questions = [q for p in passages for q in p.questions] if settings.embedded_questions else []
    try:
        vectors, report.embedded = embedding_cache.embed(
            [*(embedding_text(p, settings.embedded_aliases) for p in passages), *questions], embedder, progress)
    finally:
        embedding_cache.close()
    vector_index = FaissVectorIndex.create(embedder.dim, settings.vector_index, settings.hnsw_m)
    vector_index.add(np.arange(len(passages), dtype=np.int64), vectors[: len(passages)])
    question_index = None
    if questions:
        # Vector id = the question's position; the segment maps it back to its passage's row.
        # Always HNSW: three questions per passage made an exact scan the largest cost of a query
        # (2.3 of 10.7 ms at 10k passages), and on the knowledge base HNSW gave the same eval figures.
        question_index = FaissVectorIndex.create(embedder.dim, "hnsw", settings.hnsw_m, half_precision=True)
        question_index.add(np.arange(len(questions), dtype=np.int64), vectors[len(passages):])
    timings["embedding+vectors"] = time.perf_counter() - clock
    clock = time.perf_counter()

    segment_records = [plan.records[aid] for aid in sorted(plan.records)]
    write_segment(index_dir, segment_id, passages, segment_records, lexical, vector_index, counts, question_index)
    checksums = {**{sid: plan.checksums[sid] for sid in plan.segments},
                 segment_id: checksum_digest(segment_path(index_dir, segment_id))}
    passages_per_article = Counter(p.article_id for p in passages)
    entries = dict(plan.entries)
    for record in segment_records:
        entries[record["id"]] = {
            "path": record["path"], "version": record["version"], "hash": record["hash"], "title": record["title"],
            "category": record["category"], "segment": segment_id, "passages": passages_per_article[record["id"]],
        }
    (staging / "tokenizer.json").write_text(json.dumps(list(tokenizer.words), ensure_ascii=False), encoding="utf-8")
    segment_rows = {sid: n for sid, n in (prev_manifest or {}).get("segment_rows", {}).items() if sid in plan.segments}
    segment_rows[segment_id] = len(passages)
    live = sum(e["passages"] for e in entries.values())
    manifest = {
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kb_service_version": __version__,
        "signature": signature,
        "embedding_model": embedder.name,
        "embedding_dim": embedder.dim,
        "lexical_stats": stats,
        "segments": [*plan.segments, segment_id],
        "articles": {aid: entries[aid] for aid in sorted(entries)},
        "passages": live,
        "segment_rows": segment_rows,
        "segment_checksums": checksums,
    }
    (staging / MANIFEST).write_bytes(orjson.dumps(manifest))
    (staging / SEGMENT_LIST).write_text(json.dumps(manifest["segments"]), encoding="utf-8")
    write_checksums(staging)  # last: it covers the manifest, which covers the segments
    report.articles = len(entries)
    report.passages = live
    timings["store+vocabulary"] = time.perf_counter() - clock
    return manifest


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


def _prune(index_dir: Path, keep: int) -> None:
    """Keep the newest generations (a server may still answer from one) and their segments."""
    current = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    generations = sorted((p for p in index_dir.glob("gen-*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in generations[keep:]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
    for stale in index_dir.glob(".building-*"):
        shutil.rmtree(stale, ignore_errors=True)
    referenced: set[str] = set()
    for generation in index_dir.glob("gen-*"):
        try:
            referenced.update(json.loads((generation / SEGMENT_LIST).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            try:
                referenced.update(read_manifest(generation).get("segments", []))
            except (OSError, ValueError):
                return  # a damaged generation: which segments it needs is unknown, delete none this time
    for segment in (index_dir / SEGMENTS_DIR).glob("seg-*"):
        if segment.name not in referenced:
            shutil.rmtree(segment, ignore_errors=True)
