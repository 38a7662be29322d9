"""Gap topics by meaning: unanswered queries grouped with the search engine's embedder plus the lexicon.

Character bigrams (bigram_topics.cluster_topics) merge unrelated questions on the function words they
share: 港澳自驾保险怎么买 and 车卖了保险怎么退保 meet on 「怎么」, 工资什么时候发 and 什么时候提醒续保 on
「什么时候」. Here two queries join one topic on a score that mixes

- semantic closeness: the embedder's cosine, re-scaled against the model's own background cosine
  (m3e puts unrelated questions at ~0.68, USE at ~0.3, so a raw threshold would suit one model
  only), and
- shared content words: jieba words with stop words and question words removed, colloquial forms
  mapped to the lexicon's canonical terms, weighted by how rare they are among the period's
  queries (保险 says little in a car-insurance log; 代驾 or 网约车 says a lot).

Two queries whose content words differ entirely join only when the embedder finds them very close;
that keeps 代驾司机出事故保险赔吗 apart from 跑网约车出事故保险赔吗 although the embedder puts them at
0.9. Each topic is named by its medoid: the member closest, weighted by query counts, to all
others: the most typical way the question is asked, not merely the most frequent.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from kb_service.reports.topic_assignment import assign_topics

if TYPE_CHECKING:
    from kb_service.reports.textsim import EdgeSource

# Question and filler words that carry no topic (beyond the tokenizer's own stop words).
QUESTION_WORDS = frozenset({
    "怎么", "怎么办", "怎样", "怎么样", "如何", "什么", "什么时候", "时候", "多少", "多久", "几天", "哪些", "哪里", "哪个",
    "为什么", "能", "能不能", "可以", "可不可以", "是不是", "有没有", "要", "需要", "吗", "呢", "吧", "啊", "了", "的",
    "么", "请问", "一下", "还", "会", "该", "给", "被", "把", "去", "在", "是", "有", "没有", "不", "管不管", "赔不赔",
    "办理", "处理", "问", "客户", "说",
})
# Words nearly every question in a car-insurance log carries: they weigh a fifth of their IDF and
# never on their own make two queries candidates for one topic (a small log cannot tell they are common).
GENERIC_WORDS = frozenset({
    "保险", "车险", "保单", "理赔", "赔付", "投保", "出险", "报案", "保费", "车辆", "汽车", "车主", "保险公司", "公司",
    "险赔", "赔多少", "能赔", "车的", "事故", "出事", "出事故",
})
# Cut out longest first, ties by the word itself: in set order (string hashes, so per process) 事故保险赔吗
# lost 保险 or 险赔 depending on the process, and a topic's members with it.
CUT_WORDS = tuple(sorted(QUESTION_WORDS | GENERIC_WORDS, key=lambda w: (-len(w), w)))
GENERIC_FACTOR = 0.2


def without_generic_words(text: str) -> str:
    """The text with question and generic words cut out (a space each): what is left says the topic.
    代驾司机出事故保险赔吗 → 代驾司机; 跑网约车出事故保险赔吗 → 跑网约车."""
    for word in CUT_WORDS:
        text = text.replace(word, " ")
    return text

MAX_REFERENCE = 3000  # period queries sampled for word rarity
PLACEHOLDER = re.compile(r"〔[^〕]*〕")
# Background questions for the embedder's baseline cosine: everyday service questions on unrelated
# subjects, so the mean pairwise cosine is what "unrelated" looks like to this model.
BACKGROUND = (
    "三者险赔多少", "交强险保额是多少", "车被偷了怎么办", "报案电话是多少", "理赔需要什么材料", "玻璃碎了能赔吗",
    "客户投诉怎么处理", "续保有优惠吗", "发票丢了怎么办", "定损要多久", "酒驾出事赔不赔", "保单怎么查询",
    "今天天气怎么样", "食堂几点开饭", "怎么请年假", "打印机坏了找谁", "会议室怎么预约", "快递放哪里",
)


class Encoder(Protocol):
    name: str

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class TopicOptions:
    """Thresholds, quoted in the report's definition of 缺口主题."""

    join: float = 0.32  # mixed score needed to join a topic
    semantic_only: float = 0.75  # re-scaled cosine that joins without a shared content word
    semantic_weight: float = 0.5


@dataclass
class GapTopic:
    members: list[int]  # indices into the texts given, most frequent first
    medoid: int
    weight: int
    keywords: list[str] = field(default_factory=list)


@dataclass
class Clustering:
    topics: list[GapTopic]
    method: str  # what grouped them, for the report: the embedder's name or 字二元组


_BASELINE: dict[str, float] = {}


def baseline_cosine(embedder: Encoder) -> float:
    """Mean pairwise cosine of unrelated background questions for this embedder (cached per name)."""
    name = str(getattr(embedder, "name", type(embedder).__name__))
    if name not in _BASELINE:
        vectors = _unit(embedder.encode(list(BACKGROUND)))
        sims = vectors @ vectors.T
        n = len(BACKGROUND)
        _BASELINE[name] = float((sims.sum() - np.trace(sims)) / (n * (n - 1)))
    return _BASELINE[name]


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


