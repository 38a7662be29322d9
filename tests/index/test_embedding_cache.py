"""The embedding cache: a real SQLite file and the real (numpy) USE embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import CountingEmbedder

from kb_service.index.embedding import load_embedder
from kb_service.index.embedding_cache import EmbeddingCache


def test_only_new_texts_are_embedded_and_vectors_survive_reopening(tmp_path: Path) -> None:
    embedder = CountingEmbedder(load_embedder("use-multilingual", "", tmp_path / "models", 1))
    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    first, embedded = cache.embed(["交强险赔偿限额", "盗抢险等待期", "交强险赔偿限额"], embedder)
    assert embedded == 2 and first.shape == (3, embedder.dim) and np.array_equal(first[0], first[2])
    cache.close()
    reopened = EmbeddingCache(tmp_path / "cache.sqlite3")
    second, embedded = reopened.embed(["盗抢险等待期", "玻璃单独破碎险"], embedder)
    assert embedded == 1 and embedder.texts[-1] == "玻璃单独破碎险"
    assert np.array_equal(second[0], first[1])


def test_vectors_of_the_old_array_file_are_taken_over(tmp_path: Path) -> None:
    key = EmbeddingCache.key("理赔流程")
    np.savez(tmp_path / "cache.npz", keys=np.array([key], dtype="U40"), vectors=np.ones((1, 4), dtype=np.float32))
    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    assert not (tmp_path / "cache.npz").exists()
    assert cache.lookup([key])[key].tolist() == [1.0, 1.0, 1.0, 1.0]
