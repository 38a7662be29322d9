"""The bigram fallback of gap topics (no embedder loaded)."""

from __future__ import annotations

from kb_service.reports.bigram_topics import cluster_topics


def test_questions_that_share_only_generic_words_are_two_topics() -> None:
    """代驾司机出事故保险赔吗 and 跑网约车出事故保险赔吗 share six bigrams, all of 出事故保险赔吗; the
    topic is in what is left (代驾, 网约车), so each joins its own kind."""
    counts = [("代驾司机出事故保险赔吗", 9), ("跑网约车出事故保险赔吗", 8), ("找代驾把车刮了怎么理赔", 7),
              ("开网约车被保险公司拒赔怎么办", 6), ("港澳自驾保险怎么买", 5), ("车卖了保险怎么退保", 4)]
    reference = [text for text, _ in counts] + ["三者险赔多少", "交强险赔多少", "理赔要什么材料", "车被偷了怎么办"]
    topics = cluster_topics(counts, reference)
    members = [sorted(counts[i][0] for i in topic.members) for topic in topics]
    assert sorted(["代驾司机出事故保险赔吗", "找代驾把车刮了怎么理赔"]) in members
    assert sorted(["开网约车被保险公司拒赔怎么办", "跑网约车出事故保险赔吗"]) in members
    assert ["港澳自驾保险怎么买"] in members and ["车卖了保险怎么退保"] in members
