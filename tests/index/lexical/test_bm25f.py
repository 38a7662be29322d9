"""BM25F over in-memory segments, on tiny real passages analysed by the real tokenizers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb_service.index.lexical.bm25f import (
    BM25FParams,
    LexicalSegment,
    SegmentView,
    analyze_passage,
    average_lengths,
    idf,
    search_segments,
    word_document_counts,
)
from kb_service.models import Passage
from kb_service.query.tokenizer import DomainTokenizer, QueryTerms

TOKENIZER = DomainTokenizer(["三者险", "交强险", "盗抢"])


def passage(pid: str, title: str, text: str, heading: str = "", category: str = "coverage") -> Passage:
    return Passage(passage_id=pid, article_id=pid.split("#")[0], title=title, heading=heading, text=text,
                   category=category, tags=("测试",), aliases=(), version=1, line=1)


def build(passages: list[Passage], params: BM25FParams | None = None) -> LexicalSegment:
    analyzed = [analyze_passage(p, TOKENIZER) for p in passages]
    return LexicalSegment.build(analyzed, average_lengths(analyzed), params or BM25FParams())


def query(*words: str) -> QueryTerms:
    return QueryTerms(tuple((w, 1.0) for w in words), ())


def ranked(views: list[SegmentView], terms: QueryTerms, limit: int = 10) -> list[tuple[int, int]]:
    return [(i, row) for i, row, _ in search_segments(views, terms, limit)]


CORPUS = [
    passage("a#0", "交强险说明", "交强险是法定强制保险，赔偿限额固定。"),
    passage("b#0", "理赔材料", "车辆被盗后理赔需要报警证明。办理交强险之外的商业险理赔另有要求。"),
    passage("c#0", "投诉处理", "客户投诉要在二十四小时内回复。"),
]


def test_title_match_outranks_body_match() -> None:
    segment = build(CORPUS)
    views = [SegmentView(segment, np.ones(3, dtype=bool))]
    assert ranked(views, query("交强险"))[:2] == [(0, 0), (0, 1)]


def test_terms_not_in_the_index_find_nothing() -> None:
    segment = build(CORPUS)
    assert search_segments([SegmentView(segment, np.ones(3, dtype=bool))], query("航空"), 5) == []


def test_repeated_term_saturates() -> None:
    params = BM25FParams(k1=1.2, b=0.0)
    segment = build([passage("a#0", "甲", "盗抢"), passage("b#0", "乙", "盗抢盗抢盗抢盗抢盗抢盗抢盗抢盗抢")], params)
    scores = {row: s for _, row, s in search_segments([SegmentView(segment, np.ones(2, dtype=bool))], query("盗抢"), 5)}
    assert scores[1] > scores[0]
    assert scores[1] / scores[0] < params.k1 + 1  # BM25's bound: never linear in the count


def test_dead_rows_are_never_returned_and_leave_idf() -> None:
    segment = build(CORPUS)
    everything = search_segments([SegmentView(segment, np.ones(3, dtype=bool))], query("交强险"), 5)
    live = np.array([True, False, True])
    after = search_segments([SegmentView(segment, live)], query("交强险"), 5)
    assert [row for _, row, _ in after] == [0]
    # One live match out of two live passages now, instead of two out of three.
    assert after[0][2] / everything[0][2] == pytest.approx(idf(2, 1) / idf(3, 2), rel=1e-5)


def test_filters_limit_rows_and_segments_merge_by_score() -> None:
    first = build(CORPUS)
    second = build([passage("d#0", "交强险赔偿限额", "交强险死亡伤残赔偿限额18万元。", category="claims")])
    views = [SegmentView(first, np.ones(3, dtype=bool)), SegmentView(second, np.ones(1, dtype=bool))]
    hits = search_segments(views, query("交强险"), 10)
    assert {(i, row) for i, row, _ in hits} == {(0, 0), (0, 1), (1, 0)}
    assert [s for _, _, s in hits] == sorted((s for _, _, s in hits), reverse=True)
    views[0].allowed = np.zeros(3, dtype=bool)
    assert ranked(views, query("交强险")) == [(1, 0)]


def test_limit_keeps_the_best() -> None:
    segment = build(CORPUS)
    views = [SegmentView(segment, np.ones(3, dtype=bool))]
    assert ranked(views, query("交强险"), limit=1) == [(0, 0)]


def test_save_and_load_give_identical_scores(tmp_path: Path) -> None:
    segment = build(CORPUS)
    segment.save(tmp_path / "lexical.npz")
    loaded = LexicalSegment.load(tmp_path / "lexical.npz")
    terms = QueryTerms((("交强险", 1.0), ("理赔", 0.7)), (("报警", 1.0),))
    live = np.ones(3, dtype=bool)
    assert search_segments([SegmentView(loaded, live)], terms, 5) == search_segments([SegmentView(segment, live)], terms, 5)


def test_word_counts_count_passages_not_occurrences() -> None:
    analyzed = [analyze_passage(p, TOKENIZER) for p in CORPUS]
    counts = word_document_counts(analyzed)
    assert counts["交强险"] == 2 and counts["理赔"] == 1
