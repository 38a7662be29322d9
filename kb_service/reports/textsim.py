"""Grouping of short Chinese queries: near-duplicate phrasings and topics.

Agents type the same question many ways (三者险赔多少 / 三者险能赔多少 / 三者险赔多少钱), so
counting exact strings splits one question into many small rows. Everything here works on the
*distinct* normalised strings with their counts (never on raw log rows) and avoids comparing all
pairs: candidate pairs come from prefix filtering over character bigrams (a pair that shares no
rare bigram is never compared), and only candidates are verified with the real similarity.
Every step is deterministic: ties break on count, then on the string itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

# Characters that change the wording but not the question. Dropped before comparison only; the
# report always shows the text the agent typed.
FILLERS: tuple[str, ...] = ("请问", "一下", "能", "可以", "吗", "呢", "啊", "呀", "吧", "的", "了", "么")

NEAR_DUP_SIMILARITY = 0.8  # LCS ratio of the filler-stripped strings
NEAR_DUP_BLOCKING_DICE = 0.4  # bigram Dice below which a pair is never compared
TOPIC_SIMILARITY = 0.3  # cosine between a query and its topic's centroid (TF-IDF bigrams)
TOPIC_EDGE_SIMILARITY = 0.2  # candidate neighbours considered when choosing a topic


# Masking placeholders (〔手机号〕) say that a customer detail was pasted, not what was asked: left
# in, every 「客户〔手机号〕问…」 would look alike whatever the question.
_PLACEHOLDER = re.compile(r"〔[^〔〕]{1,8}〕")


def strip_placeholders(text: str) -> str:
    return _PLACEHOLDER.sub("", text)


def core_text(text: str) -> str:
    """The string used for similarity: fillers removed, original kept when nothing else is left."""
    core = strip_placeholders(text)
    for filler in FILLERS:
        core = core.replace(filler, "")
    return core or text


def char_bigrams(text: str) -> list[str]:
    """Distinct character bigrams (a single character stands for itself), in first-seen order."""
    if len(text) < 2:
        return [text] if text else []
    seen: dict[str, None] = {}
    for i in range(len(text) - 1):
        seen.setdefault(text[i : i + 2], None)
    return list(seen)


def lcs_length(a: str, b: str) -> int:
    """Longest common subsequence length, bit-parallel (Hyyrö 2004): O(len(b)) big-int steps."""
    if not a or not b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    masks: dict[str, int] = {}
    for i, ch in enumerate(a):
        masks[ch] = masks.get(ch, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for ch in b:
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def lcs_ratio(a: str, b: str) -> float:
    """2·LCS / (len a + len b): 1 for equal strings; a substituted character costs twice an inserted one."""
    if not a and not b:
        return 1.0
    return 2.0 * lcs_length(a, b) / (len(a) + len(b))


@dataclass(frozen=True)
class Features:
    """Binary bigram incidence of a list of strings (rows) over a shared vocabulary (columns)."""

    matrix: sparse.csr_matrix
    vocabulary: dict[str, int]

    @property
    def document_frequency(self) -> np.ndarray:
        return np.asarray((self.matrix > 0).sum(axis=0)).ravel()


def bigram_features(texts: Sequence[str], vocabulary: dict[str, int] | None = None) -> Features:
    """Incidence matrix; with a fixed vocabulary, unseen bigrams are ignored."""
    vocab: dict[str, int] = {} if vocabulary is None else vocabulary
    grow = vocabulary is None
    indptr = [0]
    indices: list[int] = []
    for text in texts:
        for gram in char_bigrams(text):
            col = vocab.get(gram)
            if col is None:
                if not grow:
                    continue
                col = vocab[gram] = len(vocab)
            indices.append(col)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    matrix = sparse.csr_matrix(
        (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
        shape=(len(texts), max(len(vocab), 1)),
    )
    return Features(matrix, vocab)


def _pair_blocks(left: sparse.csr_matrix, right: sparse.csr_matrix, chunk: int = 2000) -> Iterator[np.ndarray]:
    """(i, j) with i < j where rows i of `left` and j of `right` share a column, one row block at a time."""
    right_t = right.T.tocsr()
    for start in range(0, left.shape[0], chunk):
        block = (left[start : start + chunk] @ right_t).tocoo()
        rows = block.row.astype(np.int64) + start
        cols = block.col.astype(np.int64)
        keep = rows < cols
        if keep.any():
            yield np.stack([rows[keep], cols[keep]], axis=1)


def _pairs_from_product(left: sparse.csr_matrix, right: sparse.csr_matrix) -> np.ndarray:
    blocks = list(_pair_blocks(left, right))
    return np.concatenate(blocks) if blocks else np.empty((0, 2), dtype=np.int64)


def _row_overlap(matrix: sparse.csr_matrix, pairs: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Number of shared columns for each pair, vectorised in chunks."""
    result = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        product = matrix[part[:, 0]].multiply(matrix[part[:, 1]])
        result[start : start + len(part)] = np.asarray(product.sum(axis=1)).ravel()
    return result


