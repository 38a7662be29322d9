"""m3e-small adapted to agents' questions: a low-rank adapter merged into the bundled weights.

The adapter (scripts/train_embedder.py) holds, for each linear layer of the encoder, two small
matrices A (rank × in) and B (out × rank); the merged weight is W + scale · B·A, so the merged
model is an ordinary BERT folder that the ONNX export and sentence-transformers load as they
load m3e-small. The folder's name carries the adapter's digest: a retrained adapter is a new
model, and vectors embedded by the old one are never mixed with the new.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

LORA_TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def adapter_digest(adapter_file: Path) -> str:
    return hashlib.sha256(adapter_file.read_bytes()).hexdigest()[:10]


def merged_weights(state: dict[str, np.ndarray], adapter: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The base state dict with every adapted linear weight replaced by W + scale · B·A."""
    scale = float(adapter["scale"])
    merged = dict(state)
    for key in adapter:
        if not key.endswith(".a"):
            continue
        layer = key[: -len(".a")]
        weight = f"{layer}.weight"
        if weight not in merged:
            raise ValueError(f"adapter layer {layer} is not in the base model")
        merged[weight] = merged[weight] + scale * (adapter[f"{layer}.b"] @ adapter[key])
    return merged


def merge_adapter(base_path: Path, adapter_file: Path, out_dir: Path) -> Path:
    """Write base + adapter as a model folder (once; an existing complete folder is reused)."""
    if (out_dir / "config.json").exists():
        return out_dir
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(base_path), local_files_only=True)
    with np.load(adapter_file) as loaded:
        adapter = {k: loaded[k] for k in loaded.files}
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    merged = merged_weights(state, adapter)
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in merged.items()})
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    for name in TOKENIZER_FILES:
        if (base_path / name).exists():
            shutil.copy2(base_path / name, staging / name)
    staging.replace(out_dir)  # config.json appears only with the whole folder
    return out_dir
