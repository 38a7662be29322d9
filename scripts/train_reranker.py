"""Train the learned re-ranker (kb_service/search/rerank.py) on the training pool, per embedder.

For each question of the pool (articles/section-questions.jsonl: written from the articles,
never indexed, never evaluated on) and of our own set (eval/queries.jsonl), the engine's first
`rerank_depth` hybrid articles, in fused order, each get RERANK_FEATURES and a label (its shown
passage is the question's section; for our own set, its article is one of those labelled). Gradient-boosted
trees (scikit-learn) learn the label; their arrays go to kb_service/resources/reranker.json under
the embedder's key. The blind sets judge the result (`kb eval`); none is read here.

    python scripts/train_reranker.py [--models m3e-small] [--pool articles/section-questions.jsonl]

The indexes are those `kb eval` and `kb calibrate` use (indexes/eval/<model>/), built if needed.
After training, refit the confidence model: `kb calibrate`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from kb_service.evaluation.runner import engine_for, load_own_set
from kb_service.query.reading import read_query
from kb_service.search.passages import coverage_scorer
from kb_service.search.rerank import RERANK_FEATURES, TreeEnsemble, candidate_features
from kb_service.settings import PROJECT_ROOT, Settings


def pool_rows(engine, pool: list[dict], depth: int) -> tuple[np.ndarray, np.ndarray, int]:  # type: ignore[no-untyped-def]
    """Features and labels of every question's candidates; how many questions had their answer among them."""
    snap = engine._snapshot  # noqa: SLF001 - training reads the engine's own candidates
    rows, labels, found = [], [], 0
    for item in pool:
        reading = read_query(item["query"], engine.settings.max_query_chars)
        analyzed = snap.analyzer.analyze(reading.questions[0] if reading.questions else item["query"])
        vector = np.asarray(engine.embedder.encode([analyzed.semantic_text])[0])
        ranked = engine._rank(snap, analyzed, vector, depth, None, None, "hybrid")  # noqa: SLF001
        baseline = float(np.dot(vector, snap.vector_mean)) if snap.vector_mean is not None else None
        coverage = coverage_scorer(analyzed, snap.analyzer.tokenizer.specificity)
        features = candidate_features(analyzed, ranked.grouped, snap.passages.__getitem__,
                                      lambda pid, coverage=coverage: coverage(snap.passages[pid]), baseline)
        wanted = [(snap.passages[c.passage_id].article_id, snap.passages[c.passage_id].heading) == (item["article"], item["heading"])
                  if item.get("heading") else snap.passages[c.passage_id].article_id in item["articles"]
                  for c in ranked.grouped]
        found += any(wanted)
        rows.append(features)
        labels += wanted
    return np.vstack(rows), np.asarray(labels, dtype=int), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="m3e-small", help="comma-separated model[:runtime], as for kb eval")
    parser.add_argument("--pool", type=Path, default=PROJECT_ROOT / "articles" / "section-questions.jsonl")
    parser.add_argument("--own", type=Path, default=PROJECT_ROOT / "eval" / "queries.jsonl",
                        help="our own set, its articles as labels (it is for training and comparison; selection-side "
                             "figures decided that it joins the pool: docs/evaluation.md)")
    parser.add_argument("--trees", type=int, default=150)
    parser.add_argument("--tree-depth", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    args = parser.parse_args()
    from sklearn.ensemble import HistGradientBoostingClassifier

    settings = Settings().with_overrides(rerank_depth=0)  # train on the fused order
    out = Path(Settings().reranker_path)
    stored = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    pool = [json.loads(line) for line in args.pool.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.own:
        pool += [{"query": q.query, "article": q.relevant[0], "articles": q.relevant, "heading": ""}
                 for q in load_own_set(args.own) if not q.negative]
    for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
        key, engine = engine_for(settings, spec)
        try:
            known = {(p.article_id, p.heading) for p in engine.passages()}
            articles = {a for a, _ in known}
            usable = [item for item in pool if (item["article"], item["heading"]) in known or
                      (not item["heading"] and item["article"] in articles)]
            x, y, found = pool_rows(engine, usable, Settings().rerank_depth)
        finally:
            engine.close()
        model = HistGradientBoostingClassifier(max_iter=args.trees, max_depth=args.tree_depth,
                                               learning_rate=args.learning_rate, early_stopping=False, random_state=0)
        model.fit(x, y)
        trees = TreeEnsemble.from_sklearn(model)
        sources = " + ".join(p.name for p in (args.pool, args.own) if p)
        stored[key] = trees.to_dict() | {"trained_on": f"{sources}: {len(usable)} questions "
                                         f"({len(pool) - len(usable)} name no current section), {found} with their answer "
                                         f"in the first {Settings().rerank_depth}"}
        print(f"{key}: {len(usable)} questions, {found} with their answer among the candidates, "
              f"{len(x)} rows, {len(RERANK_FEATURES)} features, {args.trees} trees of depth {args.tree_depth}")
    out.write_text(json.dumps(stored, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}; now refit confidence: kb calibrate")


if __name__ == "__main__":
    main()
