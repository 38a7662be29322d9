"""FAISS vector index behind a small protocol.

One index per segment, over the segment's rows (vector id = row). Deletions never reach FAISS:
a row whose article has a newer version elsewhere is skipped by the snapshot's live mask, so
HNSW, which cannot delete, works the same as exact inner product (`flat`, the default: at
knowledge-base sizes it is fast and loses nothing). `hnsw` is for very large corpora.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np


def limit_search_threads(threads: int) -> None:
    """FAISS scans one query's vectors with OpenMP on every core by default. A search serves one
    query at a time, and the parallel scan measured slower than one thread (10k flat passages:
    1.8 ms on two threads, 1.1 ms on one), and it competes with the other workers' queries;
    `threads` (KB_THREADS) is what the embedder gets too. Process-wide, as OpenMP is."""
    faiss.omp_set_num_threads(max(1, threads))


class VectorIndex(Protocol):
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]: ...
    def vector_sum(self, rows: np.ndarray | None = None, chunk: int = 8192) -> np.ndarray: ...
    def vectors_of(self, ids: np.ndarray) -> np.ndarray: ...
    def save(self, path: Path) -> None: ...
    @property
    def size(self) -> int: ...
    @property
    def dim(self) -> int: ...


class FaissVectorIndex:
    def __init__(self, index: faiss.Index, kind: str) -> None:
        self._index = index
        self.kind = kind

    @classmethod
    def create(cls, dim: int, kind: str = "flat", hnsw_m: int = 32, half_precision: bool = False) -> FaissVectorIndex:
        """`half_precision` stores float16 (half the memory; cosines move by ~1e-3): for the three
        相似问 per passage, which would otherwise triple a large index's vector memory."""
        fp16 = faiss.ScalarQuantizer.QT_fp16
        if kind == "hnsw":
            inner = (faiss.IndexHNSWSQ(dim, fp16, hnsw_m, faiss.METRIC_INNER_PRODUCT) if half_precision
                     else faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT))
            inner.hnsw.efSearch = 64
        else:
            inner = (faiss.IndexScalarQuantizer(dim, fp16, faiss.METRIC_INNER_PRODUCT) if half_precision
                     else faiss.IndexFlatIP(dim))
        return cls(faiss.IndexIDMap2(inner), kind)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self._index.ntotal == 0 or k <= 0:
            return []
        scores, ids = self._index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def vector_sum(self, rows: np.ndarray | None = None, chunk: int = 8192) -> np.ndarray:
        """Sum of the stored vectors of `rows` (a boolean mask by id; all when None), read in chunks
        so that a 100k-row index never has to be copied out whole."""
        inner = faiss.downcast_index(self._index.index)
        ids = faiss.vector_to_array(self._index.id_map)
        total = np.zeros(self._index.d, dtype=np.float64)
        for start in range(0, len(ids), chunk):
            block = inner.reconstruct_n(start, min(chunk, len(ids) - start))
            if rows is not None:
                block = block[rows[ids[start : start + len(block)]]]
            total += block.sum(axis=0, dtype=np.float64)
        return total

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        if len(ids) == 0:
            return np.zeros((0, self._index.d), dtype=np.float32)
        return np.stack([self._index.reconstruct(int(i)) for i in ids])

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))
        Path(f"{path}.meta.json").write_text(json.dumps({"kind": self.kind}))

    @classmethod
    def load(cls, path: Path) -> FaissVectorIndex:
        meta = json.loads(Path(f"{path}.meta.json").read_text())
        return cls(faiss.read_index(str(path)), meta["kind"])
