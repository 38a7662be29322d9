"""FAISS vector index: sums of stored vectors, read back without copying the index out whole."""

from __future__ import annotations

import numpy as np
import pytest

from kb_service.index.vectors import FaissVectorIndex


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_vector_sum_over_all_and_masked_rows_in_chunks(kind: str) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    index = FaissVectorIndex.create(8, kind)
    index.add(np.arange(50), vectors)
    mask = np.zeros(50, dtype=bool)
    mask[[0, 7, 8, 31, 49]] = True
    assert np.allclose(index.vector_sum(chunk=7), vectors.sum(axis=0), atol=1e-4)
    assert np.allclose(index.vector_sum(mask, chunk=7), vectors[mask].sum(axis=0), atol=1e-4)
    assert np.allclose(index.vectors_of(np.array([31, 2])), vectors[[31, 2]])
    assert index.vectors_of(np.array([], dtype=np.int64)).shape == (0, 8)


def test_search_threads_follow_the_setting() -> None:
    """OpenMP would otherwise scan one query's vectors on every core (slower per query here)."""
    import faiss

    from kb_service.index.vectors import limit_search_threads

    before = faiss.omp_get_max_threads()
    try:
        limit_search_threads(1)
        assert faiss.omp_get_max_threads() == 1
        limit_search_threads(0)  # a nonsense setting still leaves one thread
        assert faiss.omp_get_max_threads() == 1
    finally:
        faiss.omp_set_num_threads(before)
