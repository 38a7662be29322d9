"""Judging labelled queries: answers by facts or article, metrics, and «right article, wrong section».

Fitting the confidence model is tested in test_calibration.py."""

from __future__ import annotations

from types import SimpleNamespace

from kb_service.evaluation.runner import LabelledQuery, QueryOutcome, answers, compute_metrics, run_queries
from kb_service.models import Hit


def _hit(article: str, heading: str, text: str) -> Hit:
    return Hit(article, "标题", heading, text, 1.0, "claims", 1, passage_id=f"{article}#{heading}")


MATERIALS = _hit("theft", "盗抢理赔材料", "需要报警证明和未找回证明。")
WAITING = _hit("theft", "等待期", "立案后满60天仍未找回再处理。")
OTHER = _hit("flood", "水淹车", "需要灾害证明。")
ARTICLE_HITS = {"theft": [MATERIALS, WAITING], "flood": [OTHER]}


def test_facts_must_all_match_the_passage_an_agent_sees() -> None:
    query = LabelledQuery("q", "丢车要啥材料", "short", facts=(("报警证明",), ("未找回|找不回",)))
    assert answers(query, MATERIALS) and not answers(query, WAITING) and not answers(query, OTHER)
    by_article = LabelledQuery("q", "丢车", "short", relevant=("theft",))
    assert answers(by_article, WAITING) and not answers(by_article, OTHER)


def test_wrong_section_counts_the_right_article_showing_another_section() -> None:
    materials = LabelledQuery("m", "丢车要啥材料", "short", facts=(("报警证明",),))
    waiting = LabelledQuery("w", "丢车等多久", "short", facts=(("60天",),))
    outside = LabelledQuery("o", "淹车", "short", facts=(("灾害证明",),))
    shown = [WAITING, OTHER]  # the theft article first, with its waiting-period section

    def search(_: str) -> SimpleNamespace:
        return SimpleNamespace(hits=shown, confident=True, features=None)

    outcomes = run_queries([materials, waiting, outside], search, lambda article: ARTICLE_HITS[article])
    assert [(o.first_answer_rank, o.wrong_section) for o in outcomes] == [(None, True), (1, False), (2, False)]
    metrics = compute_metrics(outcomes)
    assert metrics.wrong_sections == 1 and metrics.recall[1] == 1 / 3 and metrics.recall[3] == 2 / 3
    assert metrics.row()[-1] == "1"
    # Without the article's passages (our article-labelled set) nothing is counted.
    assert not any(o.wrong_section for o in run_queries([materials], search))


def test_rejections_split_answerable_from_out_of_scope() -> None:
    answerable = LabelledQuery("a", "丢车", "short", relevant=("theft",))
    negative = LabelledQuery("n", "食堂几点开饭", "negative")
    outcomes = [QueryOutcome(answerable, 1, False), QueryOutcome(negative, None, False),
                QueryOutcome(negative, None, True)]
    metrics = compute_metrics(outcomes)
    assert metrics.false_rejections == 1.0 and metrics.negatives_rejected == 0.5
