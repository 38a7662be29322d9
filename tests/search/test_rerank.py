from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from kb_service.content.lexicon import load_lexicon
from kb_service.index.builder import build_index
from kb_service.index.embedding import model_key
from kb_service.models import Passage
from kb_service.query.analysis import QueryAnalyzer
from kb_service.query.tokenizer import DomainTokenizer
from kb_service.search.engine import SearchEngine
from kb_service.search.fusion import Candidate
from kb_service.search.rerank import (
    RERANK_FEATURES,
    TreeEnsemble,
    candidate_features,
    load_reranker,
    reranked,
)
from kb_service.settings import Settings


def fitted_trees(seed: int = 0) -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, len(RERANK_FEATURES)))
    y = (x[:, 0] + x[:, 3] * x[:, 7] + rng.normal(scale=0.5, size=len(x)) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=40, max_depth=3, early_stopping=False, random_state=0).fit(x, y)
    return model, rng.normal(size=(300, len(RERANK_FEATURES)))


def test_exported_trees_score_as_sklearn_does() -> None:
    model, rows = fitted_trees()
    trees = TreeEnsemble.from_sklearn(model)
    assert np.allclose(trees.scores(rows), model.decision_function(rows), atol=1e-9)


def test_trees_survive_json_and_refuse_other_features() -> None:
    model, rows = fitted_trees(1)
    stored = json.loads(json.dumps(TreeEnsemble.from_sklearn(model).to_dict()))
    assert np.allclose(TreeEnsemble.from_dict(stored).scores(rows), model.decision_function(rows), atol=1e-9)
    with pytest.raises(ValueError, match="other features"):
        TreeEnsemble.from_dict(stored | {"features": ["fused_share"]})


def test_reranked_orders_by_score_and_keeps_the_fused_order_on_ties() -> None:
    grouped = [Candidate(f"a{i}#0", score=1.0 - i / 10) for i in range(4)]
    order = reranked(grouped, np.array([0.5, 0.9, 0.5, 0.1]))
    assert [c.passage_id for c in order] == ["a1#0", "a0#0", "a2#0", "a3#0"]


def test_candidate_features_describe_each_article_in_fused_order() -> None:
    passages = {
        "claims#0": Passage("claims#0", "claims", "理赔材料", "", "理赔需要事故认定书和维修发票。", "claims", (), (), 1, 1),
        "fraud#2": Passage("fraud#2", "fraud", "欺诈信号", "急于结案", "客户催促尽快结案是预警信号。", "claims", (), (), 1, 9),
    }
    analyzed = QueryAnalyzer(DomainTokenizer(["理赔", "材料"]), load_lexicon(Path("/nonexistent")), None).analyze("理赔要什么材料")
    grouped = [Candidate("claims#0", 0.8, 1, 12.0, 2, 0.61), Candidate("fraud#2", 0.4, None, 0.0, 1, 0.66)]
    rows = candidate_features(analyzed, grouped, passages.__getitem__, lambda pid: 1.0 if pid == "claims#0" else 0.0, 0.5)
    named = [dict(zip(RERANK_FEATURES, row, strict=True)) for row in rows]
    assert named[0]["fused_share"] == 1.0 and named[1]["fused_share"] == 0.5
    assert named[0]["lexical_rank"] == 1.0 and named[1]["lexical_rank"] == 0.0
    assert named[1]["semantic_rank"] == 1.0 and named[1]["semantic_lift"] == pytest.approx(0.16)
    assert named[0]["first_passage"] == 1.0 and named[1]["first_passage"] == 0.0
    assert named[0]["heading_bigrams"] > named[1]["heading_bigrams"] == 0.0
    assert named[0]["query_length"] == pytest.approx(np.log1p(len("理赔要什么材料")))


def test_no_file_or_no_entry_for_the_model_keeps_the_fused_order(tmp_path: Path) -> None:
    assert load_reranker(tmp_path / "missing.json", "m3e-small-onnx-int8") is None
    model, _ = fitted_trees()
    path = tmp_path / "reranker.json"
    path.write_text(json.dumps({"other-model": TreeEnsemble.from_sklearn(model).to_dict()}), encoding="utf-8")
    assert load_reranker(path, "m3e-small-onnx-int8") is None
    assert load_reranker(path, "other-model") is not None


def demoting_the_first_article() -> dict:
    """One stump on fused_rank: the fused first article (1 / (1 + 0) = 1) scores 0, every other 1."""
    split = RERANK_FEATURES.index("fused_rank")
    return {"features": list(RERANK_FEATURES), "bias": 0.0, "depth": 1, "feature": [[split, 0, 0]],
            "threshold": [[0.75, 0.0, 0.0]], "left": [[1, 0, 0]], "right": [[2, 0, 0]],
            "leaf": [[0, 1, 1]], "value": [[0.0, 1.0, 0.0]]}


def test_the_engine_applies_its_models_trees_to_hybrid_results_only(corpus_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "reranker.json"
    key = model_key(corpus_settings.embedding_model, corpus_settings.embedding_runtime)
    path.write_text(json.dumps({key: demoting_the_first_article()}), encoding="utf-8")
    build_index(corpus_settings)
    fused = SearchEngine.open(corpus_settings.with_overrides(reranker_path=path, rerank_depth=0))
    learned = SearchEngine.open(corpus_settings.with_overrides(reranker_path=path))
    query = "撞了别人的车三者险赔吗"
    before = [h.article_id for h in fused.search(query).hits]
    after = [h.article_id for h in learned.search(query).hits]
    assert len(before) >= 2 and after[0] == before[1] and before[0] != after[0]
    assert [h.article_id for h in learned.search(query, mode="lexical").hits] == \
        [h.article_id for h in fused.search(query, mode="lexical").hits]
