"""Topics among short Chinese queries by character bigrams: the fallback when no embedder is at hand.

Gap topics are grouped by meaning (gap_topics.py); without the engine's embedder the report
uses this and says so. Features are IDF-weighted bigrams shared by at least two questions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from kb_service.reports.gap_topics import without_generic_words
from kb_service.reports.textsim import (
    EdgeSource,
    Features,
    bigram_features,
    char_bigrams,
    group_near_duplicates,
    pairs_from_product,
    strip_placeholders,
)

TOPIC_SIMILARITY = 0.3  # cosine between a query and its topic's centroid (TF-IDF bigrams)
TOPIC_EDGE_SIMILARITY = 0.2  # candidate neighbours considered when choosing a topic


def idf_weights(features: Features) -> np.ndarray:
    """Smoothed IDF over a reference corpus (all distinct queries of the period)."""
    n = features.matrix.shape[0]
    df = features.document_frequency
    return np.log((1.0 + n) / (1.0 + df)) + 1.0


def weighted_rows(texts: Sequence[str], vocabulary: dict[str, int], weights: np.ndarray) -> sparse.csr_matrix:
    """L2-normalised binary bigram rows scaled by per-bigram weights."""
    matrix = bigram_features(texts, vocabulary).matrix.astype(np.float64) @ sparse.diags(weights)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


@dataclass
class Topic:
    """One topic cluster: member indices into the input, most frequent first."""

    members: list[int]
    weight: int
    keywords: list[str]


def _keywords(representative: str, top_bigrams: list[str]) -> list[str]:
    """Readable keywords: runs of the representative covered by top bigrams (新能+能源 → 新能源)."""
    covered = [False] * len(representative)
    for gram in top_bigrams:
        start = representative.find(gram)
        while start >= 0:
            covered[start] = covered[start + 1] = True
            start = representative.find(gram, start + 1)
    phrases: list[str] = []
    run = ""
    for ch, flag in zip(representative, covered, strict=True):
        if flag:
            run += ch
        elif run:
            phrases.append(run)
            run = ""
    if run:
        phrases.append(run)
    leftovers = [g for g in top_bigrams if g not in representative]
    return list(dict.fromkeys(phrases + leftovers))


def cluster_topics(
    counts: Sequence[tuple[str, int]],
    reference_texts: Sequence[str],
    min_similarity: float = TOPIC_SIMILARITY,
    edge_similarity: float = TOPIC_EDGE_SIMILARITY,
    max_df_share: float = 0.05,
    max_neighbours: int = 25,
    edge_source: EdgeSource | None = None,
) -> list[Topic]:
    """Topics among (text, count) pairs, heaviest first; `reference_texts` are all queries of the period.

    Near-duplicate phrasings are merged first (group_near_duplicates) and topics are built over
    those groups. Features are character bigrams weighted by IDF over the reference texts (so
    怎么 weighs little and 网约 a lot), and only bigrams shared by at least two groups count at
    all: a bigram unique to one question (了谁) cannot link two questions, it only dilutes their
    similarity. Groups arrive most frequent first; each joins
    the topic, among its candidate neighbours', whose centroid it is most similar to (cosine ≥
    min_similarity), else starts a topic. Candidates share a bigram that is not among the most
    common (document frequency above max_df_share), so common words never make all pairs candidates.
    """
    if not counts:
        return []
    index_of = {text: i for i, (text, _) in enumerate(counts)}
    # Near-duplicate phrasings are one item: a topic is made of *different* questions.
    groups = group_near_duplicates(counts, edge_source=edge_source)  # edge_source: e.g. the neardup_cache
    texts = [strip_placeholders(g[0][0]) or g[0][0] for g in groups]
    weights = [sum(c for _, c in g) for g in groups]
    # Bigrams of what is left once question and generic words are cut out: 代驾司机出事故保险赔吗 and
    # 跑网约车出事故保险赔吗 share six bigrams of 出事故保险赔吗 and no topic.
    rows, vocabulary = _group_rows([without_generic_words(t) for t in texts],
                                   [without_generic_words(strip_placeholders(t)) for t in reference_texts])
    neighbours = _neighbours(rows, edge_similarity, max_df_share, max_neighbours)
    centroids, members = _assign(rows, neighbours, min_similarity)
    inverse_vocab = {col: gram for gram, col in vocabulary.items()}
    topics: list[Topic] = []
    for t, member_list in enumerate(members):
        ranked = sorted(centroids[t].items(), key=lambda kv: (-kv[1], inverse_vocab[kv[0]]))[:4]
        top = [(f, w) for f, w in ranked if w >= 0.5 * ranked[0][1]] if ranked else []
        topics.append(
            Topic(
                members=[index_of[text] for i in member_list for text, _ in groups[i]],
                weight=sum(weights[i] for i in member_list),
                keywords=_keywords(texts[member_list[0]], [inverse_vocab[f] for f, _ in top]),
            )
        )
    topics.sort(key=lambda t: (-t.weight, counts[t.members[0]][0]))
    return topics


def _group_rows(texts: list[str], reference_texts: Sequence[str]) -> tuple[sparse.csr_matrix, dict[str, int]]:
    """L2-normalised IDF rows of each group's bigrams, only bigrams shared by two groups or more."""
    n = len(texts)
    reference = bigram_features(list(dict.fromkeys([*reference_texts, *texts])))
    vocabulary = reference.vocabulary
    idf = idf_weights(reference)
    # A group is represented by its most frequent phrasing only: the union of all its phrasings
    # would let shared follow-ups (…能加急吗, …的问题) link unrelated questions.
    group_grams = [sorted({vocabulary[g] for g in char_bigrams(text) if " " not in g}) for text in texts]
    group_df = np.zeros(len(idf))
    for columns in group_grams:
        group_df[columns] += 1
    indptr = np.cumsum([0] + [len(c) for c in group_grams])
    indices = np.asarray([c for cols in group_grams for c in cols], dtype=np.int64)
    matrix = sparse.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n, len(idf)))
    matrix = matrix @ sparse.diags(idf * (group_df >= 2))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    rows = sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)
    rows.eliminate_zeros()
    return rows, vocabulary