CONTENT_WORDS_VERSION = "content-words-v3"  # bump when _words changes: cached words must be recomputed


class ContentWords:
    """Topic-bearing words of a query: jieba words minus stop/question words, plus lexicon canonicals."""

    def __init__(self, lexicon: object | None = None, cache_dir: Path | None = None) -> None:
        from kb_service.content.lexicon import match_form
        from kb_service.query.tokenizer import DomainTokenizer

        self.tokenizer = DomainTokenizer(getattr(lexicon, "dictionary_words", ()) or ())
        # Colloquial form → canonical term, matched by substring: Lexicon.expansions re-sorts every
        # variant per call (~1.5 ms a query), too slow for thousands of gap texts.
        synonyms = getattr(lexicon, "synonyms", None) or {}
        self.variants = sorted(((match_form(v), c) for c, vs in synonyms.items() for v in vs if v),
                               key=lambda vc: -len(vc[0]))
        self._memo: dict[str, frozenset[str]] = {}
        self.words_seen: set[str] = set()  # features that were whole words somewhere (not only bigrams)
        self._seen_in: dict[str, set[str]] = {}  # text → what it added to words_seen (kept in the cache)
        self.cache_path = self._cache_path(cache_dir) if cache_dir else None

    def _cache_path(self, cache_dir: Path) -> Path:
        """One file per dictionary and synonym list: the words of a text depend on both."""
        import hashlib

        key = "\n".join([CONTENT_WORDS_VERSION, self.tokenizer.fingerprint, *(f"{v}\t{c}" for v, c in self.variants)])
        return Path(cache_dir) / f"report-content-words-{hashlib.sha1(key.encode()).hexdigest()[:12]}.sqlite3"

    def prefetch(self, texts: Sequence[str]) -> None:
        """Words of all these texts at once, from the cache file where it has them (jieba on ~10k gap
        texts is ~1 s of a million-query report); the others are computed and kept. Exactly as if
        each text had been called, words_seen included."""
        wanted = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if not wanted or self.cache_path is None:
            return
        try:
            conn = sqlite3.connect(str(self.cache_path), timeout=30.0)
        except (OSError, sqlite3.Error):
            return
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS words (text TEXT PRIMARY KEY, found TEXT, seen TEXT)")
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                for text, found, seen in conn.execute(
                        f"SELECT text, found, seen FROM words WHERE text IN ({', '.join('?' * len(part))})", part):
                    self._memo[text] = frozenset(found.split("\t")) - {""}
                    self.words_seen.update(w for w in seen.split("\t") if w)
            missing = [t for t in wanted if t not in self._memo]
            for text in missing:
                self(text)
            with conn:
                conn.executemany("INSERT OR IGNORE INTO words VALUES (?, ?, ?)",
                                 [(t, "\t".join(sorted(self._memo[t])), "\t".join(sorted(self._seen_in[t])))
                                  for t in missing])
        except sqlite3.Error:  # a read-only folder: words are computed as they are asked for
            pass
        finally:
            conn.close()

    def __call__(self, text: str) -> frozenset[str]:
        found = self._memo.get(text)
        if found is None:
            found = self._memo[text] = frozenset(self._words(text))
        return found

    def _words(self, text: str) -> set[str]:
        """jieba words (search mode, so 代驾 is found inside 找代驾) and the character bigrams of
        what is left once question and generic words are cut out (网约 inside 开网约车, which jieba splits badly)."""
        from kb_service.query.tokenizer import bigrams, words

        original = text
        text = PLACEHOLDER.sub(" ", text)
        found = {w for w in words(text, self.tokenizer) if w not in QUESTION_WORDS and len(w) > 1}
        self.words_seen.update(found)
        seen = set(found)
        found.update(g for g in bigrams(without_generic_words(text)) if len(g) == 2)
        expansions = {canonical for variant, canonical in self.variants if variant in text}
        self.words_seen.update(expansions)
        self._seen_in[original] = seen | expansions
        found.update(expansions)
        return found


def _lexical_vectors(word_sets: list[frozenset[str]], reference: Sequence[frozenset[str]]) -> tuple[list[dict[str, float]], dict[str, float]]:
    """IDF-weighted, L2-normalised word vectors; IDF over the reference queries plus these."""
    df: dict[str, int] = {}
    for words_ in list(reference) + word_sets:
        for w in words_:
            df[w] = df.get(w, 0) + 1
    n = len(reference) + len(word_sets)
    idf = {w: math.log((n + 1) / (c + 0.5)) * (GENERIC_FACTOR if w in GENERIC_WORDS else 1.0)
           for w, c in df.items()}
    vectors = []
    for words_ in word_sets:
        raw = {w: idf[w] for w in words_}
        norm = math.sqrt(sum(v * v for v in raw.values())) or 1.0
        vectors.append({w: v / norm for w, v in raw.items()})
    return vectors, idf


