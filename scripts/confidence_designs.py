"""How the confidence design search behaves: near-ties, pools and one feature switched off.

`kb calibrate` picks one of ~300 designs (feature set × regularisation × pooled budget) by
leave-one-style-out figures on the calibration pool (kb_service/search/calibration.py). Questions
it cannot answer by itself, for hybrid m3e-small int8 on the eval index `kb eval` uses:

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
    # is kb calibrate's own held-out figure optimistic? Each blind set of the pool left out in turn,
    # the design chosen on the rest (held out by style, by set, or by both), judged on the set left out
    python scripts/confidence_designs.py nested
    # the same with a set added to every fit (never left out): does more data of its kind help?
    python scripts/confidence_designs.py nested --add eval/blind/out-of-scope-fresh.jsonl
    # the grid again with each weight held to the sign its feature should have (more evidence of
    # an answer never lowers confidence), against the unconstrained fit
    python scripts/confidence_designs.py signs

Every figure is a count of queries (rejected / total), so two runs can be compared exactly.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

import kb_service.search.calibration as calibration
import kb_service.search.confidence as confidence
from kb_service.cli.quality import CONFIDENCE_POOL
from kb_service.evaluation.runner import LabelledQuery, engine_for, load_dev_set, load_own_set, run_queries
from kb_service.search.calibration import (
    REGULARISATION_GRID,
    HeldOut,
    best_design,
    budgets_up_to,
    candidate_feature_sets,
    choose_design,
    design_preference,
    fit_logistic,
    leave_one_style_out,
    probabilities,
    threshold_for,
)
from kb_service.settings import Settings

BUDGETS = budgets_up_to(0.03)  # the pooled budgets kb calibrate tries
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


def grid_inputs() -> tuple[np.ndarray, np.ndarray, list[str], tuple[bool, ...]]:
    """The pool's features, labels and styles, and the grid's feature set (all but question_match)."""
    pool = pool_queries()
    x, y = Features().of(pool)
    return x, y, [q.kind for q in pool], tuple(name != "question_match" for name in confidence.FEATURES)


def grid() -> None:
    x, y, styles, used = grid_inputs()
    for C in (1.0, 3.0):
        for held in leave_one_style_out(x, y, styles, C, (0.015, 0.02, 0.025), used):
            print(f"C={C}, pooled budget {held.budget:.1%}: held out by style {held.negatives_rejected:.1%} out-of-scope "
                  f"rejected, {held.false_rejection:.1%} answerable rejected (worst style {held.worst_style} "
                  f"{held.worst_style_false_rejection:.0%})")
    best = ranked_designs(x, y, styles)[0]
    print(f"kb calibrate's choice: {best.describe()}: {counts(held_out_rejections(x, y, np.array(styles), best), y)}")


def pool_by_set(extra: tuple[str, ...] = ()) -> tuple[list[LabelledQuery], np.ndarray]:
    """The calibration pool (with `extra` sets) and, per query, the set (writers) it comes from."""
    own = load_own_set(Path("eval/queries.jsonl"))
    queries, names = list(own), ["own"] * len(own)
    for path in (*CONFIDENCE_POOL, *extra):
        labelled = load_dev_set(Path(path))
        queries += labelled
        names += [Path(path).stem] * len(labelled)
    return queries, np.array(names)


def designs_by_key(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[tuple, HeldOut]:
    """Every design kb calibrate tries, held out by `groups` (each group left out in turn)."""
    return {(held.C, held.used, held.budget): held for used in candidate_feature_sets(x.shape[1])
            for C in REGULARISATION_GRID for held in leave_one_style_out(x, y, list(groups), C, BUDGETS, used)}


def chosen(by_style: dict[tuple, HeldOut], by_set: dict[tuple, HeldOut], rule: str) -> HeldOut:
    """kb calibrate's rule on the style folds (`style`), the same rule on the writer folds (`set`),
    or acceptable on both and best on their mean (`both`)."""
    if rule in ("style", "set"):
        return best_design(list((by_style if rule == "style" else by_set).values()))
    keys = [k for k in by_style if by_style[k].acceptable() and by_set[k].acceptable()] or list(by_style)

    def mean_preference(key: tuple) -> tuple:
        a, b = by_style[key], by_set[key]
        gain = (a.negatives_rejected + b.negatives_rejected) / 2 - (a.false_rejection + b.false_rejection)
        return (round(gain, 3), *design_preference(a)[1:])

    return by_style[max(keys, key=mean_preference)]


def nested(added: tuple[str, ...] = ()) -> None:
    """Each blind set of the pool left out in turn; a design chosen on the rest by each rule of
    `chosen`, fitted on the rest, and judged on the set left out (new writers, every style).
    `added` sets join every fit and are never left out, so runs with and without them are judged
    on the same queries."""
    features = Features()
    pool, sets = pool_by_set(added)
    x, y = features.of(pool)
    styles = np.array([q.kind for q in pool])
    totals = {rule: np.zeros(4, dtype=int) for rule in ("style", "set", "both")}
    for outer in (Path(p).stem for p in CONFIDENCE_POOL):
        inner = sets != outer
        by_style = designs_by_key(x[inner], y[inner], styles[inner])
        by_set = designs_by_key(x[inner], y[inner], sets[inner])
        for rule, total in totals.items():
            design = chosen(by_style, by_set, rule)
            model = fit_logistic(x[inner], y[inner], design.C, design.budget, "", design.used)
            rejected = probabilities(model, x[~inner]) < model.threshold
            truth = y[~inner]
            row = np.array([rejected[truth == 0].sum(), (truth == 0).sum(), rejected[truth == 1].sum(),
                            (truth == 1).sum()])
            total += row
            described = design.describe().replace("by style", "by set") if rule == "set" else design.describe()
            print(f"{outer} left out, chosen by {rule}: {described}\n    on {outer}: out-of-scope rejected "
                  f"{row[0]}/{row[1]}, answerable rejected {row[2]}/{row[3]}", flush=True)
    for rule, total in totals.items():
        print(f"all {len(CONFIDENCE_POOL)} sets left out, chosen by {rule}: out-of-scope rejected {total[0]}/{total[1]}, "
              f"answerable rejected {total[2]}/{total[3]}")


# The sign each weight should have: evidence of an answer never lowers confidence, evidence of a
# topic the knowledge base lacks never raises it (0: either way).
EXPECTED_SIGN = {"semantic_top": 1, "semantic_margin": 1, "word_coverage": 1, "bigram_coverage": 1, "known_ratio": 1,
                 "domain_terms": 1, "agreement": 1, "lexical_strength": 1, "semantic_density": 0, "question_match": 1,
                 "unknown_word": -1, "unknown_share": -1, "not_covered": -1, "not_covered_words": -1,
                 "answered_match": 1}


def fit_signed(x: np.ndarray, y: np.ndarray, C: float, max_false_rejection: float, label: str,
               used: tuple[bool, ...] | None = None) -> confidence.ConfidenceModel:
    """fit_logistic's model (standardised features, balanced classes, L2 at C) with every weight
    bounded to EXPECTED_SIGN, by L-BFGS-B."""
    from scipy.optimize import minimize

    mask = np.ones(x.shape[1], dtype=bool) if used is None else np.asarray(used, dtype=bool)
    mean, std = x[:, mask].mean(axis=0), np.maximum(x[:, mask].std(axis=0), 1e-6)
    z, sign = (x[:, mask] - mean) / std, 2 * y - 1
    weight = np.where(y == 1, len(y) / (2 * (y == 1).sum()), len(y) / (2 * (y == 0).sum()))
    names = [name for name, keep in zip(confidence.FEATURES, mask, strict=True) if keep]
    bounds = [{1: (0, None), -1: (None, 0)}.get(EXPECTED_SIGN[name], (None, None)) for name in names] + [(None, None)]

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (z @ params[:-1] + params[-1])
        slope = -weight * sign / (1 + np.exp(margin))
        value = C * float(np.sum(weight * np.logaddexp(0, -margin))) + 0.5 * float(params[:-1] @ params[:-1])
        return value, np.append(C * (z.T @ slope) + params[:-1], C * slope.sum())

    fitted = minimize(loss, np.zeros(len(names) + 1), jac=True, method="L-BFGS-B", bounds=bounds).x
    weights = np.zeros(x.shape[1])
    weights[mask] = fitted[:-1] / std
    bias = float(fitted[-1] - (fitted[:-1] * mean / std).sum())
    model = confidence.ConfidenceModel(list(map(float, weights)), bias, 0.5, label)
    model.threshold = threshold_for(probabilities(model, x[y == 1]), max_false_rejection)
    return model


def signs() -> None:
    """The grid's designs fitted as kb calibrate fits them, then with EXPECTED_SIGN held."""
    x, y, styles, used = grid_inputs()
    negatives, positives = int((y == 0).sum()), int((y == 1).sum())
    original = calibration.fit_logistic
    for name, fit in (("unconstrained", original), ("signs held", fit_signed)):
        calibration.fit_logistic = fit  # leave_one_style_out fits through the module's name
        try:
            for C in (0.3, 1.0, 3.0):
                for held in leave_one_style_out(x, y, styles, C, BUDGETS, used):
                    print(f"{name}, C={C}, pooled budget {held.budget:.1%}: held out by style out-of-scope rejected "
                          f"{round(held.negatives_rejected * negatives)}/{negatives}, answerable rejected "
                          f"{round(held.false_rejection * positives)}/{positives}")
            weights = fit(x, y, 3.0, 0.025, "", used).weights
            print(f"{name}, C=3.0 on the whole pool: " + ", ".join(
                f"{f} {w:+.1f}" for f, w in zip(confidence.FEATURES, weights, strict=True) if w))
        finally:
            calibration.fit_logistic = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("noise").add_argument("--top", type=int, default=15)
    commands.add_parser("pools").add_argument("--add", action="append", required=True, help="a set to add (repeat)")
    commands.add_parser("understood")
    commands.add_parser("extra")
    commands.add_parser("grid")
    commands.add_parser("nested").add_argument("--add", action="append", default=[],
                                               help="a set for the fits only (repeat)")
    commands.add_parser("signs")
    args = parser.parse_args()
    if args.command == "noise":
        noise(args.top)
    elif args.command == "pools":
        pools(tuple(args.add))
    elif args.command == "extra":
        extra()
    elif args.command == "grid":
        grid()
    elif args.command == "nested":
        nested(tuple(args.add))
    elif args.command == "signs":
        signs()
    else:
        understood()


if __name__ == "__main__":
    main()
