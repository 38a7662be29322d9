"""Search benchmark on synthetic corpora built from the real articles' sentences.

Prints build time per 1k passages (lexical, embedding), in-process query latency p50/p95/p99
(lexical, semantic, hybrid including query embedding), time for one edited article to become
searchable (incremental `kb index` + reload), and peak memory (max RSS).

    python scripts/bench_search.py --passages 10000 [--passages 100000] [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kb_service.content.articles import ArticleCache, load_articles
from kb_service.content.chunking import chunk_article
from kb_service.index.builder import build_index
from kb_service.models import CATEGORIES
from kb_service.search.engine import SearchEngine
from kb_service.settings import PROJECT_ROOT, Settings

SECTIONS_PER_ARTICLE = 4
_SENTENCES = re.compile(r"(?<=[。！？；])")


class SentenceMeanEmbedder:
    """Index-side stand-in for very large synthetic corpora (--approx-embeddings).

    Synthetic passages are recombinations of real sentences, so a passage vector is taken as the
    normalised mean of its sentences' real embeddings, each sentence embedded once by the real
    model. Index size, FAISS search cost and memory stay those of real vectors; only the build's
    embedding time is not measured this way (take it from a run without the flag).
    """

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        import numpy as np

        self._np = np
        self._real = real
        self._cache: dict[str, object] = {}
        self.name = real.name
        self.dim = real.dim

    def encode(self, texts: list[str]):  # type: ignore[no-untyped-def]
        np = self._np
        pieces = [[p for p in _SENTENCES.split(t.split("\n", 1)[-1]) if len(p) >= 8] or [t] for t in texts]
        missing = sorted({p for ps in pieces for p in ps if p not in self._cache})
        for start in range(0, len(missing), 64):
            chunk = missing[start : start + 64]
            for text, vector in zip(chunk, self._real.encode(chunk), strict=True):
                self._cache[text] = vector
        out = np.stack([np.mean([self._cache[p] for p in ps], axis=0) for ps in pieces]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def real_sentences(articles_dir: Path) -> list[str]:
    sentences: list[str] = []
    for article in load_articles(articles_dir).articles:
        for passage in chunk_article(article):
            sentences += [s for s in re.split(r"(?<=[。！？；])", passage.text.replace("\n", "")) if len(s) >= 8]
    return sentences


def real_questions(articles_dir: Path) -> list[str]:
    return [q for article in load_articles(articles_dir).articles for s in article.sections for q in s.questions]


def write_corpus(folder: Path, passages: int, sentences: list[str], questions: list[str], seed: int = 7) -> None:
    """Each section gets three of the real 相似问, as the editors' guide asks (their own generator,
    so the passages' text, and with it the embedding cache, stays that of earlier runs)."""
    rng, asking = random.Random(seed), random.Random(seed + 1)
    categories = list(CATEGORIES)
    for n in range(passages // SECTIONS_PER_ARTICLE):
        sections, asked = [], []
        for s in range(SECTIONS_PER_ARTICLE):
            text = "".join(rng.sample(sentences, rng.randint(3, 6)))[:560]
            heading = f"第{s + 1}节 {rng.choice(sentences)[:12]}"
            sections.append(f"## {heading}\n\n{text}\n")
            if questions:
                asked.append(f"  {json.dumps(heading, ensure_ascii=False)}: {json.dumps(asking.sample(questions, 3), ensure_ascii=False)}")
        front = "questions:\n" + "\n".join(asked) + "\n" if asked else ""
        (folder / f"syn-{n:06d}.md").write_text(
            f"---\nid: syn-{n:06d}\ntitle: 合成文章{n} {rng.choice(sentences)[:10]}\ncategory: {rng.choice(categories)}\n"
            f"tags: [合成]\naliases: []\nupdated: 2026-11-25\nversion: 1\nowner: bench\n{front}---\n# 合成文章{n} "
            + "\n\n".join(sections),
            encoding="utf-8",
        )


def percentiles(samples: list[float]) -> str:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {qs[49]:.1f} ms  p95 {qs[94]:.1f} ms  p99 {qs[98]:.1f} ms"


_STORY = ("亲～在吗？？？😭😭 我是你们的老客户了，车险在你们这买了好几年。昨天下午下班路上在高架匝道口排队，"
          "后面一辆白色SUV没刹住追了上来，我的后保险杠和尾灯都坏了，交警来了说对方全责。我当时太慌了，"
          "什么都没问清楚，现在车放在4S店，店里说要等保险公司的人来看过才能修，我每天上班只能打车，"
          "真的很麻烦。。。我手机13812345678，车牌粤B12345，身份证110101199003071234，保单号PDAA202411000123456。")


def pasted_messages(queries: list[str], chars: int = 500) -> list[str]:
    """Customer chat messages of about `chars` characters: a story, personal data, then the question."""
    messages = []
    for query in queries:
        filler = ("我想再问一下。" + _STORY) * 3
        head = filler[: max(0, chars - len(query) - 12)]
        messages.append(f"{head}请问{query}？？谢谢亲～")
    return messages


def own_queries() -> list[str]:
    """Our own set's queries: the short queries every benchmark times."""
    lines = (PROJECT_ROOT / "eval" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["query"] for line in lines if line.strip()]


# The bundled lexicon, not-covered list and section questions: a search reads all three whatever
# the corpus (the questions' sections are not the synthetic corpus's, but each is still scored).
BUNDLED_FILES = {"lexicon_path": PROJECT_ROOT / "articles" / "lexicon.yaml",
                 "not_covered_path": PROJECT_ROOT / "articles" / "not-covered.yaml",
                 "section_questions_path": PROJECT_ROOT / "articles" / "section-questions.jsonl"}


def kept_corpus_settings(corpus: Path) -> Settings:
    """Settings for a corpus folder kept by `--keep` (its articles and indexes, the bundled files)."""
    return Settings(articles_dir=corpus / "articles", index_dir=corpus / "indexes", **BUNDLED_FILES)


@dataclass
class KeptCorpusBench:
    """An A/B benchmark's common start: its arguments, the kept corpus's engine, and the short
    queries and 500-character pasted messages it times."""

    rounds: int
    engine: SearchEngine
    queries: list[str]
    pasted: list[str]


def open_kept_corpus_bench(description: str) -> KeptCorpusBench:
    """Parse `--corpus` (a folder kept by `--keep`) and `--rounds`, and open its engine."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--corpus", type=Path, required=True, help="a folder kept by bench_search.py --keep")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    queries = own_queries()
    return KeptCorpusBench(args.rounds, SearchEngine.open(kept_corpus_settings(args.corpus)), queries,
                           pasted_messages(queries[:100]))


def question_lists_cost(settings: Settings, engine: SearchEngine, queries: list[str], rounds: int = 20) -> str:
    """Time what the two question lists add to each question: the confidence features `not_covered`
    and `answered_match` are one vector product each over the bundled files' embedded questions
    (embedded here as typed, through the index's embedding cache); the section questions' one also
    names the section put in `KB_ANSWERED_SLOT`."""
    from kb_service.search.answered import embed_section_questions
    from kb_service.search.not_covered import embed_not_covered

    cache = Path(settings.index_dir) / "cache" / "question-lists-bench.sqlite3"
    as_typed = lambda text: (text, ())  # noqa: E731
    listed = embed_not_covered(Path(settings.not_covered_path), as_typed, engine.embedder, cache)
    answered = embed_section_questions(Path(settings.section_questions_path), as_typed, engine.embedder, cache)
    sections = {(p.article_id, p.heading) for p in engine.passages()}
    vectors = engine.embedder.encode(queries)
    start = time.perf_counter()
    for _ in range(rounds):
        for vector in vectors:
            listed.nearest(vector)
            answered.closest(vector, answered.live_rows("bench", lambda: sections))
    per_question = (time.perf_counter() - start) * 1000 / (rounds * len(vectors))
    return (f"question lists ({len(listed.questions)} not-covered, {len(answered.queries)} section questions): "
            f"{per_question:.3f} ms per question")


def serving_memory(settings: Settings, queries: list[str]) -> float:
    """Max RSS (MB) of a fresh process that opens the index and answers queries: what a server holds."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_open_and_search, (settings, queries))


def _open_and_search(settings: Settings, queries: list[str]) -> float:
    engine = SearchEngine.open(settings)
    for q in queries:
        engine.search(q)
    engine.close()
    # VmHWM, not ru_maxrss: a spawned child inherits its parent's ru_maxrss across exec.
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1)) / 1024


