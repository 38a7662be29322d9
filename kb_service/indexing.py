"""Build the lexical and semantic indexes into a new generation, then switch atomically.

A build never touches the generation that is serving: it writes `indexes/gen-…/`, and only a
complete generation is named in `indexes/CURRENT` (written with an atomic rename). A crash at
any point leaves the previous generation serving. After an edit, only changed, added and
removed articles are re-indexed and re-embedded; an article that fails validation keeps its
last good version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .analysis import DomainTokenizer
from .embedding import Embedder, load_embedder, model_key
from .lexical_index import LexicalIndex
from .lexicon import Lexicon, load_lexicon
from .models import Article, Passage, Problem
from .settings import Settings
from .spelling import HomophoneCorrector
from .validation import check_knowledge_base
from .vector_index import FaissVectorIndex

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
KEEP_GENERATIONS = 3
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
    embedded: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for benchmarks

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.changed or self.removed) and not self.full


def embedding_text(passage: Passage) -> str:
    """What the embedder sees: the heading path gives a short section its topic."""
    return f"{passage.title}｜{passage.heading}\n{passage.text}" if passage.heading else f"{passage.title}\n{passage.text}"


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def current_generation(index_dir: Path) -> Path | None:
    pointer = Path(index_dir) / CURRENT
    if not pointer.exists():
        return None
    generation = Path(index_dir) / pointer.read_text(encoding="utf-8").strip()
    return generation if (generation / MANIFEST).exists() else None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _link_tree(source: Path, target: Path) -> None:
    """Copy a Whoosh folder by hard links: its segment files are never modified in place."""
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.is_file() and not item.name.endswith(".lock") and "LOCK" not in item.name:
            try:
                os.link(item, target / item.name)
            except OSError:
                shutil.copy2(item, target / item.name)


class EmbeddingCache:
    """Vectors by passage-text hash, so a rebuild re-embeds only what changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._vectors: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path) as data:
                for key, row in zip(data["keys"], data["vectors"], strict=True):
                    self._vectors[str(key)] = row
        self.dirty = False

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def embed(self, texts: list[str], embedder: Embedder, progress: ProgressFn | None = None, batch: int = 64) -> tuple[np.ndarray, int]:
        keys = [self.key(t) for t in texts]
        # Similar lengths in one batch: padding to the longest text is wasted compute.
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items(),
                         key=lambda item: len(item[1]))
        for start in range(0, len(missing), batch):
            chunk = missing[start : start + batch]
            vectors = embedder.encode([t for _, t in chunk])
            for (k, _), v in zip(chunk, vectors, strict=True):
                self._vectors[k] = v.astype(np.float32)
            if progress:
                progress("embedding", min(start + batch, len(missing)), len(missing))
        if missing:
            self.dirty = True
        dim = getattr(embedder, "dim", 0)
        matrix = np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)
        return matrix, len(missing)

    def save(self, keep: Iterable[str] | None = None) -> None:
        if not self.dirty:
            return
        if keep is not None:
            wanted = set(keep)
            self._vectors = {k: v for k, v in self._vectors.items() if k in wanted}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:8]}.npz")
        keys = np.array(list(self._vectors), dtype="U40")
        vectors = np.stack(list(self._vectors.values())) if self._vectors else np.zeros((0, 1), np.float32)
        np.savez(tmp, keys=keys, vectors=vectors)
        os.replace(tmp, self.path)
        self.dirty = False


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False))
            fh.write("\n")


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


def index_signature(settings: Settings, lexicon: Lexicon) -> dict:
    """Everything that, when it changes, invalidates the whole index."""
    tokenizer = DomainTokenizer(lexicon.dictionary_words)
    return {
        "format": 1,
        "embedding_model": model_key(settings.embedding_model, settings.embedding_runtime),
        "vector_index": settings.vector_index,
        "tokenizer": tokenizer.fingerprint,
        "max_passage_chars": settings.max_passage_chars,
    }


