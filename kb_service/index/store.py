"""The on-disk generation store: which generation serves, its manifest, and housekeeping.

An index folder holds immutable segments (`segments/seg-…`, see segments.py) and generations
(`gen-…/`), each a manifest naming the segments and the live version of every article. Only a
complete generation is named in `CURRENT`, written with an atomic rename, so a crash at any
point leaves the previous generation serving. Manifests store article paths relative to the
articles folder: an index built in one checkout (or by CI) is served, and updated, from another.

Builds of one index folder take turns: an exclusive `flock` on `.build.lock`, waited for up to
`Settings.build_lock_timeout` seconds. Under the lock a build first removes what a killed build
left behind (staging folders, temporary CURRENT files).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson

from kb_service.index.integrity import CHECKSUMS, IndexDamagedError, verify_folder
from kb_service.index.records import Manifest
from kb_service.index.segments import SEGMENTS_DIR

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
SEGMENT_LIST = "segments.json"  # the manifest's segment ids alone, for pruning
# Generation layout: 4 = segments with their own vocabulary, rows per segment;
# 5 = article paths relative to the articles folder, records keep the body's first line.
FORMAT = 5
KEEP_GENERATIONS = 3
BUILD_LOCK = ".build.lock"


def article_path(path: Path | str, articles_dir: Path | str) -> str:
    """An article file's path as manifests store it: relative to the articles folder, `/`-separated.

    Articles are listed from the folder itself, so the path is normally the folder joined with a
    name: answered without touching the disk (resolving 25k paths cost 0.3 s of every update)."""
    text, prefix = os.fspath(path), os.fspath(articles_dir).rstrip(os.sep) + os.sep
    if text.startswith(prefix) and ".." not in text[len(prefix):]:
        return text[len(prefix):].replace(os.sep, "/")
    path, folder = Path(path), Path(articles_dir)
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.name


def current_generation(index_dir: Path) -> Path | None:
    pointer = Path(index_dir) / CURRENT
    if not pointer.exists():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    generation = Path(index_dir) / name
    # A generation folder without its manifest is damaged, not absent: verify_generation says so.
    return generation if name.startswith("gen-") and "/" not in name and generation.is_dir() else None


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(generation: Path) -> Manifest:
    """The generation's manifest, unverified (reports, pruning); serving uses verify_generation."""
    # orjson: at 25k articles the manifest is ~5 MB, read and written on every update.
    data = orjson.loads((Path(generation) / MANIFEST).read_bytes())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return Manifest.from_json(data)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    (folder / MANIFEST).write_bytes(orjson.dumps(manifest.to_json()))
    (folder / SEGMENT_LIST).write_text(json.dumps(manifest.segments), encoding="utf-8")


def verify_generation(generation: Path) -> Manifest:
    """The generation's manifest, once its files are verified; IndexDamagedError names the file.

    A generation written before checksums existed (no checksum file, no `segment_checksums` in
    its manifest) is read unverified: its older format then asks for a full build."""
    generation = Path(generation)
    checked = (generation / CHECKSUMS).exists()
    if checked:
        verify_folder(generation, generation.name)
    try:
        manifest = read_manifest(generation)
    except FileNotFoundError:
        raise IndexDamagedError(generation.name, MANIFEST, "missing") from None
    except (OSError, ValueError, TypeError) as exc:
        raise IndexDamagedError(generation.name, MANIFEST, f"unreadable: {exc}") from None
    if not checked and manifest.segment_checksums:
        raise IndexDamagedError(generation.name, CHECKSUMS, "missing")
    return manifest


class BuildLockTimeout(RuntimeError):
    """Another build of the same index folder did not finish in time."""


@contextlib.contextmanager
def build_lock(index_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the index folder's build lock: wait while another build (thread or process) holds it."""
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
                                           f"{timeout:g} s waiting for {BUILD_LOCK} (KB_BUILD_LOCK_TIMEOUT)") from None
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


def prune(index_dir: Path, keep: int = KEEP_GENERATIONS) -> None:
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
                referenced.update(read_manifest(generation).segments)
            except (OSError, ValueError, TypeError):
                return  # a damaged generation: which segments it needs is unknown, delete none this time
    for segment in (index_dir / SEGMENTS_DIR).glob("seg-*"):
        if segment.name not in referenced:
            shutil.rmtree(segment, ignore_errors=True)
