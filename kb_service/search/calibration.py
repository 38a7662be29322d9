"""Fit the confidence model so that it holds on query styles it was not fitted on.

A model fitted on one style of query learns what that style looks like: on our own short,
clean questions "every query word is in the top passage" separates answerable from out-of-scope
well, and the same rule then marks a pasted chat message or a traditional-character question
"not confident" although the answer is on top. So the pool mixes styles, and both the
regularisation and the features are chosen by leave-one-style-out cross-validation: every style
in turn is held out, a model is fitted on the others (threshold included), and it is judged on
the held-out style. A feature that carries the model on one style only loses there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kb_service.search.confidence import FEATURES, ConfidenceModel

REGULARISATION_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
MAX_STYLE_FALSE_REJECTION = 0.05  # the most any held-out style may lose to "not confident"
BUDGET_STEP = 0.005  # how much the pooled false-rejection budget is tightened per try
BUDGET_FLOOR = 0.015  # never below: the threshold would reject too few out-of-scope queries to matter


def fit_logistic(x: np.ndarray, y: np.ndarray, C: float, max_false_rejection: float, label: str,
                 used: Sequence[bool] | None = None) -> ConfidenceModel:
    """Logistic regression on standardised features; unused features get weight 0.

    The threshold is the highest probability that keeps false rejections of answerable queries
    at or under `max_false_rejection` on the fitting set."""
    from sklearn.linear_model import LogisticRegression

    mask = np.ones(x.shape[1], dtype=bool) if used is None else np.asarray(used, dtype=bool)
    xs = x[:, mask]
    # Standardise so regularisation treats features alike, then fold the scaling into the weights.
    mean, std = xs.mean(axis=0), np.maximum(xs.std(axis=0), 1e-6)
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=5000)
    clf.fit((xs - mean) / std, y)
    weights = np.zeros(x.shape[1])
    weights[mask] = clf.coef_[0] / std
    bias = float(clf.intercept_[0] - (clf.coef_[0] * mean / std).sum())
    model = ConfidenceModel(list(map(float, weights)), bias, 0.5, label)
    positives = sorted(model.probability_of(v) for v, t in zip(x, y, strict=True) if t == 1)
    allowed = int(max_false_rejection * len(positives))
    model.threshold = float(max(1e-6, positives[allowed] - 1e-9)) if positives else 0.5
    return model


@dataclass(frozen=True)
class HeldOut:
    """Leave-one-style-out result of one design (regularisation + features)."""

    C: float
    used: tuple[bool, ...]
    negatives_rejected: float  # over all held-out out-of-scope queries
    false_rejection: float  # over all held-out answerable queries
    worst_style: str
    worst_style_false_rejection: float

    @property
    def dropped(self) -> list[str]:
        return [name for name, keep in zip(FEATURES, self.used, strict=True) if not keep]

    def acceptable(self) -> bool:
        return self.worst_style_false_rejection <= MAX_STYLE_FALSE_REJECTION * 2 and self.false_rejection <= MAX_STYLE_FALSE_REJECTION

    def describe(self) -> str:
        dropped = f", without {', '.join(self.dropped)}" if self.dropped else ""
        return (f"C={self.C}{dropped}: held out by style {self.negatives_rejected:.0%} out-of-scope rejected, "
                f"{self.false_rejection:.1%} answerable rejected (worst style {self.worst_style} "
                f"{self.worst_style_false_rejection:.0%})")


def leave_one_style_out(x: np.ndarray, y: np.ndarray, styles: Sequence[str], C: float, max_false_rejection: float,
                        used: Sequence[bool]) -> HeldOut:
    styles_arr = np.asarray(styles)
    rejected_negative = rejected_positive = 0
    worst, worst_rate = "", 0.0
    for style in sorted(set(styles)):
        test = styles_arr == style
        train = ~test
        if len(set(y[train])) < 2:
            continue
        model = fit_logistic(x[train], y[train], C, max_false_rejection, "", used)
        rejected = np.array([model.probability_of(v) < model.threshold for v in x[test]])
        truth = y[test]
        rejected_negative += int((rejected & (truth == 0)).sum())
        style_positive = int((rejected & (truth == 1)).sum())
        rejected_positive += style_positive
        if (truth == 1).sum() >= 10 and style_positive / (truth == 1).sum() > worst_rate:
            worst, worst_rate = style, style_positive / float((truth == 1).sum())
    return HeldOut(C, tuple(bool(u) for u in used), rejected_negative / max(1, int((y == 0).sum())),
                   rejected_positive / max(1, int((y == 1).sum())), worst, worst_rate)


def candidate_feature_sets(n: int) -> list[tuple[bool, ...]]:
    """All features, and all but one: enough to find a feature that only one style relies on."""
    full = tuple([True] * n)
    return [full] + [tuple(j != i for j in range(n)) for i in range(n)]


def choose_design(x: np.ndarray, y: np.ndarray, styles: Sequence[str], max_false_rejection: float) -> tuple[HeldOut, list[HeldOut]]:
    """The design that rejects most held-out out-of-scope queries while no held-out style loses
    much (ties: fewer false rejections, stronger regularisation, more features)."""
    results = [leave_one_style_out(x, y, styles, C, max_false_rejection, used)
               for used in candidate_feature_sets(x.shape[1]) for C in REGULARISATION_GRID]
    acceptable = [r for r in results if r.acceptable()] or results

    def key(r: HeldOut) -> tuple[float, float, float, float, int]:
        return (round(r.negatives_rejected - 2 * r.false_rejection, 3), -r.worst_style_false_rejection,
                -r.false_rejection, -r.C, sum(r.used))

    return max(acceptable, key=key), results


def fit_style_robust(x: np.ndarray, y: np.ndarray, styles: Sequence[str], max_false_rejection: float,
                     label: str) -> tuple[ConfidenceModel, HeldOut, float]:
    """The best design at the pooled budget `max_false_rejection`; when no design keeps every
    held-out style within the guard, the pooled budget is tightened a step at a time (a pooled
    threshold at 3% can leave an unseen style at 11%), down to BUDGET_FLOOR."""
    budget = max_false_rejection
    best, _ = choose_design(x, y, styles, budget)
    while not best.acceptable() and budget - BUDGET_STEP >= BUDGET_FLOOR - 1e-9:
        budget = round(budget - BUDGET_STEP, 4)
        best, _ = choose_design(x, y, styles, budget)
    note = f"; pooled budget {budget:.1%}" if budget != max_false_rejection else ""
    model = fit_logistic(x, y, best.C, budget, f"{label}; {best.describe()}{note}", best.used)
    return model, best, budget
