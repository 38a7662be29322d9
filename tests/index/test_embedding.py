"""The int8 ONNX embedder: many texts run in parallel give exactly the vectors of one-by-one runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb_service.index.embedding import load_embedder


@pytest.mark.model
def test_parallel_encoding_gives_the_vectors_of_one_text_per_call(tmp_path: Path) -> None:
    embedder = load_embedder("m3e-small", "onnx-int8", tmp_path / "models", 1)  # exports the int8 model here
    texts = [f"车辆被盗抢后第{i}天，客户问理赔需要报警证明和未找回证明吗" + "。" * (i % 7) for i in range(24)]
    together = embedder.encode(texts)  # several texts: spread over the cores
    alone = np.stack([embedder.encode([t])[0] for t in texts])  # one per call: the query path
    assert together.shape == (24, embedder.dim)
    assert np.array_equal(together, alone)
    assert not np.allclose(together[0], together[1])  # different texts, different vectors


@pytest.mark.model
def test_a_query_embedded_on_two_threads_gets_the_vector_of_one_thread(tmp_path: Path) -> None:
    """A query embeds on every core the workers leave free (`Settings.query_embedding_threads`),
    while the index was embedded one thread per text: the two must land on the same vector."""
    one = load_embedder("m3e-small", "onnx-int8", tmp_path / "models", 1)
    two = load_embedder("m3e-small", "onnx-int8", tmp_path / "models", 2)
    queries = ["三者险赔多少", "客户说车停在地下车库被水泡了，问要准备什么材料才能申请理赔"]
    for query in queries:
        a, b = one.encode([query])[0], two.encode([query])[0]
        assert float(a @ b) > 0.9999
    assert float(one.encode([queries[0]])[0] @ one.encode([queries[1]])[0]) < 0.99
