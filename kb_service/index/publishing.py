"""Publishing index generations to a store shared by replicas, and fetching them back.

`kb index` builds a generation in one index folder; replicas on other machines each serve from
their own local index folder. A `GenerationStore` sits between them: the indexer `publish`es a
generation (its folder and the segments it references), a replica `fetch`es it into its local
folder, verifies every checksum there, and only then names it in its local `CURRENT` — so the
replica's `IndexPoller` (or a direct `engine.reload()`) loads it beside the old one and swaps.

The protocol is small on purpose so an object store (S3, OSS) can implement it later with the same
layout under a key prefix: `segments/seg-…/` (immutable, uploaded once), `gen-…/` (a manifest with
relative paths and per-segment checksums), `LATEST` (the name of the newest published generation,
replaced atomically). `DirectoryGenerationStore` is the shared-folder implementation (NFS, a
mounted volume): every copy goes to a temporary name first and is renamed into place, so a reader
never sees half a segment or half a generation, and `LATEST` is written with an atomic rename.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from kb_service.index.integrity import IndexDamagedError, verify_folder
from kb_service.index.records import Manifest
from kb_service.index.segments import SEGMENTS_DIR, segment_part
from kb_service.index.store import (
    CURRENT,
    build_lock,
    current_generation,
    prune,
    read_manifest,
    verify_generation,
    write_atomic,
)

log = logging.getLogger(__name__)

LATEST = "LATEST"
KEEP_PUBLISHED = 5  # generations kept in the store besides LATEST: a slow replica may still be fetching one
PRUNE_GRACE_SECONDS = 600.0  # nothing that arrived in the store this recently is removed
INCOMING = ".incoming-"  # a copy in progress in the store; never read, cleared by the next publish
LOCAL_STAGING = ".building-fetch-"  # a fetch in progress in a local index folder (remove_leftovers clears it)


class GenerationStoreError(RuntimeError):
    """The store cannot be used (missing, unknown kind) or a generation is not in it."""


@dataclass
class PublishReport:
    generation: str
    segments_copied: list[str] = field(default_factory=list)
    segments_present: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)  # old generations and segments removed from the store
    seconds: float = 0.0


@dataclass
class FetchReport:
    generation: str
    switched: bool  # False: it was already the local CURRENT
    segments_copied: list[str] = field(default_factory=list)
    seconds: float = 0.0


class GenerationStore(Protocol):
    """Where the indexer puts generations and replicas take them from."""

    location: str

    def publish(self, index_dir: Path, generation: str) -> PublishReport:
        """Copy a verified local generation (and the segments the store lacks), then make it LATEST."""
        ...

    def fetch(self, generation: str, local_index_dir: Path) -> FetchReport:
        """Copy a published generation into a local index folder, verify it, then write local CURRENT.

        Raises IndexDamagedError (and leaves the local CURRENT alone) when a checksum fails."""
        ...

    def latest(self) -> str | None:
        """The newest published generation's name, None before the first publish."""
        ...

    def generations(self) -> list[str]:
        """Every published generation, oldest first."""
        ...


def _valid_name(name: str, prefix: str) -> bool:
    return name.startswith(prefix) and "/" not in name and "\\" not in name and name not in (".", "..")


def check_relative(manifest: Manifest, generation: str) -> None:
    """A published manifest names files relative to their folders only: another machine serves it."""
    for article_id, entry in manifest.articles.items():
        path = PurePosixPath(entry.path)
        if path.is_absolute() or ".." in path.parts or Path(entry.path).is_absolute():
            raise IndexDamagedError(generation, "manifest.json", f"article {article_id}: path {entry.path!r} is not relative")
    for segment in manifest.segments:
        if not _valid_name(segment, "seg-"):
            raise IndexDamagedError(generation, "manifest.json", f"segment name {segment!r}")


def _copy_into_place(source: Path, target: Path, staging: Path, verify_part: str | None = None,
                     digest: str | None = None) -> bool:
    """Copy `source` to `staging`, verify it there when asked, then rename it to `target`.

    False when `target` appeared meanwhile (another publisher or fetcher won): the copy is dropped."""
    try:
        shutil.copytree(source, staging)
        if verify_part is not None:
            verify_folder(staging, verify_part, digest)
        if target.exists():
            return False
        try:
            staging.rename(target)
        except OSError:
            if target.is_dir():  # another copy won the race between the check and the rename
                return False
            raise
        os.utime(target)  # the arrival time, not the build's: pruning spares what just arrived
        return True
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


