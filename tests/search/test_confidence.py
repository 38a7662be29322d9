"""The confidence features that judge a question as a whole."""

from __future__ import annotations

import pytest

from kb_service.models import Passage
from kb_service.query.analysis import AnalyzedQuery
from kb_service.query.tokenizer import QueryTerms
from kb_service.search.confidence import FEATURES, confidence_features, understood_or, unknown_share
from kb_service.search.fusion import Candidate

SPECIFICITY = {"年检": 14.4, "过期": 12.7, "昨天": 9.5, "追尾": 15.4, "不赔": 10.3, "保险杠": 14.0}


def question(*words: str) -> AnalyzedQuery:
    text = "".join(words)
    return AnalyzedQuery(text, text, text, (), QueryTerms(tuple((w, 1.0) for w in words), ()), tuple(words))


def test_unknown_share_counts_specific_words_the_knowledge_base_never_uses() -> None:
    known = {"过期", "追尾", "不赔"}.__contains__
    # 年检 is specific and unknown; 昨天 is unknown but everyday Chinese, so it says nothing.
    assert unknown_share(question("年检", "过期", "昨天", "追尾", "不赔"), known, SPECIFICITY.__getitem__) == pytest.approx(1 / 5)
    assert unknown_share(question("过期", "追尾", "不赔"), known, SPECIFICITY.__getitem__) == 0.0
    assert unknown_share(question(), known, SPECIFICITY.__getitem__) == 0.0


def test_unknown_share_sees_the_clause_the_best_covered_clause_hides() -> None:
    """「年检过期，追尾了还赔不赔」: the top passage covers 追尾…不赔 well, so the best clause has no
    unknown word; the share over the whole question still counts 年检."""
    query = AnalyzedQuery("年检过期,追尾不赔", "年检过期,追尾不赔", "年检过期,追尾不赔", (),
                          QueryTerms((("年检", 1.0), ("过期", 1.0), ("追尾", 1.0), ("不赔", 1.0)), ()),
                          ("年检", "过期", "追尾", "不赔"))
    passage = Passage("a#0", "a", "责任免除", "哪些情况不赔", "追尾后这些情况不赔", "coverage", (), (), 1, 1)
    features = confidence_features(query, Candidate("a#0"), passage, [], [("a#0", 3.0)], lambda pid: pid.split("#")[0],
                                   lambda word: word != "年检", SPECIFICITY.__getitem__)
    assert features.unknown_word == 0.0
    assert features.unknown_share == pytest.approx(1 / 4)
    assert len(features.vector()) == len(FEATURES)


def test_unknown_share_among_the_not_covered_topics_words_counts_only_those() -> None:
    known = {"过期", "追尾", "不赔"}.__contains__
    listed = {"年检", "昨天", "追尾"}  # topic words; 昨天 is everyday Chinese, 追尾 a word the articles use
    words = question("年检", "保险杠", "昨天", "追尾", "不赔")
    # 保险杠 is specific and unknown but not listed: unknown, not known to be missing.
    assert unknown_share(words, known, SPECIFICITY.__getitem__) == pytest.approx(2 / 5)
    assert unknown_share(words, known, SPECIFICITY.__getitem__, listed) == pytest.approx(1 / 5)
    assert unknown_share(words, known, SPECIFICITY.__getitem__, frozenset()) == 0.0  # no list
    assert unknown_share(question(), known, SPECIFICITY.__getitem__, listed) == 0.0


def test_a_word_read_as_an_abbreviation_or_typo_is_not_unknown() -> None:
    """「交强赔对方人伤吗」: 人伤 is not in the articles, but the analysis read it as 人员伤亡; it says
    nothing about the question being out of scope, so neither unknown feature may count it."""
    passage = Passage("a#0", "a", "交强险", "交强险赔什么", "交强险赔对方的人员伤亡", "coverage", (), (), 1, 1)
    specificity = {"交强": 12.5, "对方": 9.1, "人伤": 17.9}.__getitem__
    known = {"交强", "对方"}.__contains__

    def features(read_as_known: tuple[str, ...]):  # type: ignore[no-untyped-def]
        query = AnalyzedQuery("交强赔对方人伤吗", "交强赔对方人伤吗", "交强赔对方人伤吗", ("人员伤亡",),
                              QueryTerms((("交强", 1.0), ("对方", 1.0), ("人伤", 1.0)), ()), ("交强", "对方", "人伤"),
                              read_as_known=read_as_known)
        return confidence_features(query, Candidate("a#0"), passage, [], [("a#0", 3.0)], lambda pid: pid.split("#")[0],
                                   known, specificity, not_covered_words={"人伤"})

    unread, read = features(()), features(("人伤",))
    assert unread.unknown_share == pytest.approx(1 / 3) and unread.not_covered_words == pytest.approx(1 / 3)
    assert read.unknown_share == 0.0 and read.not_covered_words == 0.0 and read.unknown_word == 0.0
    assert read.known_ratio > unread.known_ratio


def test_a_question_sharing_nothing_with_the_top_passage_keeps_its_unknown_word() -> None:
    """「基金定投收益」 shares no word or bigram with the passage it lands on and the knowledge base
    knows none of its words: its rarest unknown word must be counted, not lost to an all-zero start
    (the most out-of-scope questions once read as having no unknown word at all)."""
    passage = Passage("a#0", "a", "投保", "常见投保咨询", "客户问保费怎么算时先说明费率", "purchase", (), (), 1, 1)
    query = AnalyzedQuery("基金定投收益", "基金定投收益", "基金定投收益", (),
                          QueryTerms((("基金", 1.0), ("定投", 1.0), ("收益", 1.0)), ()), ("基金", "定投", "收益"))
    features = confidence_features(query, Candidate("a#0"), passage, [], [("a#0", 3.0)], lambda pid: pid.split("#")[0],
                                   lambda word: False, {"基金": 9.9, "定投": 16.5, "收益": 10.2}.__getitem__)
    assert features.word_coverage == 0.0 and features.known_ratio == 0.0 and features.bigram_coverage == 0.0
    assert features.unknown_word == pytest.approx(16.5 / 20)


def test_a_function_character_glued_to_a_word_does_not_make_it_unknown() -> None:
    """jieba cuts 有个 and 我车 as words its dictionary has never seen (-log P 17.9, as rare as a new
    term); without the glue (有, 个, 我) nothing unknown is left. 过户 is a dictionary word and 重疾险
    has no glue: both stay unknown."""
    specificity = {"有个": 17.9, "我车": 17.9, "报给": 17.9, "过户": 12.7, "重疾险": 17.9, "车": 8.0, "报": 9.0}
    known = {"车", "理赔"}.__contains__
    understood = understood_or(known, (), specificity.__getitem__)
    assert understood("有个") and understood("我车") and understood("报给")
    assert not understood("过户") and not understood("重疾险")
    assert understood("理赔") and not understood_or(known, ())("有个")  # without specificity: as before