def build_index(
    settings: Settings,
    *,
    full: bool = False,
    embedder: Embedder | None = None,
    progress: ProgressFn | None = None,
) -> BuildReport:
    """Build or update the indexes; returns what changed. Raises only on real failures."""
    started = time.perf_counter()
    index_dir = Path(settings.index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    check = check_knowledge_base(settings.articles_dir, settings)
    lexicon = load_lexicon(settings.lexicon_path) if Path(settings.lexicon_path).exists() else Lexicon()
    tokenizer = DomainTokenizer(lexicon.dictionary_words)
    signature = index_signature(settings, lexicon)

    previous = current_generation(index_dir)
    prev_manifest = json.loads((previous / MANIFEST).read_text(encoding="utf-8")) if previous else None
    incremental = bool(prev_manifest) and not full and prev_manifest.get("signature") == signature
    prev_articles: dict[str, dict] = prev_manifest["articles"] if incremental else {}

    digests = {a.id: file_hash(a.path) for a in check.articles}
    current = {a.id: a for a in check.articles}
    # A broken file that was indexed before keeps its last good version.
    broken = {str(p) for p in check.broken_paths}
    kept = {aid: rec for aid, rec in prev_articles.items() if rec["path"] in broken and aid not in current}
    added = sorted(a for a in current if a not in prev_articles)
    changed = sorted(a for a in current if a in prev_articles and prev_articles[a]["hash"] != digests[a])
    removed = sorted(a for a in prev_articles if a not in current and a not in kept)
    report = BuildReport(generation="", full=not incremental, added=added, changed=changed, removed=removed,
                         kept_last_good=sorted(kept), problems=check.problems)
    if incremental and not (added or changed or removed):
        report.generation = previous.name
        report.articles = len(prev_articles)
        report.passages = prev_manifest["passages"]
        report.seconds = time.perf_counter() - started
        return report

    generation = index_dir / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    staging = index_dir / f".building-{generation.name}"
    try:
        _build_generation(settings, staging, previous if incremental else None, prev_manifest if incremental else None,
                          check.passages, current, digests, kept, added + changed, changed + removed,
                          tokenizer, signature, embedder, progress, report)
        os.replace(staging, generation)
        _write_atomic(index_dir / CURRENT, generation.name)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    report.generation = generation.name
    _prune_generations(index_dir, keep=KEEP_GENERATIONS)
    report.seconds = time.perf_counter() - started
    return report


def _build_generation(
    settings: Settings,
    staging: Path,
    previous: Path | None,
    prev_manifest: dict | None,
    passages: list[Passage],
    current: dict[str, Article],
    digests: dict[str, str],
    kept: dict[str, dict],
    to_add: list[str],
    to_delete: list[str],
    tokenizer: DomainTokenizer,
    signature: dict,
    embedder: Embedder | None,
    progress: ProgressFn | None,
    report: BuildReport,
) -> None:
    staging.mkdir(parents=True)
    by_article: dict[str, list[Passage]] = {}
    for passage in passages:
        by_article.setdefault(passage.article_id, []).append(passage)

    prev_rows = _read_jsonl(previous / "passages.jsonl") if previous else []
    prev_by_article: dict[str, list[dict]] = {}
    for row in prev_rows:
        prev_by_article.setdefault(row["passage"]["article_id"], []).append(row)
    keep_ids = set(kept) | {a for a in current if a not in to_add}
    new_passages = [p for aid in (to_add if previous else list(current)) for p in by_article.get(aid, [])]

    clock = time.perf_counter()
    # Lexical
    if previous:
        _link_tree(previous / "lexical", staging / "lexical")
        lexical = LexicalIndex.open(staging / "lexical")
        lexical.update(new_passages, delete_articles=to_delete)
    else:
        lexical = LexicalIndex.create(staging / "lexical", tokenizer)
        lexical.update(new_passages)
    counts = lexical.word_counts()
    lexical.close()
    report.timings["lexical"] = time.perf_counter() - clock
    clock = time.perf_counter()

    # Semantic
    key = signature["embedding_model"]
    cache = EmbeddingCache(Path(settings.index_dir) / "cache" / f"embeddings-{key}.npz")
    if embedder is None:
        embedder = load_embedder(settings.embedding_model, settings.embedding_runtime,
                                 Path(settings.index_dir) / "models", settings.threads)
    vectors, report.embedded = cache.embed([embedding_text(p) for p in new_passages], embedder, progress)
    next_id = prev_manifest["next_vector_id"] if prev_manifest else 0
    new_ids = np.arange(next_id, next_id + len(new_passages), dtype=np.int64)
    if previous:
        vector_index = FaissVectorIndex.load(previous / "vectors.faiss")
        stale = [row["vid"] for aid in to_delete for row in prev_by_article.get(aid, [])]
        vector_index.remove(np.array(stale, dtype=np.int64))
    else:
        vector_index = FaissVectorIndex.create(embedder.dim, settings.vector_index, settings.hnsw_m)
    vector_index.add(new_ids, vectors)
    vector_index.save(staging / "vectors.faiss")
    report.timings["embedding+vectors"] = time.perf_counter() - clock
    clock = time.perf_counter()

    # Passages, articles, homophone vocabulary
    rows = [row for aid in sorted(keep_ids) for row in prev_by_article.get(aid, [])]
    rows += [{"vid": int(vid), "passage": p.to_dict()} for vid, p in zip(new_ids, new_passages, strict=True)]
    _write_jsonl(staging / "passages.jsonl", rows)
    records = {aid: article_record(a, digests[aid]) for aid, a in current.items()}
    prev_records = {r["id"]: r for r in _read_jsonl(previous / "articles.jsonl")} if previous else {}
    for aid in kept:
        records[aid] = prev_records.get(aid, kept[aid])
    _write_jsonl(staging / "articles.jsonl", (records[a] for a in sorted(records)))

    corrector = HomophoneCorrector.build(counts | Counter({w: 10_000 for w in tokenizer.words}))
    (staging / "spelling.json").write_text(json.dumps(corrector.to_dict(), ensure_ascii=False), encoding="utf-8")
    (staging / "tokenizer.json").write_text(json.dumps(list(tokenizer.words), ensure_ascii=False), encoding="utf-8")

    manifest = {
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kb_service_version": __version__,
        "signature": signature,
        "embedding_model": embedder.name,
        "embedding_dim": embedder.dim,
        "articles": {aid: {"path": rec["path"], "version": rec["version"], "hash": rec["hash"]} for aid, rec in records.items()},
        "passages": len(rows),
        "next_vector_id": int(next_id + len(new_passages)),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    report.articles = len(records)
    report.passages = len(rows)
    cache.save()
    report.timings["store+vocabulary"] = time.perf_counter() - clock


def _prune_generations(index_dir: Path, keep: int) -> None:
    """Keep the newest generations: a server may still be answering from the previous one."""
    current = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    generations = sorted((p for p in index_dir.glob("gen-*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in generations[keep:]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
    for stale in index_dir.glob(".building-*"):
        shutil.rmtree(stale, ignore_errors=True)
