"""Adapt m3e-small to how agents ask: a low-rank adapter (LoRA) trained on questions per section.

Why: most misses on unseen pasted messages and situations are semantic (m3e-small does not see
what a story is about); the issue suggests a training pool of extra questions per section, written
blind to every labelled set and never indexed. This trains a LoRA adapter over m3e-small's linear
layers with in-batch negatives (the section's own other pieces and questions are never counted as
negatives), on what the engine would embed for each question (after query reading), against the
section's passage text as indexed. The adapter is small (about 1 MB) and is merged into the base
weights when the model `m3e-small-kb` is first loaded (kb_service/index/adapter.py).

    python scripts/train_embedder.py --pool training/queries.jsonl --out kb_service/resources/m3e-small-kb-lora.npz

Needs a built index of the articles (`kb index`), since queries are read by its analyzer.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np


def training_pairs(pool_files: list[Path], with_questions: bool) -> tuple[list[tuple[str, int]], list[list[str]]]:
    """(query text as embedded, section number) pairs and each section's passage texts."""
    from kb_service.index.builder import embedding_text
    from kb_service.query.reading import read_query
    from kb_service.search.engine import SearchEngine
    from kb_service.settings import Settings

    settings = Settings()
    engine = SearchEngine.open(settings)
    snap = engine._snapshot  # noqa: SLF001 - the same analyzer the engine reads queries with
    sections: dict[tuple[str, str], int] = {}
    texts: list[list[str]] = []
    questions: list[tuple[str, int]] = []
    for passage in sorted(engine.passages(), key=lambda p: (p.article_id, p.ordinal)):
        key = (passage.article_id, passage.heading)
        if key not in sections:
            sections[key] = len(texts)
            texts.append([])
            if with_questions:
                questions += [(q, sections[key]) for q in passage.questions]
        texts[sections[key]].append(embedding_text(passage, settings.embedded_aliases))
    raw = list(questions)
    missing = 0
    for path in pool_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            key = (row["article"], row["heading"])
            if key not in sections:
                missing += 1
                continue
            raw.append((row["query"], sections[key]))
    pairs = []
    for query, section in raw:
        reading = read_query(query, settings.max_query_chars)
        question = reading.questions[0] if reading.questions else query
        pairs.append((snap.analyzer.analyze(question).semantic_text, section))
    print(f"{len(pairs)} pairs over {len(texts)} sections ({missing} pool rows name no section)")
    return pairs, texts


def attach_lora(model, rank: int, alpha: float):  # type: ignore[no-untyped-def]
    """Wrap every linear layer of the encoder in a trainable low-rank update; freeze the rest."""
    import torch

    from kb_service.index.adapter import LORA_TARGETS

    class LoRALinear(torch.nn.Module):
        def __init__(self, base: torch.nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.a = torch.nn.Parameter(torch.randn(rank, base.in_features) / base.in_features**0.5)
            self.b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = alpha / rank

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.base(x) + (x @ self.a.T @ self.b.T) * self.scale

    for parameter in model.parameters():
        parameter.requires_grad = False
    wrapped = {}
    for name, module in list(model.named_modules()):
        for target in LORA_TARGETS:
            if name.endswith(target) and isinstance(module, torch.nn.Linear):
                parent = model.get_submodule(name.rsplit(".", 1)[0])
                lora = LoRALinear(module)
                setattr(parent, name.rsplit(".", 1)[1], lora)
                wrapped[name] = lora
                break
    return wrapped


def mean_pool(model, tokenizer, texts: list[str], max_length: int):  # type: ignore[no-untyped-def]
    import torch

    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def passage_matrix(texts: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Every passage's vector as the index holds it (the base model, as the engine runs it) and its section."""
    from kb_service.index.embedding import load_embedder
    from kb_service.settings import Settings

    settings = Settings()
    embedder = load_embedder(settings.embedding_model, settings.embedding_runtime, settings.index_dir / "models", 2)
    flat = [(text, section) for section, pieces in enumerate(texts) for text in pieces]
    return embedder.encode([t for t, _ in flat]), np.array([s for _, s in flat])


def train(pairs: list[tuple[str, int]], texts: list[list[str]], args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Query side only: the passages keep the base model's vectors, so only short texts pass through
    the model (a symmetric update of 256-token passages cost 13 s a step on two cores)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from kb_service.index.embedding import bundled_m3e_path

    vectors, owner = passage_matrix(texts)
    passages = torch.from_numpy(np.asarray(vectors, dtype=np.float32))
    membership = torch.from_numpy(owner[None, :] == np.arange(len(texts))[:, None])  # sections × passages
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    torch.set_num_threads(args.threads)
    path = bundled_m3e_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True)
    wrapped = attach_lora(model, args.rank, args.alpha)
    trainable = [p for lora in wrapped.values() for p in (lora.a, lora.b)]
    optimiser = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    steps = args.epochs * ((len(pairs) + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, 1 - s / steps))
    model.train()
    started = time.time()
    for epoch in range(args.epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        total, right = 0.0, 0
        for start in range(0, len(order), args.batch):
            batch = [pairs[i] for i in order[start:start + args.batch]]
            queries = mean_pool(model, tokenizer, [q for q, _ in batch], 128)
            cosines = queries @ passages.T  # batch × passages
            by_section = cosines[:, None, :].masked_fill(~membership[None], float("-inf")).amax(-1)
            target = torch.tensor([s for _, s in batch])
            loss = torch.nn.functional.cross_entropy(by_section * args.scale, target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
            right += int((by_section.argmax(-1) == target).sum())
        print(f"epoch {epoch + 1}: loss {total / len(pairs):.4f}, training top-1 {right / len(pairs):.3f} ({time.time() - started:.0f}s)", flush=True)
    return {f"{name}.{part}": getattr(lora, part).detach().numpy().astype(np.float32)
            for name, lora in wrapped.items() for part in ("a", "b")} | {"scale": np.array(args.alpha / args.rank, dtype=np.float32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, action="append", default=[], help="training questions (jsonl: query, article, heading)")
    parser.add_argument("--no-questions", action="store_true", help="leave the articles' 相似问 out of the training pairs")
    parser.add_argument("--out", type=Path, required=True, help="adapter file (.npz)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=32.0)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--scale", type=float, default=20.0, help="similarity scale of the in-batch softmax")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    pairs, texts = training_pairs(args.pool, not args.no_questions)
    adapter = train(pairs, texts, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **adapter)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
