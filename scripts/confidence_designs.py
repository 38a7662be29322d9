"""How the confidence design search behaves: near-ties, pools and one feature switched off.

`kb calibrate` picks one of ~300 designs (feature set × regularisation × pooled budget) by
leave-one-style-out figures on the calibration pool (kb_service/search/calibration.py). Three
questions it cannot answer by itself, hybrid m3e-small int8, on the eval index `kb eval` uses:

    # the best N designs, each fitted on the whole pool: what each rejects on the reported sets
    python scripts/confidence_designs.py noise --top 15
    # held out on the queries both pools share: the pool as it is, and with a set added
    python scripts/confidence_designs.py pools --add eval/blind/workplace-1.jsonl
    # the chosen design with words read as abbreviations, typos or glued function characters counted as known, and without
    python scripts/confidence_designs.py understood
    # candidate features added to the fifteen: the re-ranker's score, interactions (held out)
    python scripts/confidence_designs.py extra
    # a fixed grid of designs (C × pooled budget, without question_match), held out by style: run at
    # two commits to compare feature code at equal designs, not only at the design each one picks
    python scripts/confidence_designs.py grid

Every figure is a count of queries (rejected / total), so two runs can be compared exactly.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

import kb_service.search.confidence as confidence
from kb_service.cli.quality import CONFIDENCE_POOL
from kb_service.evaluation.runner import LabelledQuery, engine_for, load_dev_set, load_own_set, run_queries
from kb_service.search.calibration import (
    HeldOut,
    budgets_up_to,
    choose_design,
    design_preference,
    fit_logistic,
    leave_one_style_out,
    probabilities,
    threshold_for,
)
from kb_service.settings import Settings

REPORTED = ("eval/blind/report.jsonl", "eval/blind/workplace-2.jsonl", "../shared/eval/dev.jsonl",
            "../shared/eval/dev-styles.jsonl")


def pool_queries(extra: tuple[str, ...] = ()) -> list[LabelledQuery]:
    return load_own_set(Path("eval/queries.jsonl")) + [q for p in (*CONFIDENCE_POOL, *extra) for q in load_dev_set(Path(p))]


class Features:
    """Hybrid confidence features of labelled queries, from one engine."""

    def __init__(self) -> None:
        _, self.engine = engine_for(Settings(), "m3e-small")

    def of(self, queries: list[LabelledQuery]) -> tuple[np.ndarray, np.ndarray]:
        outcomes = run_queries(queries, lambda q: self.engine.search(q, k=10, mode="hybrid"))
        x = np.array([o.features for o in outcomes], dtype=float)
        return x, np.array([0 if o.query.negative else 1 for o in outcomes])


def ranked_designs(x: np.ndarray, y: np.ndarray, styles: list[str]) -> list[HeldOut]:
    """Every design, best first, in the order `kb calibrate` prefers them."""
    _, results = choose_design(x, y, styles, budgets_up_to(0.03))
    acceptable = [r for r in results if r.acceptable()] or results
    return sorted(acceptable, key=design_preference, reverse=True)


def held_out_rejections(x: np.ndarray, y: np.ndarray, styles: np.ndarray, design: HeldOut) -> np.ndarray:
    """Per query: rejected when its style was left out of the fit (threshold included)."""
    rejected = np.zeros(len(y), dtype=bool)
    for style in sorted(set(styles)):
        test = styles == style
        train = ~test
        if len(set(y[train])) < 2:
            continue
        model = fit_logistic(x[train], y[train], design.C, design.budget, "", design.used)
        threshold = threshold_for(probabilities(model, x[train][y[train] == 1]), design.budget)
        rejected[test] = probabilities(model, x[test]) < threshold
    return rejected


def counts(rejected: np.ndarray, y: np.ndarray) -> str:
    return (f"out-of-scope rejected {int(rejected[y == 0].sum())}/{int((y == 0).sum())}, "
            f"answerable rejected {int(rejected[y == 1].sum())}/{int((y == 1).sum())}")


def noise(top: int) -> None:
    features = Features()
    pool = pool_queries()
    x, y = features.of(pool)
    reported = {Path(p).stem: features.of(load_dev_set(Path(p))) for p in REPORTED if Path(p).exists()}
    for design in ranked_designs(x, y, [q.kind for q in pool])[:top]:
        model = fit_logistic(x, y, design.C, design.budget, "", design.used)
        cells = [f"{name}: {counts(probabilities(model, rx) < model.threshold, ry)}" for name, (rx, ry) in reported.items()]
        print(f"{design.describe()}\n    " + "\n    ".join(cells))


def pools(added: tuple[str, ...]) -> None:
    features = Features()
    base, wider = pool_queries(), pool_queries(added)
    x, y = features.of(wider)
    styles = np.array([q.kind for q in wider])
    shared = np.arange(len(wider)) < len(base)  # the added sets come last
    for name, rows in (("the pool", shared), (f"the pool + {', '.join(added)}", np.ones(len(wider), dtype=bool))):
        design = ranked_designs(x[rows], y[rows], list(styles[rows]))[0]
        rejected = np.zeros(len(wider), dtype=bool)
        rejected[rows] = held_out_rejections(x[rows], y[rows], styles[rows], design)
        print(f"{name}: {design.describe()}\n    on the {int(shared.sum())} shared queries: "
              f"{counts(rejected[shared], y[shared])}")


def understood() -> None:
    features = Features()
    pool = pool_queries()
    styles = [q.kind for q in pool]
    switched: dict[str, Callable] = {"without": lambda known, read_as_known, specificity=None: known,
                                     "with": confidence.understood_or}
    original = confidence.understood_or
    try:
        for name, function in switched.items():
            confidence.understood_or = function
            x, y = features.of(pool)
            design = ranked_designs(x, y, styles)[0]
            rejected = held_out_rejections(x, y, np.array(styles), design)
            print(f"{name} words read as known: {design.describe()}\n    held out: {counts(rejected, y)}")
    finally:
        confidence.understood_or = original


def extra() -> None:
    """Held out by style with candidate features beside the fifteen: the re-ranker's score of the
    top article and its margin over the second (read from the engine's re-ranking), a flag for no
    lexical evidence, and products of features. The best design is chosen for each, as in
    `kb calibrate`; a feature helps only if it rejects more out-of-scope for what it costs."""
    import kb_service.search.engine as engine_module

    features = Features()
    pool = pool_queries()
    scores: list[tuple[float, float]] = []
    original = engine_module.reranked

    def recording(grouped, rerank_scores):  # type: ignore[no-untyped-def]
        ordered = np.sort(rerank_scores)[::-1]
        scores.append((float(ordered[0]), float(ordered[0] - ordered[1])))
        return original(grouped, rerank_scores)

    x_rows, y_rows, top_scores = [], [], []
    engine_module.reranked = recording
    try:
        for query in pool:  # one at a time: the first question's re-ranking is its confidence's
            scores.clear()
            x, y = features.of([query])
            x_rows.append(x[0])
            y_rows.append(y[0])
            top_scores.append(scores[0] if scores else (0.0, 0.0))
    finally:
        engine_module.reranked = original
    x, y, rr = np.array(x_rows), np.array(y_rows), np.array(top_scores)
    styles = [q.kind for q in pool]
    column = {name: x[:, i] for i, name in enumerate(confidence.FEATURES)}
    variants = {
        "the fifteen features": [],
        "+ re-ranker top score": [rr[:, 0]],
        "+ re-ranker top score and margin": [rr[:, 0], rr[:, 1]],
        "+ no lexical evidence": [((column["bigram_coverage"] == 0) & (column["known_ratio"] == 0)).astype(float)],
        "+ known_ratio x bigram_coverage": [column["known_ratio"] * column["bigram_coverage"]],
        "+ question_match x known_ratio": [column["question_match"] * column["known_ratio"]],
        "+ question_match x bigram_coverage": [column["question_match"] * column["bigram_coverage"]],
    }
    for name, added in variants.items():
        wider = np.column_stack([x, *added]) if added else x
        design, _ = choose_design(wider, y, styles, budgets_up_to(0.03))
        print(f"{name}: C={design.C}, pooled budget {design.budget:.1%}: held out by style "
              f"{design.negatives_rejected:.1%} out-of-scope rejected, {design.false_rejection:.1%} answerable "
              f"rejected (worst style {design.worst_style} {design.worst_style_false_rejection:.0%})")


def grid() -> None:
    features = Features()
    pool = pool_queries()
    x, y = features.of(pool)
    styles = [q.kind for q in pool]
    used = tuple(name != "question_match" for name in confidence.FEATURES)
    for C in (1.0, 3.0):
        for held in leave_one_style_out(x, y, styles, C, (0.015, 0.02, 0.025), used):
            print(f"C={C}, pooled budget {held.budget:.1%}: held out by style {held.negatives_rejected:.1%} out-of-scope "
                  f"rejected, {held.false_rejection:.1%} answerable rejected (worst style {held.worst_style} "
                  f"{held.worst_style_false_rejection:.0%})")
    best = ranked_designs(x, y, styles)[0]
    print(f"kb calibrate's choice: {best.describe()}: {counts(held_out_rejections(x, y, np.array(styles), best), y)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("noise").add_argument("--top", type=int, default=15)
    commands.add_parser("pools").add_argument("--add", action="append", required=True, help="a set to add (repeat)")
    commands.add_parser("understood")
    commands.add_parser("extra")
    commands.add_parser("grid")
    args = parser.parse_args()
    if args.command == "noise":
        noise(args.top)
    elif args.command == "pools":
        pools(tuple(args.add))
    elif args.command == "extra":
        extra()
    elif args.command == "grid":
        grid()
    else:
        understood()


if __name__ == "__main__":
    main()
