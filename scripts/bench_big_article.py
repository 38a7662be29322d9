"""How long one very large article takes to become searchable, by number of sections.

Generates an article with N `## ` sections (2–4 sentences each, distinct headings, no 相似问),
adds it to a copy of the bundled knowledge base in a temporary folder and runs `build_index`
(nothing under the project's articles/ or indexes/ is written). Per N it prints the seconds of
the non-embedding stages from the build's timings (check = parse + validate + chunk of the whole
knowledge base; lexical = analysis and term weights of the new passages), then embedding and
total. The first row, N = 0, is the bundled knowledge base alone.

The default embedder is a stand-in (hash-seeded random vectors, no model), so the figures are
the pipeline's own cost. `--real-embedder` adds a row per N with the configured embedder
(KB_EMBEDDING_MODEL, default m3e-small int8 ONNX), its cache seeded from the project's
indexes/cache so that only the big article's texts are embedded, as after adding it to the
bundled knowledge base and running `kb index`.

    python scripts/bench_big_article.py [--sections 500 1000 2000] [--real-embedder]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from kb_service.content.articles import article_files
from kb_service.index.builder import build_index
from kb_service.index.embedding import load_embedder, model_key
from kb_service.settings import PROJECT_ROOT, Settings

_SENTENCES = re.compile(r"(?<=[。！？；])")
BIG_ID = "big-generated-article"


class HashEmbedder:
    """Deterministic vectors seeded by each text's hash: no model, negligible cost."""

    name = "hash-bench"
    dim = 64

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
            rows.append(np.random.default_rng(seed).standard_normal(self.dim))
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def real_sentences(articles_dir: Path) -> list[str]:
    """Sentences of the bundled articles' prose (no headings, fences or front matter)."""
    found: list[str] = []
    for path in article_files(articles_dir):
        text = path.read_text(encoding="utf-8").split("\n---\n", 1)[-1]
        in_fence = False
        for line in text.splitlines():
            if line.startswith("```"):
                in_fence = not in_fence
                continue
            if in_fence or line.startswith("#") or not line.strip():
                continue
            plain = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line.strip())
            found.extend(s.strip() for s in _SENTENCES.split(plain) if 15 <= len(s.strip()) <= 120)
    return found


def big_article(sections: int, sentences: list[str], seed: int = 7) -> str:
    """Front matter like the bundled articles (no `questions:`), an H1, N distinct `## ` sections."""
    rng = random.Random(seed)
    title = f"超长文章压测（{sections}节）"
    lines = ["---", f"id: {BIG_ID}", f"title: {title}", "category: training", "tags: [压测]",
             "aliases: [压测文章]", "updated: 2026-12-01", "version: 1", "owner: 产品知识组", "---", "",
             f"# {title}", ""]
    for n in range(1, sections + 1):
        lines += [f"## 第{n}节 要点说明", "", "".join(rng.sample(sentences, rng.randint(2, 4))), ""]
    return "\n".join(lines)


def real_embedder(settings: Settings, index_dir: Path, embed_threads: int | None = None) -> object:
    """The configured embedder, its cache seeded with the project's vectors (read only)."""
    key = model_key(settings.embedding_model, settings.embedding_runtime)
    project = PROJECT_ROOT / "indexes"
    cache = project / "cache" / f"embeddings-{key}.sqlite3"
    if cache.exists():
        (index_dir / "cache").mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
        target = sqlite3.connect(index_dir / "cache" / cache.name)
        with target:
            source.backup(target)
        source.close()
        target.close()
    models = project / "models"
    if not (models / key / "model-int8.onnx").exists():
        models = index_dir / "models"  # exported there, never into the project's folder
    embedder = load_embedder(settings.embedding_model, settings.embedding_runtime, models, settings.threads)
    if embed_threads and hasattr(embedder, "_parallel"):
        embedder._parallel = embed_threads  # noqa: SLF001 - a benchmark compares 1 with all cores
    return embedder


def run(sections: int, sentences: list[str], real: bool, embed_threads: int | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kb-big-") as tmp:
        root = Path(tmp)
        articles = root / "articles"
        shutil.copytree(PROJECT_ROOT / "articles", articles)
        if sections:
            (articles / f"{BIG_ID}.md").write_text(big_article(sections, sentences), encoding="utf-8")
        settings = Settings(articles_dir=articles, lexicon_path=articles / "lexicon.yaml", index_dir=root / "indexes")
        embedder = real_embedder(settings, settings.index_dir, embed_threads) if real else HashEmbedder()
        started = time.perf_counter()
        report = build_index(settings, full=True, embedder=embedder)  # type: ignore[arg-type]
        total = time.perf_counter() - started
        bad = [p for p in report.problems if BIG_ID in str(p.path)]
        if bad:
            raise SystemExit(f"generated article rejected: {bad[0]}")
        t = report.timings
        return {"check": t["check"], "lexical": t["lexical"], "embedding": t["embedding+vectors"],
                "total": total, "passages": report.passages, "embedded": report.embedded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--real-embedder", action="store_true",
                        help="also build with the configured embedder (KB_EMBEDDING_MODEL): slow, ~20-60 ms per new text")
    parser.add_argument("--embed-threads", type=int, default=None,
                        help="concurrent embedding runs of the ONNX embedder (default: one per core)")
    args = parser.parse_args()
    sentences = real_sentences(PROJECT_ROOT / "articles")
    print(f"{'sections':>8} {'passages':>8} {'check':>7} {'lexical':>7} {'chk+lex':>7} {'per 1k':>7} "
          f"{'embed':>7} {'new':>5} {'total':>7}  embedder")
    run(0, sentences, False)  # warm-up: jieba's dictionary and imports load once, outside the figures
    base: float | None = None
    for n in [0, *args.sections]:
        for real in (False, True) if args.real_embedder and n else (False,):
            r = run(n, sentences, real, args.embed_threads)
            own = r["check"] + r["lexical"]
            if n == 0 and not real:
                base = own
            # Seconds of check+lexical the big article adds, per 1,000 of its sections.
            per_k = f"{(own - base) / n * 1000:7.2f}" if n and base is not None else f"{'-':>7}"
            print(f"{n:>8} {r['passages']:>8} {r['check']:>7.2f} {r['lexical']:>7.2f} {own:>7.2f} {per_k} "
                  f"{r['embedding']:>7.2f} {r['embedded']:>5} {r['total']:>7.2f}  {'configured' if real else 'stand-in'}",
                  flush=True)


if __name__ == "__main__":
    main()
