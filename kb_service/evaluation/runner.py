"""Measure retrieval and confidence on labelled queries, and fit the confidence model.

Two kinds of labels: our own set (`eval/queries.jsonl`, relevant article ids) and the shared
development set (answer-fact regexes judged on the passage an agent sees). Every design
(lexical, semantic per embedder, hybrid) is measured the same way so they can be compared.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kb_service.models import Hit
from kb_service.search.confidence import FEATURES, ConfidenceModel

MODES = ("lexical", "semantic", "hybrid")


@dataclass(frozen=True)
class LabelledQuery:
    id: str
    query: str
    kind: str
    relevant: tuple[str, ...] = ()
    facts: tuple[tuple[str, ...], ...] = ()

    @property
    def negative(self) -> bool:
        return self.kind == "negative" or (not self.relevant and not self.facts)


def load_own_set(path: Path) -> list[LabelledQuery]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [LabelledQuery(r["id"], r["query"], r["kind"], tuple(r.get("relevant") or ())) for r in rows]


def load_dev_set(path: Path) -> list[LabelledQuery]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [LabelledQuery(r["id"], r["query"], r["kind"], (), tuple(tuple(g) for g in r.get("facts") or ())) for r in rows]


def agent_passage(hit: Hit) -> str:
    """The dev set's judging text: title + heading + text, no whitespace, NFKC, 1,000 chars."""
    text = unicodedata.normalize("NFKC", f"{hit.title}{hit.heading}{hit.text}")
    return re.sub(r"\s+", "", text)[:1000]


def answers(query: LabelledQuery, hit: Hit) -> bool:
    if query.relevant:
        return hit.article_id in query.relevant
    passage = agent_passage(hit)
    return bool(query.facts) and all(any(re.search(rx, passage) for rx in group) for group in query.facts)


@dataclass
class QueryOutcome:
    query: LabelledQuery
    first_answer_rank: int | None
    confident: bool
    features: list[float] = field(default_factory=list)
    # The first hit's article holds an answering passage, but the passage shown is another one:
    # the agent opened the right article and still has to look for the answer.
    wrong_section: bool = False


@dataclass
class Metrics:
    n_answerable: int = 0
    n_negative: int = 0
    recall: dict[int, float] = field(default_factory=dict)
    mrr10: float = 0.0
    negatives_rejected: float = 0.0
    false_rejections: float = 0.0
    wrong_sections: int = 0

    def row(self) -> list[str]:
        return [
            f"{self.recall.get(1, 0):.3f}", f"{self.recall.get(3, 0):.3f}", f"{self.recall.get(5, 0):.3f}",
            f"{self.mrr10:.3f}",
            f"{self.negatives_rejected:.3f}" if self.n_negative else "—",
            f"{self.false_rejections:.3f}" if self.n_answerable else "—",
            str(self.wrong_sections),
        ]


def compute_metrics(outcomes: Iterable[QueryOutcome]) -> Metrics:
    outcomes = list(outcomes)
    answerable = [o for o in outcomes if not o.query.negative]
    negative = [o for o in outcomes if o.query.negative]
    m = Metrics(n_answerable=len(answerable), n_negative=len(negative))
    if answerable:
        for k in (1, 3, 5):
            m.recall[k] = sum(1 for o in answerable if o.first_answer_rank and o.first_answer_rank <= k) / len(answerable)
        m.mrr10 = sum(1 / o.first_answer_rank for o in answerable if o.first_answer_rank and o.first_answer_rank <= 10) / len(answerable)
        m.false_rejections = sum(1 for o in answerable if not o.confident) / len(answerable)
        m.wrong_sections = sum(1 for o in answerable if o.wrong_section)
    if negative:
        m.negatives_rejected = sum(1 for o in negative if not o.confident) / len(negative)
    return m


SearchFn = Callable[[str], object]  # returns a SearchResponse with .hits, .confident, .features


ArticleHits = Callable[[str], list[Hit]]  # every passage of an article, as hits


def run_queries(queries: list[LabelledQuery], search: SearchFn, article_hits: ArticleHits | None = None) -> list[QueryOutcome]:
    """Search each query; `article_hits` lets fact-judged sets count 'right article, wrong section'."""
    outcomes = []
    for query in queries:
        response = search(query.query)
        rank = next((i for i, hit in enumerate(response.hits, start=1) if answers(query, hit)), None)
        features = getattr(response, "features", None)
        wrong_section = False
        if rank != 1 and response.hits and query.facts and article_hits is not None:
            wrong_section = any(answers(query, hit) for hit in article_hits(response.hits[0].article_id))
        outcomes.append(QueryOutcome(query, rank, response.confident, features.vector() if features else [],
                                     wrong_section))
    return outcomes


