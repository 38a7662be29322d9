"""Does a not-covered list help the confidence model on query styles it was not fitted on?

For each list (`none`, a YAML file, or several joined with `+`), the calibration pool (our own set
and the blind selection side, as `kb calibrate` uses it) is searched with that list in force, and
the confidence design is chosen by leave-one-style-out cross-validation at each pooled budget, as
`kb calibrate` does (kb_service/search/calibration.py; it then takes the best of the budgets by the
same held-out measure). Prints held-out out-of-scope rejected / answerable rejected / worst style
per list and budget. Hybrid, m3e-small int8. `--without` leaves features out of every design.

    python scripts/not_covered_heldout.py none articles/not-covered.yaml \\
        eval/not-covered/first-two-writers.yaml \\
        articles/not-covered.yaml+eval/not-covered/extra-writers-5-6.yaml
    python scripts/not_covered_heldout.py articles/not-covered.yaml --without not_covered_words
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import yaml

from kb_service.cli.quality import CONFIDENCE_POOL
from kb_service.evaluation.runner import engine_for, load_dev_set, load_own_set, run_queries
from kb_service.search.calibration import choose_design
from kb_service.search.confidence import FEATURES
from kb_service.settings import Settings


def joined_list(spec: str, folder: Path) -> Path:
    """One YAML file holding every topic of the `+`-joined files (a missing file: no list)."""
    if spec == "none":
        return folder / "absent.yaml"
    topics: dict[str, list[str]] = {}
    for part in spec.split("+"):
        for topic, questions in (yaml.safe_load(Path(part).read_text(encoding="utf-8")) or {}).items():
            topics.setdefault(topic, []).extend(q for q in questions if q not in topics.get(topic, []))
    path = folder / f"list-{abs(hash(spec))}.yaml"
    path.write_text(yaml.safe_dump(topics, allow_unicode=True), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lists", nargs="+", help="none, a not-covered YAML file, or files joined with +")
    parser.add_argument("--budgets", default="0.03,0.025,0.02,0.015", help="pooled false-rejection budgets")
    parser.add_argument("--without", default="", help="comma-separated features to leave out of every design "
                        "(e.g. not_covered_words)")
    args = parser.parse_args()
    pool = load_own_set(Path("eval/queries.jsonl")) + [q for p in CONFIDENCE_POOL for q in load_dev_set(Path(p))]
    budgets = [float(b) for b in args.budgets.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.lists:
            settings = Settings(not_covered_path=joined_list(spec, Path(tmp)))
            _, engine = engine_for(settings, "m3e-small")
            outcomes = run_queries(pool, lambda q, e=engine: e.search(q, k=10, mode="hybrid"))
            engine.close()
            x = np.array([o.features for o in outcomes], dtype=float)
            for name in filter(None, args.without.split(",")):
                x[:, FEATURES.index(name)] = 0.0  # a constant column: the fit gives it no weight
            y = np.array([0 if o.query.negative else 1 for o in outcomes])
            styles = [o.query.kind for o in outcomes]
            for budget in budgets:
                best, _ = choose_design(x, y, styles, [budget])
                guard = "" if best.acceptable() else " (guard failed)"
                without = f" without {args.without}" if args.without else ""
                print(f"{spec}{without} @ {budget:.1%}: {best.describe()}{guard}", flush=True)


if __name__ == "__main__":
    main()