def dice_candidates(features: Features, min_dice: float) -> tuple[np.ndarray, np.ndarray]:
    """All pairs with bigram Dice ≥ min_dice, and their Dice (see iter_dice_candidates)."""
    blocks = list(iter_dice_candidates(features, min_dice))
    if not blocks:
        return np.empty((0, 2), dtype=np.int64), np.empty(0)
    return np.concatenate([p for p, _ in blocks]), np.concatenate([d for _, d in blocks])


def iter_dice_candidates(features: Features, min_dice: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of (pairs, Dice) with bigram Dice ≥ min_dice, found with prefix filtering, not all pairs.

    Dice ≥ θ needs an overlap of at least θ/(2−θ)·|A| bigrams, so with bigrams ordered rarest
    first, two such strings must share a bigram within each other's first |A| − ⌈θ|A|/(2−θ)⌉ + 1
    bigrams. Indexing only those prefixes keeps common bigrams (怎么, 多少) out of candidate
    generation, which is what makes this sub-quadratic.
    """
    matrix = features.matrix
    n = matrix.shape[0]
    if n < 2:
        return
    df = features.document_frequency
    order_of_column = np.empty(len(df), dtype=np.int64)
    order_of_column[np.lexsort((np.arange(len(df)), df))] = np.arange(len(df))
    sizes = np.diff(matrix.indptr)
    need = np.ceil(min_dice / (2.0 - min_dice) * sizes - 1e-9).astype(np.int64)
    prefix_len = np.clip(sizes - need + 1, 0, sizes)
    # Rank of each stored bigram within its row, rarest first, all rows at once.
    row_of = np.repeat(np.arange(n, dtype=np.int64), sizes)
    order = np.lexsort((order_of_column[matrix.indices], row_of))
    rank_in_row = np.arange(len(order), dtype=np.int64) - np.repeat(matrix.indptr[:-1], sizes)
    chosen = order[rank_in_row < prefix_len[row_of[order]]]
    if len(chosen) == 0:
        return
    r = row_of[chosen]
    c = matrix.indices[chosen].astype(np.int64)
    prefix = sparse.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=matrix.shape)
    ratio = min_dice / (2.0 - min_dice)
    # Filter block by block so only surviving pairs are ever held, not every candidate at once.
    for block in _pair_blocks(prefix, prefix):
        a, b = sizes[block[:, 0]], sizes[block[:, 1]]
        # Length filter before the costlier overlap: Dice ≥ θ needs |B| ≥ θ|A|/(2−θ) both ways.
        block = block[(b >= ratio * a - 1e-9) & (a >= ratio * b - 1e-9)]
        if len(block) == 0:
            continue
        dice = 2.0 * _row_overlap(matrix, block) / (sizes[block[:, 0]] + sizes[block[:, 1]])
        keep = dice >= min_dice - 1e-9
        if keep.any():
            yield block[keep], dice[keep]


def char_counts(texts: Sequence[str]) -> sparse.csr_matrix:
    """Character multiplicities per string (columns are arbitrary but shared by all rows)."""
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, text in enumerate(texts):
        for ch in text:
            rows.append(i)
            cols.append(vocab.setdefault(ch, len(vocab)))
    data = np.ones(len(rows), dtype=np.float32)
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(len(texts), max(len(vocab), 1)))
    matrix.sum_duplicates()
    return matrix


def lcs_upper_bound_ratio(counts: sparse.csr_matrix, lengths: np.ndarray, pairs: np.ndarray,
                          chunk: int = 100_000) -> np.ndarray:
    """2·(shared characters with multiplicity)/(len a + len b) ≥ LCS ratio, for all pairs at once.

    Strings that share a long common ending (…客户不同意怎么办) pass the bigram blocking but fail
    this bound, which costs one vectorised pass instead of one Python LCS per pair.
    """
    result = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        shared = np.asarray(counts[part[:, 0]].minimum(counts[part[:, 1]]).sum(axis=1)).ravel()
        result[start : start + len(part)] = 2.0 * shared / (lengths[part[:, 0]] + lengths[part[:, 1]])
    return result


def _greedy_leaders(n: int, edges: dict[int, list[tuple[int, float]]]) -> list[int]:
    """Leader of each item when items arrive in index order (most frequent first).

    An item joins the most similar *leader* among its neighbours, else leads a group itself.
    Joining leaders only (not members) is what stops chains such as 交强险赔多少 → … → 三者险赔多少.
    """
    leader = list(range(n))
    is_leader = [False] * n
    for i in range(n):
        best, best_sim = -1, -1.0
        for j, sim in edges.get(i, ()):
            if j < i and is_leader[j] and (sim > best_sim or (sim == best_sim and j < best)):
                best, best_sim = j, sim
        if best >= 0:
            leader[i] = best
        else:
            is_leader[i] = True
    return leader


def frequency_order(counts: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """Most frequent first, ties by text, so every grouping below is reproducible."""
    return sorted(counts, key=lambda item: (-item[1], item[0]))


def group_near_duplicates(
    counts: Iterable[tuple[str, int]],
    min_similarity: float = NEAR_DUP_SIMILARITY,
    blocking_dice: float = NEAR_DUP_BLOCKING_DICE,
) -> list[list[tuple[str, int]]]:
    """Groups of near-duplicate strings, each led by its most frequent phrasing, largest first.

    Two strings are near-duplicates when their filler-stripped forms have an LCS ratio ≥
    min_similarity and are compared at all (bigram Dice ≥ blocking_dice).
    """
    ordered = frequency_order(counts)
    texts = [text for text, _ in ordered]
    cores = [core_text(t) for t in texts]
    # Identical cores are the same question: merge them before any pair work.
    first_of_core: dict[str, int] = {}
    core_leader = [first_of_core.setdefault(core, i) for i, core in enumerate(cores)]
    unique_idx = sorted(set(core_leader))
    position = {idx: k for k, idx in enumerate(unique_idx)}
    unique_cores = [cores[i] for i in unique_idx]
    edges: dict[int, list[tuple[int, float]]] = {}
    lengths = np.array([len(c) for c in unique_cores], dtype=np.float64)
    counts_matrix = char_counts(unique_cores)
    survivors: list[np.ndarray] = []
    for block, _ in iter_dice_candidates(bigram_features(unique_cores), blocking_dice):
        bound = lcs_upper_bound_ratio(counts_matrix, lengths, block)
        survivors.append(block[bound >= min_similarity - 1e-9])
    pairs = np.concatenate(survivors) if survivors else np.empty((0, 2), dtype=np.int64)
    for a, b in pairs.tolist():
        sim = lcs_ratio(unique_cores[a], unique_cores[b])
        if sim >= min_similarity - 1e-9:
            edges.setdefault(a, []).append((b, sim))
            edges.setdefault(b, []).append((a, sim))
    unique_leader = _greedy_leaders(len(unique_cores), edges)
    groups: dict[int, list[tuple[str, int]]] = {}
    for i, item in enumerate(ordered):
        top = unique_idx[unique_leader[position[core_leader[i]]]]
        groups.setdefault(top, []).append(item)
    result = list(groups.values())
    result.sort(key=lambda g: (-sum(c for _, c in g), g[0][0]))
    return result


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
    groups = group_near_duplicates(counts)
    texts = [strip_placeholders(g[0][0]) or g[0][0] for g in groups]
    weights = [sum(c for _, c in g) for g in groups]
    n = len(groups)
    reference = bigram_features(list(dict.fromkeys([*(strip_placeholders(t) for t in reference_texts), *texts])))
    vocabulary = reference.vocabulary
    idf = idf_weights(reference)
    # A group is represented by its most frequent phrasing only: the union of all its phrasings
    # would let shared follow-ups (…能加急吗, …的问题) link unrelated questions.
    group_grams = [sorted({vocabulary[g] for g in char_bigrams(text)}) for text in texts]
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
    incidence = (rows > 0).astype(np.float32).tocsc()
    df = np.asarray(incidence.sum(axis=0)).ravel()
    cap = max(50.0, max_df_share * n)
    candidate_matrix = sparse.csr_matrix(incidence[:, np.flatnonzero(df <= cap)])
    pairs = _pairs_from_product(candidate_matrix, candidate_matrix)
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
