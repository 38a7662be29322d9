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
MAX_STYLE_FALSE_REJECTION = 0.05  # the most any held-out style may lose to "not confident" (twice this at worst)
MAX_HELD_OUT_FALSE_REJECTION = 0.03  # answerable queries wrongly rejected, held out: the search target
BUDGET_STEP = 0.005  # spacing of the pooled false-rejection budgets tried
BUDGET_FLOOR = 0.015  # never below: the threshold would reject too few out-of-scope queries to matter


def budgets_up_to(max_false_rejection: float) -> tuple[float, ...]:
    """The pooled budgets tried, loosest first: `max_false_rejection`, then half a point lower
    each time down to BUDGET_FLOOR."""
    budgets, budget = [], max_false_rejection
    while budget >= BUDGET_FLOOR - 1e-9:
        budgets.append(round(budget, 4))
        budget -= BUDGET_STEP
    return tuple(budgets) or (max_false_rejection,)


def threshold_for(positive_probabilities: np.ndarray, max_false_rejection: float) -> float:
    """The highest probability that rejects at most `max_false_rejection` of the answerable queries."""
    if not len(positive_probabilities):
        return 0.5
    positives = np.sort(positive_probabilities)
    return float(max(1e-6, positives[int(max_false_rejection * len(positives))] - 1e-9))


def probabilities(model: ConfidenceModel, rows: np.ndarray) -> np.ndarray:
    return np.array([model.probability_of(v) for v in rows], dtype=float)


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
    model.threshold = threshold_for(probabilities(model, x[y == 1]), max_false_rejection)
    return model


@dataclass(frozen=True)
class HeldOut:
    """Leave-one-style-out result of one design (regularisation + features + pooled budget)."""

    C: float
    used: tuple[bool, ...]
    budget: float  # the pooled false-rejection budget each fold's threshold was set at
    negatives_rejected: float  # over all held-out out-of-scope queries
    false_rejection: float  # over all held-out answerable queries
    worst_style: str
    worst_style_false_rejection: float

    @property
    def dropped(self) -> list[str]:
        return [name for name, keep in zip(FEATURES, self.used, strict=True) if not keep]

    def acceptable(self) -> bool:
        return (self.worst_style_false_rejection <= MAX_STYLE_FALSE_REJECTION * 2
                and self.false_rejection <= MAX_HELD_OUT_FALSE_REJECTION + 1e-9)

    def describe(self) -> str:
        dropped = f", without {', '.join(self.dropped)}" if self.dropped else ""
        return (f"C={self.C}{dropped}, pooled budget {self.budget:.1%}: held out by style "
                f"{self.negatives_rejected:.0%} out-of-scope rejected, {self.false_rejection:.1%} answerable "
                f"rejected (worst style {self.worst_style} {self.worst_style_false_rejection:.0%})")


def leave_one_style_out(x: np.ndarray, y: np.ndarray, styles: Sequence[str], C: float, budgets: Sequence[float],
                        used: Sequence[bool]) -> list[HeldOut]:
    """One result per budget: each fold is fitted once, and only its threshold depends on the budget."""
    styles_arr = np.asarray(styles)
    rejected_negative = np.zeros(len(budgets), dtype=int)
    rejected_positive = np.zeros(len(budgets), dtype=int)
    worst: list[tuple[float, str]] = [(0.0, "")] * len(budgets)
    for style in sorted(set(styles)):
        test = styles_arr == style
        train = ~test
        if len(set(y[train])) < 2:
            continue
        model = fit_logistic(x[train], y[train], C, budgets[0], "", used)
        train_positive = probabilities(model, x[train][y[train] == 1])
        held_out, truth = probabilities(model, x[test]), y[test]
        for b, budget in enumerate(budgets):
            rejected = held_out < threshold_for(train_positive, budget)
            rejected_negative[b] += int((rejected & (truth == 0)).sum())
            style_positive = int((rejected & (truth == 1)).sum())
            rejected_positive[b] += style_positive
            if (truth == 1).sum() >= 10 and style_positive / (truth == 1).sum() > worst[b][0]:
                worst[b] = (style_positive / float((truth == 1).sum()), style)
    n_negative, n_positive = max(1, int((y == 0).sum())), max(1, int((y == 1).sum()))
    return [HeldOut(C, tuple(bool(u) for u in used), budget, rejected_negative[b] / n_negative,
                    rejected_positive[b] / n_positive, worst[b][1], worst[b][0]) for b, budget in enumerate(budgets)]


def candidate_feature_sets(n: int) -> list[tuple[bool, ...]]:
    """All features, and all but one: enough to find a feature that only one style relies on."""
    full = tuple([True] * n)
    return [full] + [tuple(j != i for j in range(n)) for i in range(n) if n > 1]


def choose_design(x: np.ndarray, y: np.ndarray, styles: Sequence[str], budgets: Sequence[float]) -> tuple[HeldOut, list[HeldOut]]:
    """The design (features, regularisation and pooled budget) that rejects most held-out
    out-of-scope queries for the answerable ones it costs, each counted twice, among those that
    keep held-out false rejections within the target (3%) and no held-out style far above it (ties:
    fewer false rejections, stronger regularisation, more features). When none does, the best of all.

    The budget is chosen like the rest: a tighter one is worth it when it costs fewer held-out
    answerable queries than it gives up out-of-scope ones, and a looser one when the reverse."""
    results = [held for used in candidate_feature_sets(x.shape[1]) for C in REGULARISATION_GRID
               for held in leave_one_style_out(x, y, styles, C, budgets, used)]
    return best_design(results), results


def best_design(results: Sequence[HeldOut]) -> HeldOut:
    """choose_design's pick among held-out results: the preferred acceptable one, or the preferred
    of all when none is acceptable."""
    acceptable = [r for r in results if r.acceptable()] or list(results)
    return max(acceptable, key=design_preference)


def design_preference(r: HeldOut) -> tuple[float, float, float, float, int]:
    """How choose_design ranks designs, larger first (see there)."""
    return (round(r.negatives_rejected - 2 * r.false_rejection, 3), -r.worst_style_false_rejection,
            -r.false_rejection, -r.C, sum(r.used))


def fit_style_robust(x: np.ndarray, y: np.ndarray, styles: Sequence[str], max_false_rejection: float,
                     label: str) -> tuple[ConfidenceModel, HeldOut]:
    """The best design over the pooled budgets from `max_false_rejection` down to BUDGET_FLOOR
    (a pooled threshold at 3% can leave an unseen style at 11%), fitted on the whole pool."""
    best, _ = choose_design(x, y, styles, budgets_up_to(max_false_rejection))
    model = fit_logistic(x, y, best.C, best.budget, f"{label}; {best.describe()}", best.used)
    return model, best
