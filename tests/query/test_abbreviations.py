from collections import Counter
from pathlib import Path

from kb_service.content.lexicon import load_lexicon
from kb_service.query.abbreviations import AbbreviationReader, is_abbreviation_of
from kb_service.query.analysis import QueryAnalyzer
from kb_service.query.spelling import HomophoneCorrector
from kb_service.query.tokenizer import DomainTokenizer


def test_an_abbreviation_keeps_the_first_character_and_the_rest_in_order() -> None:
    assert is_abbreviation_of("个信", "个人信息")
    assert is_abbreviation_of("消保法", "消费者权益保护法")
    assert not is_abbreviation_of("信个", "个人信息")  # order matters
    assert not is_abbreviation_of("人信", "个人信息")  # the first character must lead
    assert not is_abbreviation_of("保险管", "保险销售行为管理办法")  # ten characters from three is not a shortening
    assert not is_abbreviation_of("个人信息", "个人信息")


def test_the_shortest_fitting_term_wins() -> None:
    reader = AbbreviationReader(["个人信息保护法", "个人信息", "群体投诉", "理赔", "ab个人"])
    assert reader.expand("个信") == "个人信息"
    assert reader.expand("群诉") == "群体投诉"
    assert reader.expand("个保法") == "个人信息保护法"
    assert reader.expand("车险") is None and reader.expand("x") is None


def test_only_words_nobody_meant_literally_are_read_as_abbreviations() -> None:
    tokenizer = DomainTokenizer(["个人信息", "群体投诉", "投诉"])
    corrector = HomophoneCorrector.build(Counter({"个人信息": 9, "群体投诉": 3, "投诉": 20, "出示": 2, "出示证件": 2}))
    analyzer = QueryAnalyzer(tokenizer, load_lexicon(Path("/nonexistent")), corrector)
    assert "个人信息" in analyzer.analyze("泄露个信员工会受啥处分").additions
    assert "群体投诉" in analyzer.analyze("群诉要启动啥预案").additions
    # 出事 is common Chinese, 投诉 is the articles' own word: neither is shorthand for something longer.
    assert analyzer.analyze("出事了要投诉").additions == ()


def test_the_typed_abbreviation_is_recorded_as_understood() -> None:
    """The confidence model must not count 个信 as a word the articles never use: it was read."""
    tokenizer = DomainTokenizer(["个人信息", "投诉"])
    corrector = HomophoneCorrector.build(Counter({"个人信息": 9, "投诉": 20}))
    analyzer = QueryAnalyzer(tokenizer, load_lexicon(Path("/nonexistent")), corrector)
    assert analyzer.analyze("泄露个信员工会受啥处分").read_as_known == ("个信",)
    assert analyzer.analyze("投诉要多久").read_as_known == ()
