import pytest

from kb_service.search.fusion import group_by_article, reciprocal_rank_fusion, weighted_score_fusion


def test_rrf_on_hand_computed_example() -> None:
    lexical = [("a#0", 9.0), ("b#0", 5.0)]
    semantic = [("b#0", 0.8), ("c#0", 0.7)]
    fused = {c.passage_id: c.score for c in reciprocal_rank_fusion(lexical, semantic, k=60)}
    assert fused["a#0"] == pytest.approx(1 / 61)
    assert fused["b#0"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c#0"] == pytest.approx(1 / 62)
    order = [c.passage_id for c in reciprocal_rank_fusion(lexical, semantic, k=60)]
    assert order == ["b#0", "a#0", "c#0"]


def test_rrf_weights_shift_the_order() -> None:
    lexical = [("a#0", 9.0), ("b#0", 5.0)]
    semantic = [("b#0", 0.8), ("a#0", 0.7)]
    heavy_lexical = reciprocal_rank_fusion(lexical, semantic, k=1, lexical_weight=2.0, semantic_weight=1.0)
    # a: 2/2 + 1/3 = 1.333; b: 2/3 + 1/2 = 1.167
    assert [c.passage_id for c in heavy_lexical] == ["a#0", "b#0"]


def test_weighted_fusion_on_hand_computed_example() -> None:
    lexical = [("a#0", 10.0), ("b#0", 5.0)]
    semantic = [("b#0", 0.9), ("c#0", 0.5)]
    fused = {c.passage_id: c.score for c in weighted_score_fusion(lexical, semantic, 1.0, 1.0)}
    assert fused == pytest.approx({"a#0": 1.0, "b#0": 0.5 + 1.0, "c#0": 0.0})


def test_weighted_fusion_anchors_cosines_at_the_query_baseline() -> None:
    """A flat semantic list (0.80 vs 0.78, every passage near the query's mean cosine 0.70) must
    not outvote a clear lexical winner, as min-max over the two candidates would make it do."""
    lexical = [("a#0", 10.0), ("b#0", 2.0)]
    semantic = [("b#0", 0.80), ("a#0", 0.78)]
    min_max = {c.passage_id: c.score for c in weighted_score_fusion(lexical, semantic, 1.0, 1.0)}
    assert min_max == pytest.approx({"a#0": 1.0, "b#0": 0.2 + 1.0})  # b wins on 0.02 of cosine
    anchored = {c.passage_id: c.score for c in weighted_score_fusion(lexical, semantic, 1.0, 1.0, semantic_floor=0.70)}
    assert anchored == pytest.approx({"a#0": 1.0 + 0.8, "b#0": 0.2 + 1.0})
    # A floor above the best cosine (no passage beats the mean) falls back to a flat list, not a negative span.
    assert weighted_score_fusion([], [("c#0", 0.6)], 1.0, 1.0, semantic_floor=0.7)[0].score == pytest.approx(1.0)


def test_grouping_keeps_best_passage_per_article() -> None:
    fused = reciprocal_rank_fusion([("a#1", 3.0), ("a#0", 2.0), ("b#0", 1.0)], [("a#0", 0.9), ("c#2", 0.5)])
    grouped = group_by_article(fused, lambda pid: pid.split("#")[0], k=5)
    # a#0: 1/62 + 1/61, a#1: 1/61, c#2: 1/62, b#0: 1/63 → a#1 is dropped behind its article's a#0
    assert [c.passage_id for c in grouped] == ["a#0", "c#2", "b#0"]
    assert len(group_by_article(fused, lambda pid: pid.split("#")[0], k=2)) == 2


def test_best_passages_keeps_article_order_but_shows_the_covering_section() -> None:
    from kb_service.search.fusion import Candidate
    from kb_service.search.passages import best_passages

    fused = [Candidate("a#0", 1.0), Candidate("b#0", 0.9), Candidate("a#2", 0.8)]
    grouped = [fused[0], fused[1]]
    coverage = {"a#0": 0.1, "a#2": 0.9, "b#0": 0.5}
    chosen = best_passages(grouped, fused, lambda pid: pid.split("#")[0], coverage.__getitem__, weight=5.0)
    assert [c.passage_id for c in chosen] == ["a#2", "b#0"]  # a#2: 0.8 + 4.5 beats a#0: 1.0 + 0.5
    assert [c.score for c in chosen] == [1.0, 0.9]  # the article keeps its fused score and rank
    unchanged = best_passages(grouped, fused, lambda pid: pid.split("#")[0], coverage.__getitem__, weight=0.0)
    assert [c.passage_id for c in unchanged] == ["a#0", "b#0"]


def test_semantic_density_is_the_neighbourhood_above_the_query_baseline() -> None:
    from kb_service.models import Passage
    from kb_service.query.analysis import AnalyzedQuery
    from kb_service.query.tokenizer import QueryTerms
    from kb_service.search.confidence import DENSITY_NEIGHBOURS, confidence_features
    from kb_service.search.fusion import Candidate

    query = AnalyzedQuery("玻璃险", "玻璃险", "玻璃险", (), QueryTerms((("玻璃险", 1.0),), (("玻璃", 1.0),)), ("玻璃险",))
    passage = Passage("a#0", "a", "玻璃险", "h", "玻璃险只赔玻璃", "coverage", (), (), 1, 1)
    semantic = [(f"p{i}", 0.9 - 0.01 * i) for i in range(DENSITY_NEIGHBOURS + 5)]
    near = [score for _, score in semantic[:DENSITY_NEIGHBOURS]]
    features = confidence_features(query, Candidate("a#0"), passage, semantic, [], lambda pid: pid.split("#")[0],
                                   lambda word: True, baseline_cosine=0.7)
    assert features.semantic_density == pytest.approx(sum(near) / len(near) - 0.7)
    lexical_only = confidence_features(query, Candidate("a#0"), passage, [], [("a#0", 3.0)], lambda pid: pid.split("#")[0],
                                       lambda word: True)
    assert lexical_only.semantic_density == 0.0