def bench(passages: int, n_queries: int, queries: list[str], sentences: list[str], questions: list[str], keep: Path | None = None,
          model: str = "m3e-small", approx: bool = False, vector_index: str = "flat", lexical_backend: str = "sparse") -> None:
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        root = keep / f"corpus-{passages}" if keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        articles = root / "articles"
        reuse = (root / "indexes" / "CURRENT").exists()  # a kept corpus: measure queries again, no rebuild
        if not reuse:
            articles.mkdir()
            write_corpus(articles, passages, sentences, questions)
        # The title line of a synthetic article must match its front matter for kb check.
        for path in [] if reuse else articles.glob("*.md"):
            text = path.read_text(encoding="utf-8")
            title = re.search(r"^title: (.+)$", text, re.M).group(1)
            path.write_text(re.sub(r"^# .*?(?=## )", f"# {title}\n\n", text, count=1, flags=re.M | re.S), encoding="utf-8")
        settings = Settings(articles_dir=articles, index_dir=root / "indexes", embedding_model=model,
                            vector_index=vector_index, lexical_backend=lexical_backend, **BUNDLED_FILES)
        embedder = None
        if approx:
            from kb_service.index.embedding import load_embedder

            embedder = SentenceMeanEmbedder(load_embedder(settings.embedding_model, settings.embedding_runtime,
                                                          settings.index_dir / "models", settings.threads))
        parsed = ArticleCache()  # what `kb serve --watch` keeps between builds
        report = build_index(settings, embedder=embedder, cache=parsed)
        note = " (index vectors: mean of real sentence embeddings)" if approx else ""
        print(f"\n== {report.passages} passages ({report.articles} articles), embedder {model}{note}, "
              f"FAISS {vector_index}, lexical backend {lexical_backend}")
        if report.timings:
            per_k = 1000 / report.passages
            embedding = (f"embedding {report.timings['embedding+vectors'] * 1000 / report.embedded:.2f} s/1k texts embedded (passages, 相似问)"
                         if report.embedded else "embedding: every vector came from the embedding cache")
            print(f"build: lexical {report.timings['lexical'] * per_k:.2f} s/1k passages, {embedding}, "
                  f"total {report.seconds:.0f} s")
        else:
            print("build: reused the kept index (no rebuild)")
        engine = SearchEngine.open(settings)
        sample = [queries[i % len(queries)] for i in range(n_queries)]
        for mode in ("lexical", "semantic", "hybrid"):
            engine.search(sample[0], mode=mode)
            latencies = []
            for q in sample:
                start = time.perf_counter()
                engine.search(q, mode=mode)
                latencies.append((time.perf_counter() - start) * 1000)
            print(f"{mode:8s} {percentiles(latencies)}")
        pasted = pasted_messages(sample[: max(50, n_queries // 3)])
        latencies = []
        for q in pasted:
            start = time.perf_counter()
            engine.search(q)
            latencies.append((time.perf_counter() - start) * 1000)
        print(f"hybrid, {statistics.mean(len(q) for q in pasted):.0f}-character pasted messages: {percentiles(latencies)}")
        print(question_lists_cost(settings, engine, sample[:200]))
        target = articles / "syn-000000.md"
        start = time.perf_counter()
        # The heading and its 相似问 key are renamed together, as an editor must.
        target.write_text(target.read_text(encoding="utf-8").replace("第1节", "第1节 独角鲸保障条款"), encoding="utf-8")
        update = build_index(settings, embedder=embedder or engine.embedder, cache=parsed)  # as the watcher does
        built = time.perf_counter()
        engine.reload()
        found = engine.search("独角鲸保障条款").hits[0].article_id == "syn-000000"
        done = time.perf_counter()
        stages = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in update.timings.items())
        print(f"edited article searchable after {done - start:.2f} s (found={found}): "
              f"incremental build {built - start:.2f} s ({stages}), reload {done - built:.2f} s")
        engine.close()
        print(f"peak memory: serving process {serving_memory(settings, sample[:50]):.0f} MB "
              f"(opens the index, answers queries); this process incl. the build "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, action="append", help="corpus size (repeatable)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--model", default="m3e-small", help="embedding model (as KB_EMBEDDING_MODEL)")
    parser.add_argument("--approx-embeddings", action="store_true",
                        help="index vectors as means of real sentence embeddings (for 100k-scale runs)")
    parser.add_argument("--vector-index", choices=("flat", "hnsw"), default="flat", help="as KB_VECTOR_INDEX")
    parser.add_argument("--lexical-backend", choices=("sparse", "whoosh"), default="sparse", help="as KB_LEXICAL_BACKEND")
    parser.add_argument("--no-questions", action="store_true", help="sections without 相似问 (as before they existed)")
    parser.add_argument("--keep", type=Path, help="keep corpus and index here (e.g. to load-test a server on it)")
    args = parser.parse_args()
    queries = own_queries()
    sentences = real_sentences(PROJECT_ROOT / "articles")
    questions = [] if args.no_questions else real_questions(PROJECT_ROOT / "articles")
    for size in args.passages or [10000]:
        bench(size, args.queries, queries, sentences, questions, args.keep, args.model, args.approx_embeddings,
              args.vector_index, args.lexical_backend)


if __name__ == "__main__":
    main()
