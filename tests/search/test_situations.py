"""Chat signals: the section a message calls for though it did not ask."""

from __future__ import annotations

from kb_service.models import Hit, Passage
from kb_service.search.situations import (
    PASTED_MESSAGE_CHARS,
    insert_signalled,
    passes_filter,
    signal_index,
    signal_rank,
    signalled_section,
)


def passage(pid: str, heading: str, signals: tuple[str, ...], category: str = "compliance") -> Passage:
    return Passage(pid, pid.split("#")[0], "t", heading, "text", category, ("红线",), (), 1, 1, signals=signals)


def hit(article_id: str) -> Hit:
    return Hit(article_id, "t", "h", "text", 1.0, "coverage", 1)


def test_the_index_puts_specific_signals_first_and_one_passage_per_section() -> None:
    index = signal_index([passage("gifts#1", "收礼", ("红包",)), passage("gifts#0", "收礼", ("红包",)),
                          passage("media#0", "媒体", ("电视台",)), passage("other#0", "别的", ())])
    assert index == [((("电视台",),), "电视台", "media#0"), ((("红包",),), "红包", "gifts#0")]


def test_a_signal_of_several_parts_needs_a_word_of_each_and_names_the_words_said() -> None:
    fraud = passage("fraud#0", "欺诈预警信号", ("刚投保|刚买的保险 + 要现金|不想修",))
    index = signal_index([passage("gifts#0", "收礼", ("红包",)), fraud])
    assert index[0][0] == (("刚投保", "刚买的保险"), ("要现金", "不想修"))  # more parts: more specific, tried first
    found = signalled_section(index, "上周刚买的保险，昨晚撞了护栏，车不想修了，钱打给我吧")
    assert found is not None and found.passage_id == "fraud#0" and found.signal == "刚买的保险、不想修"
    assert signalled_section(index, "上周刚买的保险，昨晚撞了护栏，能赔吗") is None  # one warning sign proves little
    assert signalled_section(index, "车不想修了，发个红包给你").signal == "红包"


def test_the_most_specific_signal_the_message_says_wins() -> None:
    index = signal_index([passage("gifts#0", "收礼", ("红包",)), passage("grading#0", "三级投诉", ("电视台",))])
    assert signalled_section(index, "能不能帮我快点批下来，我给你发个红包").passage_id == "gifts#0"
    assert signalled_section(index, "不给红包我也要找电视台").signal == "电视台"
    assert signalled_section(index, "能不能快点批下来") is None
    assert signalled_section([], "我给你发个红包") is None


def test_the_signalled_section_comes_second_and_only_once() -> None:
    gifts = hit("gifts")
    assert [h.article_id for h in insert_signalled([hit("a"), hit("gifts"), hit("b")], gifts, 10)] == ["a", "gifts", "b"]
    assert [h.article_id for h in insert_signalled([hit("a"), hit("b"), hit("gifts")], gifts, 2)] == ["a", "gifts"]
    assert [h.article_id for h in insert_signalled([hit("gifts"), hit("a")], gifts, 10)] == ["gifts", "a"]
    assert insert_signalled([hit("gifts"), hit("a")], gifts, 10)[0] is not gifts  # the question found it first
    assert [h.article_id for h in insert_signalled([], gifts, 10)] == ["gifts"]


def test_in_a_pasted_message_the_signalled_section_comes_first() -> None:
    gifts = hit("gifts")
    assert [h.article_id for h in insert_signalled([hit("a"), hit("b"), hit("gifts")], gifts, 10, rank=1)] == ["gifts", "a", "b"]
    found = hit("gifts")  # the question's own best answer: another section of the signalled article
    pasted = insert_signalled([found, hit("a")], gifts, 10, rank=1)
    assert pasted[0] is gifts and [h.article_id for h in pasted] == ["gifts", "a"]
    assert insert_signalled([found, hit("a")], gifts, 10)[0] is found  # typed: the question's section stays
    assert signal_rank("三者险赔什么？给你发个红包") == 2  # typed by the agent: what was asked leads
    assert signal_rank("亲" * PASTED_MESSAGE_CHARS) == 1
    assert signal_rank("亲" * (PASTED_MESSAGE_CHARS - 1)) == 2


def test_a_filter_holds_for_signalled_sections_too() -> None:
    red_line = passage("gifts#0", "收礼", ("红包",))
    assert passes_filter(red_line, None, None) and passes_filter(red_line, "compliance", ["红线"])
    assert not passes_filter(red_line, "coverage", None) and not passes_filter(red_line, None, ["三者险"])
