"""Passage vectors by text hash, so a rebuild or a merge re-embeds only what changed.

Kept in SQLite rather than one array file: an edit looks up and adds a handful of vectors, and
rewriting a 100k x 512 array (200 MB) for that measured ~1 s per update.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kb_service.index.embedding import Embedder

ProgressFn = Callable[[str, int, int], None]
_LOOKUP_CHUNK = 500  # below SQLite's bound-parameter limit


class EmbeddingCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        self._import_array_file(self.path.with_suffix(".npz"))

    def _import_array_file(self, legacy: Path) -> None:
        """Take over the vectors of the earlier single-file cache once, then delete it."""
        if not legacy.exists():
            return
        with np.load(legacy) as data:
            rows = [(str(k), np.asarray(v, dtype=np.float32).tobytes()) for k, v in zip(data["keys"], data["vectors"], strict=True)]
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?)", rows)
        legacy.unlink()

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def lookup(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk):  # noqa: S608
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def embed(self, texts: list[str], embedder: Embedder, progress: ProgressFn | None = None,
              batch: int = 64) -> tuple[np.ndarray, int]:
        """Vectors for `texts` in order, and how many had to be embedded."""
        keys = [self.key(t) for t in texts]
        vectors = self.lookup(keys)
        # Similar lengths in one batch: padding to the longest text is wasted compute.
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in vectors}.items(),
                         key=lambda item: len(item[1]))
        for start in range(0, len(missing), batch):
            chunk = missing[start : start + batch]
            encoded = embedder.encode([t for _, t in chunk])
            rows = []
            for (k, _), v in zip(chunk, encoded, strict=True):
                vectors[k] = np.asarray(v, dtype=np.float32)
                rows.append((k, vectors[k].tobytes()))
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            if progress:
                progress("embedding", min(start + batch, len(missing)), len(missing))
        dim = getattr(embedder, "dim", 0)
        matrix = np.stack([vectors[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)
        return matrix, len(missing)

    def close(self) -> None:
        self._db.close()
