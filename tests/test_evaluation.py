"""Confidence calibration: the fit, its threshold and the held-out estimate it reports."""

from __future__ import annotations

import numpy as np

from kb_service.evaluation import LabelledQuery, QueryOutcome, cross_validated_rejection, fit_confidence


def _outcomes(rng: np.random.Generator, overlap: float) -> list[QueryOutcome]:
    """Answerable queries score around 1 on both features, out-of-scope ones around 0."""
    outcomes = []
    for i in range(60):
        negative = i % 4 == 0
        centre = 0.0 if negative else 1.0
        features = list(rng.normal(centre, overlap, size=2))
        query = LabelledQuery(f"q{i}", "问题", "negative" if negative else "exact", () if negative else ("a",))
        outcomes.append(QueryOutcome(query, None if negative else 1, True, features))
    return outcomes


def test_held_out_estimate_separates_easy_from_overlapping_data() -> None:
    def estimate(overlap: float) -> tuple[float, float]:
        outcomes = _outcomes(np.random.default_rng(0), overlap)
        x = np.array([o.features for o in outcomes])
        y = np.array([0 if o.query.negative else 1 for o in outcomes])
        return cross_validated_rejection(x, y, C=1.0, max_false_rejection=0.0)

    easy_negatives, easy_positives = estimate(0.05)
    hard_negatives, _ = estimate(0.8)
    assert easy_negatives == 1.0 and easy_positives < 0.05  # a held-out positive may fall below the fitted threshold
    assert hard_negatives < 0.9


def test_fit_keeps_false_rejections_within_budget_and_reports_the_held_out_estimate() -> None:
    outcomes = _outcomes(np.random.default_rng(0), overlap=0.6)
    model = fit_confidence(outcomes, max_false_rejection=0.05, label="synthetic")
    positives = [o for o in outcomes if not o.query.negative]
    rejected = sum(model.probability_of(o.features) < model.threshold for o in positives)
    assert rejected <= int(0.05 * len(positives))
    assert "synthetic; C=" in model.fitted_on and "by 10-fold CV" in model.fitted_on
    fixed = fit_confidence(outcomes, max_false_rejection=0.05, label="fixed", C=1.0)
    assert fixed.fitted_on == "fixed"
