"""Style-robust confidence fitting: leave-one-style-out picks features that hold on every style."""

from __future__ import annotations

import numpy as np

from kb_service.search.calibration import choose_design, fit_logistic, leave_one_style_out


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
    both = leave_one_style_out(x, y, styles, C=1.0, max_false_rejection=0.03, used=(True, True))
    general_only = leave_one_style_out(x, y, styles, C=1.0, max_false_rejection=0.03, used=(True, False))
    assert general_only.worst_style_false_rejection < both.worst_style_false_rejection
    best, results = choose_design(x, y, styles, max_false_rejection=0.03)
    assert best.used == (True, False)  # the style-specific feature is dropped
    assert len(results) == 3 * 5  # all features, and all but each one, at every regularisation strength