def metrics_table(results: dict[str, list[QueryOutcome]], by_kind: bool = True) -> str:
    """Markdown table: one row per design, then per query kind for each design."""
    header = ("| design | kind | n | R@1 | R@3 | R@5 | MRR@10 | out-of-scope rejected | answerable wrongly rejected "
              "| right article, wrong section |\n")
    header += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    lines = []
    for design, outcomes in results.items():
        m = compute_metrics(outcomes)
        lines.append(f"| {design} | all | {m.n_answerable}+{m.n_negative} | " + " | ".join(m.row()) + " |")
    if by_kind:
        for design, outcomes in results.items():
            kinds: dict[str, list[QueryOutcome]] = defaultdict(list)
            for o in outcomes:
                kinds[o.query.kind].append(o)
            for kind in sorted(kinds):
                m = compute_metrics(kinds[kind])
                lines.append(f"| {design} | {kind} | {m.n_answerable + m.n_negative} | " + " | ".join(m.row()) + " |")
    return header + "\n".join(lines)


def save_confidence(path: Path, key: str, model: ConfidenceModel) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data[key] = model.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


__all__ = ["FEATURES", "MODES", "LabelledQuery", "answers", "compute_metrics", "load_dev_set",
           "load_own_set", "metrics_table", "run_queries", "save_confidence"]


# ---------------------------------------------------------------- orchestration


def parse_model_spec(spec: str) -> tuple[str, str]:
    """'m3e-small:torch' → (model, runtime); runtime defaults to onnx-int8."""
    model, _, runtime = spec.partition(":")
    return model, runtime or "onnx-int8"


def engine_for(settings, spec: str, progress=None):  # type: ignore[no-untyped-def]
    """Build (incrementally) and open an index for one embedder, beside the main index."""
    from kb_service.index.builder import build_index
    from kb_service.index.embedding import model_key
    from kb_service.search.engine import SearchEngine

    model, runtime = parse_model_spec(spec)
    key = model_key(model, runtime)
    scoped = settings.with_overrides(embedding_model=model, embedding_runtime=runtime,
                                     index_dir=Path(settings.index_dir) / "eval" / key)
    build_index(scoped, progress=progress)
    return key, SearchEngine.open(scoped)


def article_hits(engine) -> ArticleHits:  # type: ignore[no-untyped-def]
    """Every live passage of an article as a hit, for the 'right article, wrong section' count."""
    from kb_service.models import Hit

    def hits(article_id: str) -> list[Hit]:
        return [Hit.of(p) for p in engine.passages_of(article_id)]

    return hits


def evaluate(settings, sets: dict[str, list[LabelledQuery]], model_specs: list[str], k: int = 10):  # type: ignore[no-untyped-def]
    """{set name: {design: outcomes}} for lexical once, then semantic and hybrid per embedder."""
    results: dict[str, dict[str, list[QueryOutcome]]] = {name: {} for name in sets}
    for i, spec in enumerate(model_specs):
        key, engine = engine_for(settings, spec)
        modes = MODES if i == 0 else ("semantic", "hybrid")
        for mode in modes:
            design = "lexical" if mode == "lexical" else f"{mode} ({key})"
            for name, queries in sets.items():
                results[name][design] = run_queries(queries, lambda q, m=mode, e=engine: e.search(q, k=k, mode=m),
                                                    article_hits(engine))
        engine.close()
    return results


def calibrate(settings, pool: list[LabelledQuery], model_specs: list[str], max_false_rejection: float = 0.03,  # type: ignore[no-untyped-def]
              label: str = "") -> list[str]:
    """Fit the confidence model per embedder and mode on a style-diverse pool (regularisation and
    features chosen by leave-one-style-out CV, see calibration.py); returns summary lines."""
    import numpy as np

    from kb_service.search.calibration import fit_style_robust

    lines = []
    for spec in model_specs:
        key, engine = engine_for(settings, spec)
        for mode in MODES:
            outcomes = run_queries(pool, lambda q, m=mode, e=engine: e.search(q, k=10, mode=m))
            x = np.array([o.features for o in outcomes], dtype=float)
            y = np.array([0 if o.query.negative else 1 for o in outcomes])
            styles = [o.query.kind for o in outcomes]
            model, held_out = fit_style_robust(x, y, styles, max_false_rejection,
                                               label or f"{len(outcomes)} pooled queries")
            save_confidence(Path(settings.confidence_path), f"{key}/{mode}", model)
            lines.append(f"{key}/{mode}: {held_out.describe()}; threshold {model.threshold:.3f}")
        engine.close()
    return lines
