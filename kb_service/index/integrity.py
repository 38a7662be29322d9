"""Checksums of index segments and generations, and the one error a damaged index raises.

A segment (segments/seg-…/) and a generation (gen-…/) each hold a `checksums.json`: the SHA-256
and size of every other file in the folder, by relative name, written last and atomically. The
generation's manifest records each segment's checksum-file digest, and the generation's own
checksum file covers the manifest, so CURRENT → generation → segments is one verified chain.

Hashing costs ~0.7 ms per MB (hashlib's SHA-256, one core): a snapshot verifies the generation
and the segments it reads from disk; a reload reuses the segments already loaded (verified when
they were loaded) and so hashes only the new ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

CHECKSUMS = "checksums.json"
_CHUNK = 1 << 20


class IndexDamagedError(RuntimeError):
    """A segment or generation on disk is not what was written; the message is one line."""

    def __init__(self, part: str, file: str, problem: str) -> None:
        self.part, self.file, self.problem = part, file, problem
        where = f"{part}/{file}" if file else part
        detail = " ".join(str(problem).split())  # one line, whatever a reader's error said
        super().__init__(f"index damaged: {where}: {detail} — run `kb index` to repair")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _skipped(name: str) -> bool:
    # Whoosh lock files come and go; temporary files belong to an unfinished write.
    return name == CHECKSUMS or name.endswith((".lock", ".tmp")) or "LOCK" in name


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not _skipped(p.name))


def write_checksums(folder: Path) -> str:
    """Record every file of `folder`; returns the digest of the checksum file itself."""
    folder = Path(folder)
    entries = {name: {"sha256": sha256_file(folder / name), "size": (folder / name).stat().st_size}
               for name in _files(folder)}
    data = json.dumps({"files": entries}, sort_keys=True).encode("utf-8")
    tmp = folder / f".{CHECKSUMS}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / CHECKSUMS)
    return hashlib.sha256(data).hexdigest()


def checksum_digest(folder: Path) -> str | None:
    """Digest of the folder's checksum file, None when it has none."""
    path = Path(folder) / CHECKSUMS
    return sha256_file(path) if path.is_file() else None


def verify_folder(folder: Path, part: str, expected_digest: str | None = None) -> None:
    """Raise IndexDamagedError naming `part` and the file unless every recorded file is intact.

    `expected_digest`: what the referring manifest recorded for this folder's checksum file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IndexDamagedError(part, "", "folder missing")
    path = folder / CHECKSUMS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexDamagedError(part, CHECKSUMS, "missing") from None
    except OSError as exc:
        raise IndexDamagedError(part, CHECKSUMS, f"unreadable ({exc.strerror})") from None
    if expected_digest is not None and hashlib.sha256(data).hexdigest() != expected_digest:
        raise IndexDamagedError(part, CHECKSUMS, "does not match the generation manifest")
    try:
        entries = json.loads(data)["files"]
        recorded = {str(name): (str(e["sha256"]), int(e["size"])) for name, e in entries.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise IndexDamagedError(part, CHECKSUMS, "unreadable") from None
    for name, (sha256, size) in sorted(recorded.items()):
        target = folder / name
        try:
            actual_size = target.stat().st_size
        except FileNotFoundError:
            raise IndexDamagedError(part, name, "missing") from None
        if actual_size != size:
            raise IndexDamagedError(part, name, f"{actual_size} bytes, {size} written")
        try:
            actual = sha256_file(target)
        except OSError as exc:
            raise IndexDamagedError(part, name, f"unreadable ({exc.strerror})") from None
        if actual != sha256:
            raise IndexDamagedError(part, name, "checksum mismatch")