class DirectoryGenerationStore:
    """A shared folder as the generation store (see the module docstring for its layout)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.location = str(self.root)

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise GenerationStoreError(f"generation store {self.root} does not exist (KB_GENERATION_STORE)")

    def publish(self, index_dir: Path, generation: str) -> PublishReport:
        started = time.perf_counter()
        self._require_root()
        if not _valid_name(generation, "gen-"):
            raise GenerationStoreError(f"not a generation name: {generation!r}")
        local = Path(index_dir) / generation
        manifest = verify_generation(local)  # never publish what is already damaged here
        check_relative(manifest, generation)
        (self.root / SEGMENTS_DIR).mkdir(exist_ok=True)
        self._clear_incoming()
        report = PublishReport(generation)
        for segment in manifest.segments:
            target = self.root / SEGMENTS_DIR / segment
            if target.is_dir():
                report.segments_present.append(segment)
                continue
            staging = self.root / SEGMENTS_DIR / f"{INCOMING}{segment}-{uuid.uuid4().hex[:8]}"
            # Verified on the way in: a segment damaged on the indexer's disk is not shared.
            if _copy_into_place(Path(index_dir) / SEGMENTS_DIR / segment, target, staging, segment_part(segment),
                                manifest.segment_checksums.get(segment)):
                report.segments_copied.append(segment)
            else:
                report.segments_present.append(segment)
        target = self.root / generation
        if not target.is_dir():
            _copy_into_place(local, target, self.root / f"{INCOMING}{generation}-{uuid.uuid4().hex[:8]}")
        write_atomic(self.root / LATEST, generation)  # only now can a replica see it
        report.pruned = self.prune()
        report.seconds = time.perf_counter() - started
        log.info("published %s to %s (%d segments copied, %d already there)", generation, self.root,
                 len(report.segments_copied), len(report.segments_present))
        return report

    def _clear_incoming(self) -> None:
        """Remove copies a killed publisher left; only those older than a minute (one may be running)."""
        cutoff = time.time() - 60
        for path in [*self.root.glob(f"{INCOMING}*"), *(self.root / SEGMENTS_DIR).glob(f"{INCOMING}*")]:
            try:
                if path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                continue

    def prune(self, keep: int = KEEP_PUBLISHED, grace_seconds: float = PRUNE_GRACE_SECONDS) -> list[str]:
        """Remove old generations and the segments no remaining generation needs; returns what went.

        Without it the shared store grows by a generation per edit, forever. LATEST, the `keep`
        newest generations and anything that arrived within `grace_seconds` stay: a replica may be
        fetching an older generation, and another publisher's segments land before its manifest."""
        cutoff = time.time() - grace_seconds
        latest = self.latest()
        removed: list[str] = []
        published = self.generations()  # oldest first
        for old in published[: max(len(published) - keep, 0)]:
            path = self.root / old
            if old != latest and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(old)
        referenced: set[str] = set()
        for generation in self.generations():
            try:
                referenced.update(read_manifest(self.root / generation).segments)
            except (OSError, ValueError, TypeError, KeyError):
                return removed  # a generation whose segments are unknown: delete no segment this time
        for segment in (self.root / SEGMENTS_DIR).glob("seg-*"):
            if segment.name not in referenced and segment.stat().st_mtime < cutoff:
                shutil.rmtree(segment, ignore_errors=True)
                removed.append(f"{SEGMENTS_DIR}/{segment.name}")
        if removed:
            log.info("pruned %d old generations and segments from %s", len(removed), self.root)
        return removed

    def latest(self) -> str | None:
        try:
            name = (self.root / LATEST).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise GenerationStoreError(f"cannot read {self.root / LATEST}: {exc.strerror}") from None
        return name if _valid_name(name, "gen-") else None

    def generations(self) -> list[str]:
        found = [p for p in self.root.glob("gen-*") if p.is_dir()]
        return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime)]

    def fetch(self, generation: str, local_index_dir: Path) -> FetchReport:
        started = time.perf_counter()
        self._require_root()
        if not _valid_name(generation, "gen-"):
            raise GenerationStoreError(f"not a generation name: {generation!r}")
        source = self.root / generation
        if not source.is_dir():
            raise GenerationStoreError(f"generation {generation} is not in the store {self.root}")
        local_dir = Path(local_index_dir)
        local_dir.mkdir(parents=True, exist_ok=True)
        (local_dir / SEGMENTS_DIR).mkdir(exist_ok=True)
        # One fetch or build at a time per local folder (the LISTEN wake-up and the poll may race).
        with build_lock(local_dir, timeout=600):
            current = current_generation(local_dir)
            if current is not None and current.name == generation:
                return FetchReport(generation, switched=False, seconds=time.perf_counter() - started)
            report = FetchReport(generation, switched=True)
            manifest = self._fetch_generation(source, local_dir)
            for segment in manifest.segments:
                if (local_dir / SEGMENTS_DIR / segment).is_dir():
                    continue  # verified when it was fetched or built; the engine re-verifies on load
                staging = local_dir / SEGMENTS_DIR / f"{LOCAL_STAGING}{segment}-{uuid.uuid4().hex[:8]}"
                _copy_into_place(self.root / SEGMENTS_DIR / segment, local_dir / SEGMENTS_DIR / segment, staging,
                                 segment_part(segment), manifest.segment_checksums.get(segment))
                report.segments_copied.append(segment)
            write_atomic(local_dir / CURRENT, generation)  # everything verified: the poller may switch
            prune(local_dir)
        report.seconds = time.perf_counter() - started
        return report

    def _fetch_generation(self, source: Path, local_dir: Path) -> Manifest:
        """The generation folder, copied and verified locally (or already there and verified)."""
        target = local_dir / source.name
        if target.is_dir():
            manifest = verify_generation(target)
        else:
            staging = local_dir / f"{LOCAL_STAGING}{source.name}-{uuid.uuid4().hex[:8]}"
            try:
                shutil.copytree(source, staging)
                manifest = verify_generation(staging)
                if not manifest.segment_checksums:
                    raise IndexDamagedError(source.name, "manifest.json", "no segment checksums: cannot verify")
                check_relative(manifest, source.name)
                staging.rename(target)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
        return manifest


def open_generation_store(location: str | Path) -> GenerationStore:
    """The store a KB_GENERATION_STORE value names: a folder today; object stores are refused clearly."""
    text = str(location)
    if "://" in text and not text.startswith("file://"):
        raise GenerationStoreError(f"generation store {text!r}: only a shared folder is supported "
                                   "(an object store needs its own GenerationStore implementation)")
    return DirectoryGenerationStore(Path(text.removeprefix("file://")))


__all__ = [
    "LATEST",
    "DirectoryGenerationStore",
    "FetchReport",
    "GenerationStore",
    "GenerationStoreError",
    "PublishReport",
    "check_relative",
    "open_generation_store",
]
