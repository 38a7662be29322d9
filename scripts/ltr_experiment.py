"""Would a learned ranker beat the hand-set fusion? Cross-validated, on the selection pool only.

For every answerable query of `eval/queries.jsonl` and `eval/blind/selection.jsonl`, the fused
candidates of its first question get 11 features (fused score and its share of the top, ranks in
each list, normalised BM25F, cosine above the query's baseline, query coverage of the passage and
of its heading, the article's best fused score, first-passage flag) and a label (the passage
answers: facts for the blind set, article id for ours). A logistic regression and gradient-boosted
trees are fitted in 5 folds split by query; each held-out query is re-ranked (articles by their best
passage, the passage shown = the article's best) and judged like `kb eval`.

    python scripts/ltr_experiment.py
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from kb_service.content.lexicon import match_form
from kb_service.evaluation.runner import answers, load_dev_set, load_own_set
from kb_service.models import Hit
from kb_service.query.tokenizer import bigrams
from kb_service.search.engine import SearchEngine, lexical_search, semantic_search
from kb_service.search.fusion import weighted_score_fusion
from kb_service.search.passages import coverage_scorer
from kb_service.settings import PROJECT_ROOT, Settings


def candidate_rows(engine: SearchEngine, text: str) -> list[tuple[str, list[float]]]:
    snap = engine._snapshot  # noqa: SLF001 - an experiment reads the engine's internals
    analyzed = snap.analyzer.analyze(text)
    vector = np.asarray(engine.embedder.encode([analyzed.semantic_text])[0])
    lexical = lexical_search(snap, analyzed.terms, 30)
    semantic = semantic_search(snap, vector, 30, question_offset=engine.settings.question_offset).ranked
    baseline = float(np.dot(vector, snap.vector_mean))
    fused = weighted_score_fusion(lexical, semantic, 1.0, 1.0, baseline)
    coverage = coverage_scorer(analyzed, snap.analyzer.tokenizer.specificity)
    grams = set(bigrams(analyzed.corrected))
    top = fused[0].score if fused else 1.0
    article_best: dict[str, float] = {}
    for candidate in fused:
        article_best.setdefault(snap.article_of(candidate.passage_id), candidate.score)
    rows = []
    for rank, c in enumerate(fused):
        passage = snap.passages[c.passage_id]
        heading = match_form(passage.heading + passage.title)
        rows.append((c.passage_id, [
            c.score / top, c.score, 1.0 / (1 + rank),
            1.0 / c.lexical_rank if c.lexical_rank else 0.0, 1.0 / c.semantic_rank if c.semantic_rank else 0.0,
            c.lexical_score / (lexical[0][1] if lexical else 1.0), c.semantic_score - baseline if c.semantic_rank else 0.0,
            coverage(passage), sum(g in heading for g in grams) / max(1, len(grams)),
            article_best[passage.article_id] / top, float(passage.ordinal == 0),
        ]))
    return rows


def judged(scores: np.ndarray, qids: np.ndarray, articles: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> str:
    r1 = mrr = 0.0
    wanted = sorted(set(qids[mask]))
    for q in wanted:
        m = qids == q
        shown: list[str] = []
        firsts: list[int] = []
        for i in np.argsort(-scores[m], kind="stable"):
            if articles[m][i] not in shown:
                shown.append(articles[m][i])
                firsts.append(int(labels[m][i]))
        rank = next((k for k, good in enumerate(firsts[:10], start=1) if good), None)
        r1 += rank == 1
        mrr += 1 / rank if rank else 0.0
    return f"R@1 {r1 / len(wanted):.3f} MRR@10 {mrr / len(wanted):.3f} (n={len(wanted)})"


def main() -> None:
    engine = SearchEngine.open(Settings())
    queries = load_own_set(PROJECT_ROOT / "eval" / "queries.jsonl") + load_dev_set(PROJECT_ROOT / "eval" / "blind" / "selection.jsonl")
    qids, pids, features, labels, sets = [], [], [], [], []
    for query in queries:
        if query.negative:
            continue
        first_question = engine.search(query.query, k=10).reading.questions[0]  # type: ignore[union-attr]
        for pid, row in candidate_rows(engine, first_question):
            p = engine._snapshot.passages[pid]  # noqa: SLF001
            hit = Hit(p.article_id, p.title, p.heading, p.text, 0.0, p.category, p.version, passage_id=pid)
            qids.append(query.id)
            pids.append(pid)
            features.append(row)
            labels.append(int(answers(query, hit)))
            sets.append("blind selection" if query.facts else "own")
    q, x, y, s = np.array(qids), np.array(features), np.array(labels), np.array(sets)
    articles = np.array([pid.rpartition("#")[0] for pid in pids])
    order = sorted(set(qids))
    np.random.default_rng(0).shuffle(order)
    fold = np.array([{qid: i % 5 for i, qid in enumerate(order)}[qid] for qid in qids])
    for name in ("own", "blind selection"):
        print(f"{name:16s} fused (as served, without the passage re-pick): {judged(x[:, 1], q, articles, y, s == name)}")
    learners = {"logistic regression": lambda: LogisticRegression(C=1.0, max_iter=5000),
                "gradient-boosted trees": lambda: HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_depth=4)}
    for learner, make in learners.items():
        predicted = np.zeros(len(y))
        for f in range(5):
            train, test = fold != f, fold == f
            mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-6
            model = make().fit((x[train] - mean) / std, y[train])
            predicted[test] = model.predict_proba((x[test] - mean) / std)[:, 1]
        for name in ("own", "blind selection"):
            print(f"{name:16s} {learner}, held out: {judged(predicted, q, articles, y, s == name)}")


if __name__ == "__main__":
    main()
