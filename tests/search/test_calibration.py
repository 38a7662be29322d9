"""Style-robust confidence fitting: leave-one-style-out picks features that hold on every style."""

from __future__ import annotations

import numpy as np

from kb_service.search.calibration import budgets_up_to, choose_design, fit_logistic, leave_one_style_out


def _pool(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature 0 separates answerable from out-of-scope in every style; feature 1 does so in the
    'short' style only and is reversed in 'pasted' (as word coverage is for long messages)."""
    rows, labels, styles = [], [], []
    for style in ("short", "colloquial", "pasted", "trad"):
        for i in range(60):
            answerable = i % 4 != 0
            general = rng.normal(1.0 if answerable else -1.0, 0.5)
            if style == "short":
                local = 3.0 if answerable else -3.0
            elif style == "pasted":
                local = -2.0 if answerable else 2.0
            else:
                local = rng.normal(0.0, 1.0)
            rows.append([general, local + rng.normal(0.0, 0.3)])
            labels.append(int(answerable))
            styles.append(style)
    return np.array(rows), np.array(labels), styles


def test_threshold_keeps_false_rejections_within_budget() -> None:
    x, y, _ = _pool(np.random.default_rng(0))
    model = fit_logistic(x, y, C=1.0, max_false_rejection=0.05, label="t")
    rejected = sum(model.probability_of(v) < model.threshold for v, t in zip(x, y, strict=True) if t == 1)
    assert rejected <= int(0.05 * int(y.sum()))


def test_unused_features_get_zero_weight() -> None:
    x, y, _ = _pool(np.random.default_rng(0))
    model = fit_logistic(x, y, C=1.0, max_false_rejection=0.05, label="t", used=(True, False))
    assert model.weights[1] == 0.0 and model.weights[0] > 0


def test_a_feature_that_only_one_style_carries_loses_when_that_style_is_held_out() -> None:
    x, y, styles = _pool(np.random.default_rng(1))
    [both] = leave_one_style_out(x, y, styles, C=1.0, budgets=[0.03], used=(True, True))
    [general_only] = leave_one_style_out(x, y, styles, C=1.0, budgets=[0.03], used=(True, False))
    assert general_only.worst_style_false_rejection < both.worst_style_false_rejection
    best, results = choose_design(x, y, styles, budgets=[0.03])
    assert best.used == (True, False)  # the style-specific feature is dropped
    assert len(results) == 3 * 5  # all features, and all but each one, at every regularisation strength


def _one_feature_pool(rng: np.random.Generator, gap: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Answerable and out-of-scope queries `gap` apart on one feature, in four styles."""
    rows, labels, styles = [], [], []
    for style in ("short", "colloquial", "pasted", "trad"):
        for i in range(100):
            answerable = i % 4 != 0
            rows.append([rng.normal(gap if answerable else 0.0, 1.0)])
            labels.append(int(answerable))
            styles.append(style)
    return np.array(rows), np.array(labels), styles


def test_budgets_run_from_the_ceiling_down_to_the_floor() -> None:
    assert budgets_up_to(0.03) == (0.03, 0.025, 0.02, 0.015)
    assert budgets_up_to(0.01) == (0.01,)


def test_a_tighter_budget_is_chosen_when_it_costs_no_out_of_scope_rejections() -> None:
    x, y, styles = _one_feature_pool(np.random.default_rng(2), gap=8.0)  # far apart: every budget rejects them all
    best, results = choose_design(x, y, styles, budgets=[0.03, 0.015])
    assert {r.budget for r in results} == {0.03, 0.015}
    assert best.negatives_rejected == 1.0 and best.budget == 0.015


def test_a_looser_budget_is_chosen_when_it_rejects_more_out_of_scope_than_it_costs() -> None:
    x, y, styles = _one_feature_pool(np.random.default_rng(3), gap=2.5)  # overlapping: the last 1.5% buy many
    best, results = choose_design(x, y, styles, budgets=[0.02, 0.005])
    tight = max((r for r in results if r.budget == 0.005), key=lambda r: r.negatives_rejected)
    assert best.budget == 0.02 and best.negatives_rejected > tight.negatives_rejected


def test_a_budget_whose_held_out_false_rejections_exceed_the_target_is_not_chosen() -> None:
    x, y, styles = _one_feature_pool(np.random.default_rng(3), gap=2.5)
    best, results = choose_design(x, y, styles, budgets=[0.03, 0.015])
    loose = [r for r in results if r.budget == 0.03]
    # Held out, a 3% threshold rejects more than 3% (each fold's threshold is fitted on the others):
    # it would reject more out-of-scope queries, but misses the target, so 1.5% is chosen.
    assert all(r.false_rejection > 0.03 and not r.acceptable() for r in loose)
    assert best.budget == 0.015 and best.negatives_rejected < max(r.negatives_rejected for r in loose)