def _neighbours(rows: sparse.csr_matrix, edge_similarity: float, max_df_share: float,
                max_neighbours: int) -> dict[int, list[int]]:
    """Each group's most similar candidates: groups sharing a bigram that is not among the most common."""
    n = rows.shape[0]
    incidence = (rows > 0).astype(np.float32).tocsc()
    df = np.asarray(incidence.sum(axis=0)).ravel()
    cap = max(50.0, max_df_share * n)
    candidate_matrix = sparse.csr_matrix(incidence[:, np.flatnonzero(df <= cap)])
    pairs = pairs_from_product(candidate_matrix, candidate_matrix)
    neighbours: dict[int, list[int]] = {}
    if len(pairs):
        cosine = np.empty(len(pairs))
        for start in range(0, len(pairs), 500_000):
            part = pairs[start : start + 500_000]
            cosine[start : start + len(part)] = np.asarray(
                rows[part[:, 0]].multiply(rows[part[:, 1]]).sum(axis=1)
            ).ravel()
        keep = cosine >= edge_similarity - 1e-12
        pairs, cosine = pairs[keep], cosine[keep]
        # Both directions, then the max_neighbours most similar per query: bounds the work per
        # query however large a topic grows.
        src = np.concatenate([pairs[:, 0], pairs[:, 1]])
        dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
        sim = np.concatenate([cosine, cosine])
        order = np.lexsort((dst, -sim, src))
        src, dst = src[order], dst[order]
        first = np.searchsorted(src, src, side="left")
        within = np.arange(len(src)) - first < max_neighbours
        for a, b in zip(src[within].tolist(), dst[within].tolist(), strict=True):
            neighbours.setdefault(a, []).append(b)
    return neighbours


def _assign(rows: sparse.csr_matrix, neighbours: dict[int, list[int]],
            min_similarity: float) -> tuple[list[dict[int, float]], list[list[int]]]:
    """Groups in order join their neighbours' most similar topic centroid, or start a topic."""
    n = rows.shape[0]
    vectors = [
        dict(zip(rows.indices[rows.indptr[i] : rows.indptr[i + 1]].tolist(),
                 rows.data[rows.indptr[i] : rows.indptr[i + 1]].tolist(), strict=True))
        for i in range(n)
    ]
    topic_of = [-1] * n
    centroids: list[dict[int, float]] = []
    norms_sq: list[float] = []
    members: list[list[int]] = []
    for i in range(n):
        x = vectors[i]
        best, best_sim, best_dot = -1, -1.0, 0.0
        for t in sorted({topic_of[j] for j in neighbours.get(i, ()) if topic_of[j] >= 0}):
            centroid = centroids[t]
            dot = sum(w * centroid.get(f, 0.0) for f, w in x.items())
            sim = dot / math.sqrt(norms_sq[t]) if norms_sq[t] > 0 else 0.0
            if sim > best_sim:
                best, best_sim, best_dot = t, sim, dot
        if best >= 0 and best_sim >= min_similarity - 1e-12:
            centroid = centroids[best]
            for f, w in x.items():
                centroid[f] = centroid.get(f, 0.0) + w
            norms_sq[best] += 2.0 * best_dot + sum(w * w for w in x.values())
            members[best].append(i)
            topic_of[i] = best
        else:
            topic_of[i] = len(centroids)
            centroids.append(dict(x))
            norms_sq.append(sum(w * w for w in x.values()))
            members.append([i])
    return centroids, members