def cluster_gap_queries(
    texts: Sequence[str],
    counts: Sequence[int],
    embedder: Encoder | None,
    content_words: ContentWords,
    reference_texts: Sequence[str] = (),
    options: TopicOptions | None = None,
    vector_cache: Path | None = None,
    edge_source: EdgeSource | None = None,
) -> Clustering:
    """Group gap queries (distinct texts with their counts, any order) into topics, largest first.

    Near-duplicate phrasings (textsim.group_near_duplicates: typos, fillers) are one item first, so
    the embedder sees each question once. `reference_texts`: the period's queries, for how common
    each word is (a sample of MAX_REFERENCE, plus BACKGROUND so a tiny log still knows 保险 is
    common). `vector_cache`: an SQLite file of query vectors for this embedder, so a text is
    embedded once across reports. `edge_source`: known near-duplicate pairs (neardup_cache). Without
    an embedder use bigram_topics.cluster_topics instead.
    """
    if embedder is None:
        raise ValueError("cluster_gap_queries needs an embedder; use the bigram fallback without one")
    name = str(getattr(embedder, "name", "embedder"))
    if not texts:
        return Clustering([], name)
    from kb_service.reports.textsim import group_near_duplicates

    position = {t: i for i, t in enumerate(texts)}
    groups = group_near_duplicates(list(zip(texts, counts, strict=True)), edge_source=edge_source)
    heads = [g[0][0] for g in groups]
    weights = [sum(c for _, c in g) for g in groups]
    step = max(1, len(reference_texts) // MAX_REFERENCE)
    sample = (*list(reference_texts)[::step], *BACKGROUND)
    content_words.prefetch([*heads, *sample])
    word_sets = [content_words(t) for t in heads]
    reference = [content_words(t) for t in sample]
    lex, idf = _lexical_vectors(word_sets, reference)
    vectors = embed_texts([PLACEHOLDER.sub("", t) or t for t in heads], embedder, vector_cache)
    topics = assign_topics(weights, vectors, lex, baseline_cosine(embedder), options or TopicOptions(), GENERIC_WORDS)
    result = []
    for members in topics:
        topic = _finish(members, weights, vectors, word_sets, idf, heads, content_words.words_seen)
        expanded = [position[t] for h in topic.members for t, _ in groups[h]]
        result.append(GapTopic(expanded, position[heads[topic.medoid]], topic.weight, topic.keywords))
    result.sort(key=lambda t: (-t.weight, texts[t.medoid]))
    return Clustering(result, name)


def vector_cache_path(cache_dir: Path, embedder: Encoder) -> Path:
    """One file per embedder: vectors of different models must never mix."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(getattr(embedder, "name", "embedder")))
    return Path(cache_dir) / f"report-queries-{name}.sqlite3"


def embed_texts(texts: list[str], embedder: Encoder, cache: Path | None) -> np.ndarray:
    if cache is None:
        return _unit(embedder.encode(texts))
    from kb_service.index.embedding_cache import EmbeddingCache

    try:
        store = EmbeddingCache(cache)
    except (OSError, sqlite3.Error):  # a read-only index folder: embed without keeping the vectors
        return _unit(embedder.encode(texts))
    try:
        return _unit(store.embed(texts, embedder)[0])  # type: ignore[arg-type]
    finally:
        store.close()


def _finish(members: list[int], counts: Sequence[int], vectors: np.ndarray, word_sets: Sequence[frozenset[str]],
            idf: dict[str, float], texts: Sequence[str], whole_words: set[str] | None = None) -> GapTopic:
    """Medoid (count-weighted closest to the rest; ties: more frequent, then shorter) and top words."""
    weights = np.array([counts[m] for m in members], dtype=np.float64)
    sub = vectors[members]
    # sub @ (sub.T @ weights), not (sub @ sub.T) @ weights: the same sums without the members×members
    # matrix (0.23 s → 0.03 s over a million-query log's topics); they may differ in the last float bits.
    closeness = sub @ (sub.T @ weights)
    medoid = max(range(len(members)), key=lambda j: (round(float(closeness[j]), 4), counts[members[j]],
                                                     -len(texts[members[j]]), texts[members[j]]))
    medoid = members[medoid]
    mass: dict[str, float] = {}
    for m in members:
        for w in word_sets[m]:
            mass[w] = mass.get(w, 0.0) + counts[m] * idf.get(w, 0.0)
    keywords: list[str] = []
    for w, weight in sorted(mass.items(), key=lambda kv: (-kv[1], kv[0])):
        # Whole words read better than the bigrams that only bridge words (源车 in 新能源车电池); a
        # word inside one already chosen (能源 in 新能源) adds nothing; generic words say nothing.
        if w in GENERIC_WORDS or (whole_words is not None and w not in whole_words) or any(w in k for k in keywords):
            continue
        shorter = [k for k in keywords if k in w]
        if shorter and weight < 0.5 * max(mass[k] for k in shorter):
            continue  # 找代驾 in one phrasing, 代驾 in all: keep 代驾
        keywords = [k for k in keywords if k not in shorter] + [w]  # 网约 then 网约车 as often: the longer
        if len(keywords) == 5:
            break
    if not keywords:  # only bridging bigrams: better those than nothing
        keywords = [w for w, _ in sorted(mass.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    members = sorted(members, key=lambda m: -counts[m])
    return GapTopic(members, medoid, int(weights.sum()), keywords)
