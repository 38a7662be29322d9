"""Grouping of short Chinese queries: near-duplicate phrasings and topics.

Agents type the same question many ways (三者险赔多少 / 三者险能赔多少 / 三者险赔多少钱), so
counting exact strings splits one question into many small rows. Everything here works on the
*distinct* normalised strings with their counts (never on raw log rows) and avoids comparing all
pairs: candidate pairs come from prefix filtering over character bigrams (a pair that shares no
rare bigram is never compared), and only candidates are verified with the real similarity.
Every step is deterministic: ties break on count, then on the string itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from kb_service.masking import PLACEHOLDER

# Characters that change the wording but not the question. Dropped before comparison only; the
# report always shows the text the agent typed.
FILLERS: tuple[str, ...] = ("请问", "一下", "能", "可以", "吗", "呢", "啊", "呀", "吧", "的", "了", "么")

NEAR_DUP_SIMILARITY = 0.8  # LCS ratio of the filler-stripped strings
NEAR_DUP_BLOCKING_DICE = 0.4  # bigram Dice below which a pair is never compared


# Masking placeholders (〔手机号〕) say that a customer detail was pasted, not what was asked: left
# in, every 「客户〔手机号〕问…」 would look alike whatever the question.
_PLACEHOLDER = PLACEHOLDER


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


def _pair_blocks(left: sparse.csr_matrix, right: sparse.csr_matrix, chunk: int = 2000,
                 first_row: int = 0) -> Iterator[np.ndarray]:
    """(i, j) with i < j where rows i of `left` and j of `right` share a column, one row block at a time.

    With first_row > 0, `left` holds only the rows from first_row on (of the same strings as
    `right`): then every pair with its later end among them, as (later, earlier)."""
    right_t = right.T.tocsr()
    for start in range(0, left.shape[0], chunk):
        block = (left[start : start + chunk] @ right_t).tocoo()
        rows = block.row.astype(np.int64) + start + first_row
        cols = block.col.astype(np.int64)
        keep = rows < cols if first_row == 0 else cols < rows
        if keep.any():
            yield np.stack([rows[keep], cols[keep]], axis=1)


def pairs_from_product(left: sparse.csr_matrix, right: sparse.csr_matrix) -> np.ndarray:
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


def iter_dice_candidates(features: Features, min_dice: float,
                         first_row: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of (pairs, Dice) with bigram Dice ≥ min_dice, found with prefix filtering, not all pairs.

    Dice ≥ θ needs an overlap of at least θ/(2−θ)·|A| bigrams, so with bigrams ordered rarest
    first, two such strings must share a bigram within each other's first |A| − ⌈θ|A|/(2−θ)⌉ + 1
    bigrams. Indexing only those prefixes keeps common bigrams (怎么, 多少) out of candidate
    generation, which is what makes this sub-quadratic. With first_row > 0 only the pairs with an
    end at or after first_row (strings added to a set whose own pairs are known).
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
    left = prefix[first_row:] if first_row else prefix
    for block in _pair_blocks(left, prefix, first_row=first_row):
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


def near_duplicate_edges(cores: Sequence[str], min_similarity: float = NEAR_DUP_SIMILARITY,
                         blocking_dice: float = NEAR_DUP_BLOCKING_DICE, first_new: int = 0,
                         ) -> list[tuple[int, int, float]]:
    """(a, b, LCS ratio) for every pair of distinct strings that are near-duplicates (see
    group_near_duplicates); with first_new > 0 only the pairs with an end at or after first_new.

    Whether two strings are near-duplicates depends on those two strings only, so pairs found once
    can be kept (neardup_cache.py) and a later set only needs the pairs of its new strings."""
    if len(cores) - first_new < 1 or len(cores) < 2:
        return []
    lengths = np.array([len(c) for c in cores], dtype=np.float64)
    counts_matrix = char_counts(cores)
    survivors: list[np.ndarray] = []
    for block, _ in iter_dice_candidates(bigram_features(cores), blocking_dice, first_row=first_new):
        bound = lcs_upper_bound_ratio(counts_matrix, lengths, block)
        survivors.append(block[bound >= min_similarity - 1e-9])
    pairs = np.concatenate(survivors) if survivors else np.empty((0, 2), dtype=np.int64)
    edges = []
    for a, b in pairs.tolist():
        sim = lcs_ratio(cores[a], cores[b])
        if sim >= min_similarity - 1e-9:
            edges.append((a, b, sim))
    return edges


EdgeSource = Callable[[list[str]], Iterable[tuple[int, int, float]]]


def group_near_duplicates(
    counts: Iterable[tuple[str, int]],
    min_similarity: float = NEAR_DUP_SIMILARITY,
    blocking_dice: float = NEAR_DUP_BLOCKING_DICE,
    edge_source: EdgeSource | None = None,
) -> list[list[tuple[str, int]]]:
    """Groups of near-duplicate strings, each led by its most frequent phrasing, largest first.

    Two strings are near-duplicates when their filler-stripped forms have an LCS ratio ≥
    min_similarity and are compared at all (bigram Dice ≥ blocking_dice). `edge_source`: gives
    the near_duplicate_edges of a list of distinct cores (for the default thresholds), e.g. from
    neardup_cache.NearDuplicateCache, which keeps the pairs found in earlier reports.
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
    if edge_source is not None and (min_similarity, blocking_dice) == (NEAR_DUP_SIMILARITY, NEAR_DUP_BLOCKING_DICE):
        found = edge_source(unique_cores)
    else:
        found = near_duplicate_edges(unique_cores, min_similarity, blocking_dice)
    edges: dict[int, list[tuple[int, float]]] = {}
    for a, b, sim in sorted(found, key=lambda e: (min(e[0], e[1]), max(e[0], e[1]))):
        a, b = min(a, b), max(a, b)
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
