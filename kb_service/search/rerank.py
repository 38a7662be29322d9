"""The fused articles re-ranked by gradient-boosted trees learned from questions per section.

Why: the hand-set fusion scores every article the same way whatever the query looks like, and a
pasted message or a told situation reaches its section through other signals (a low fused score but
a good heading match, a semantic rank far above the lexical one) than a clipped keyword does. A
ranker learned on the training pool (`eval/training`, four styles per section, written from the
articles and never indexed) weighs those signals per query. It re-orders the first
`rerank_depth` articles of the hybrid list; it learned nothing from a labelled set, which judge it.

The trees come from scikit-learn (scripts/train_reranker.py) and are stored as plain arrays in
JSON per embedding model, so a search evaluates them in numpy, in microseconds, without sklearn.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb_service.content.lexicon import match_form
from kb_service.models import Passage
from kb_service.query.analysis import AnalyzedQuery
from kb_service.query.tokenizer import bigrams
from kb_service.search.fusion import Candidate

RERANK_FEATURES = (
    "fused_share",  # the article's fused score / the first article's
    "fused_score",
    "fused_rank",  # 1 / (1 + position in the fused list)
    "lexical_rank",  # 1 / rank of the shown passage in the BM25F list (0: not in it)
    "lexical_share",  # its BM25F score / the best BM25F score among the articles
    "semantic_rank",
    "semantic_lift",  # its cosine above the query's cosine to the mean passage
    "coverage",  # the specificity-weighted share of the query the passage contains
    "heading_bigrams",  # the share of the query's bigrams in the passage's heading and title
    "first_passage",  # the article's introduction
    "query_length",  # log(1 + characters of the question searched)
)


def candidate_features(analyzed: AnalyzedQuery, grouped: Sequence[Candidate], passages: Callable[[str], Passage],
                       coverage: Callable[[str], float], baseline: float | None) -> np.ndarray:
    """One row of RERANK_FEATURES per article candidate (its shown passage), in the fused order;
    `coverage` maps a passage id to its query coverage (the engine's, memoised: the passage re-pick
    has already scored the same passages)."""
    if not grouped:
        return np.zeros((0, len(RERANK_FEATURES)))
    top = grouped[0].score or 1.0
    best_lexical = max(c.lexical_score for c in grouped) or 1.0
    grams = set(bigrams(analyzed.corrected))
    length = float(np.log1p(len(analyzed.text)))
    rows = []
    for rank, candidate in enumerate(grouped):
        passage = passages(candidate.passage_id)
        heading = match_form(passage.heading + passage.title)
        rows.append([
            candidate.score / top, candidate.score, 1.0 / (1 + rank),
            1.0 / candidate.lexical_rank if candidate.lexical_rank else 0.0, candidate.lexical_score / best_lexical,
            1.0 / candidate.semantic_rank if candidate.semantic_rank else 0.0,
            candidate.semantic_score - (baseline or 0.0) if candidate.semantic_rank else 0.0,
            coverage(candidate.passage_id), sum(g in heading for g in grams) / max(1, len(grams)),
            float(passage.ordinal == 0), length,
        ])
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True)
class TreeEnsemble:
    """Binary regression trees summed into a score (higher: more likely the answer). Arrays are
    trees × nodes; a row goes left when its feature value is <= the node's threshold."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    bias: float
    depth: int

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Every row down every tree at once, on flat arrays (a node is tree · width + index)."""
        trees, width = self.feature.shape
        n_features = rows.shape[1]
        feature, threshold = self.feature.ravel(), self.threshold.ravel()
        left, right, leaf = self.left.ravel(), self.right.ravel(), self.leaf.ravel()
        offset = (np.arange(trees) * width)[None, :]
        node = np.broadcast_to(offset, (len(rows), trees)).copy()
        cells = rows.ravel()
        row_start = (np.arange(len(rows)) * n_features)[:, None]
        for _ in range(self.depth):
            go_left = cells[row_start + feature[node]] <= threshold[node]
            step = offset + np.where(go_left, left[node], right[node])
            node = np.where(leaf[node], node, step)
        return self.bias + self.value.ravel()[node].sum(axis=1)

    def to_dict(self) -> dict:
        return {"features": list(RERANK_FEATURES), "bias": self.bias, "depth": self.depth,
                **{name: getattr(self, name).tolist() for name in ("feature", "threshold", "left", "right", "leaf", "value")}}

    @classmethod
    def from_dict(cls, data: dict) -> TreeEnsemble:
        if tuple(data["features"]) != RERANK_FEATURES:
            raise ValueError("re-ranker was trained on other features: run scripts/train_reranker.py")
        arrays = {name: np.asarray(data[name]) for name in ("feature", "threshold", "left", "right", "leaf", "value")}
        arrays["leaf"] = arrays["leaf"].astype(bool)
        return cls(bias=float(data["bias"]), depth=int(data["depth"]), **arrays)

    @classmethod
    def from_sklearn(cls, model) -> TreeEnsemble:  # type: ignore[no-untyped-def]
        """From a fitted HistGradientBoostingClassifier (binary): its trees' nodes, padded to one width."""
        nodes = [predictors[0].nodes for predictors in model._predictors]  # noqa: SLF001 - the fitted trees
        width = max(len(n) for n in nodes)

        def padded(field: str, fill: float | int) -> np.ndarray:
            out = np.full((len(nodes), width), fill, dtype=np.asarray(nodes[0][field]).dtype)
            for i, n in enumerate(nodes):
                out[i, : len(n)] = n[field]
            return out

        return cls(feature=padded("feature_idx", 0).astype(np.int64), threshold=padded("num_threshold", 0.0),
                   left=padded("left", 0).astype(np.int64), right=padded("right", 0).astype(np.int64),
                   leaf=padded("is_leaf", 1).astype(bool), value=padded("value", 0.0),
                   bias=float(np.ravel(model._baseline_prediction)[0]),  # noqa: SLF001
                   depth=max(int(n["depth"].max()) for n in nodes))


def load_reranker(path: Path, model_key: str) -> TreeEnsemble | None:
    """The trees trained for this embedding model, or None (the fused order is kept)."""
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8")).get(model_key)
    return TreeEnsemble.from_dict(data) if data else None


def reranked(grouped: Sequence[Candidate], scores: np.ndarray) -> list[Candidate]:
    """Candidates by descending learned score; ties keep the fused order."""
    order = np.argsort(-scores, kind="stable")
    return [grouped[i] for i in order]
