"""Query reading: what an agent pasted or typed → the question(s) searched."""

from __future__ import annotations

import pytest

from kb_service.query.reading import (
    asks,
    clauses,
    condense_message,
    fold_text,
    group_questions,
    read_query,
    remove_personal_data,
    strip_chatter,
)


def test_traditional_characters_become_simplified_and_full_width_folds() -> None:
    text, converted = fold_text("車險理賠需要準備什麼資料？ＡＰＰ上能查嗎")
    assert converted is True
    assert text.startswith("车险理赔需要准备什么资料") and "APP上能查吗" in text
    assert fold_text("理赔要什么材料")[1] is False  # simplified text is left alone


def test_emoji_zero_width_and_punctuation_runs_are_folded() -> None:
    text, _ = fold_text("在吗？？？😭😭车被\u200b水淹了！！！[捂脸]")
    assert "😭" not in text and "\u200b" not in text and "[捂脸]" not in text
    assert "???" not in text and "!!!" not in text and "车被" in text


@pytest.mark.parametrize("typed, kind", [
    ("我手机13812345678，想问理赔", "〔手机号〕"),
    ("车牌粤B12345被撞了", "〔车牌号〕"),
    ("身份证号是110101199003071234怎么改", "〔身份证号〕"),
    ("保单号PDAA202411000123456查不到", "〔保单号〕"),
])
def test_personal_data_and_its_label_leave_the_searched_text(typed: str, kind: str) -> None:
    cleaned, kinds = remove_personal_data(typed)
    assert kind in kinds
    assert not any(ch.isdigit() for ch in cleaned.replace("〔", "").replace("〕", ""))
    assert "〔" not in cleaned and "手机" not in cleaned and "车牌" not in cleaned and "身份证号" not in cleaned
    reading = read_query(typed)
    assert all(not any(ch.isdigit() for ch in q) for q in reading.questions)
    assert reading.personal_data == (kind,)


def test_greetings_politeness_and_fillers_are_stripped() -> None:
    assert strip_chatter("亲在吗你好麻烦问一下") == ""
    assert strip_chatter("那个就是车被偷了然后要等多久") == "车被偷了要等多久"
    assert strip_chatter("谢谢亲") == ""
    assert read_query("亲～在吗？？三者险赔多少？谢谢亲～急急急").questions == ("三者险赔多少",)


def test_everyday_words_that_contain_filler_characters_survive() -> None:
    assert strip_chatter("理赔金额怎么算") == "理赔金额怎么算"  # 额 in 金额 is no filler
    assert strip_chatter("亲属能代办吗") == "亲属能代办吗"  # 亲 in 亲属 is no greeting
    assert strip_chatter("客户很急躁一直催") == "客户很急躁一直催"  # 很急 in 很急躁 is the customer's temper
    assert strip_chatter("三者险赔多少，很急") == "三者险赔多少，"  # said of the agent's reply, it is urgency


def test_a_long_message_splits_into_clauses() -> None:
    parts = clauses("今天早上在路口被追尾了。交警判对方全责，我现在手上有认定书；请问还要准备什么材料？")
    assert parts == ["今天早上在路口被追尾了", "交警判对方全责", "我现在手上有认定书", "还要准备什么材料"]


@pytest.mark.parametrize("line, expected", [
    ("理赔要什么材料，另外报案电话多少", ("理赔要什么材料", "报案电话多少")),
    ("交强险赔多少 商业险要买哪些", ("交强险赔多少", "商业险要买哪些")),
    ("城市客户一般啥特点？跟县里的客户沟通方式要不要分开", ("城市客户一般啥特点", "跟县里的客户沟通方式要不要分开")),
])
def test_several_questions_in_one_line_are_searched_apart(line: str, expected: tuple[str, ...]) -> None:
    assert read_query(line).questions == expected


@pytest.mark.parametrize("line", ["车被水淹了，能赔吗", "车险，能退不", "我车被偷了，已经报警了，还要干嘛"])
def test_a_question_about_the_story_before_it_stays_one_question(line: str) -> None:
    reading = read_query(line)
    assert len(reading.questions) == 1 and reading.questions[0].startswith(line[:3])


def test_a_pasted_message_is_cut_to_its_question_and_the_story_nearest_it() -> None:
    story = "我是做生意的，平时很忙，" * 8
    message = f"亲在吗？{story}昨天车停在地库被暴雨泡了，发动机进水了，请问这种情况保险能赔吗？谢谢亲～"
    reading = read_query(message)
    assert len(reading.questions) == 1
    question = reading.questions[0]
    assert question.endswith("这种情况保险能赔吗") and "地库被暴雨泡了" in question
    assert len(question) <= 140 and "谢谢" not in question


def test_the_story_a_question_leaves_out_is_kept_for_the_lexical_side() -> None:
    message = "妹子谢谢你啊这几天帮我跑前跑后的，理赔款多久到账？到了我给你发个小红包，就当请你喝奶茶，你加我微信吧，以后我朋友买车险都找你，放心不会有人知道的，我这人最讲义气了"
    reading = read_query(message)
    assert len(reading.questions) == 1 and "红包" not in reading.questions[0]
    assert reading.untold_story is not None and "红包" in reading.untold_story
    assert read_query("三者险赔什么").untold_story is None  # nothing left out
    assert read_query("三者险赔什么？车损险呢？另外交强险多少钱？").untold_story is None  # several questions


@pytest.mark.parametrize("clause", ["没几天就出险了", "这几天帮我跑前跑后的", "前几天刚买的保险", "好几天了", "十几天没人理"])
def test_an_indefinite_few_days_asks_nothing(clause: str) -> None:
    assert not asks(clause)
    assert asks("理赔要几天")


def test_condensing_keeps_every_asking_clause_in_text_order() -> None:
    parts = ["我上周报的案", "定损员来看过了", "到底什么时候能赔款", "还要补什么材料吗", "我等得很着急"]
    assert condense_message(parts, budget=26) == "定损员来看过了，到底什么时候能赔款，还要补什么材料吗"


def test_context_clauses_attach_to_the_question_after_them() -> None:
    assert group_questions(["车昨晚被偷了", "已经报警", "理赔要什么材料"]) == ["车昨晚被偷了，已经报警，理赔要什么材料"]


def test_over_the_limit_only_the_start_is_read() -> None:
    reading = read_query("三者险赔什么？" + "啊" * 2000, max_chars=1000)
    assert reading.truncated is True and reading.questions[0] == "三者险赔什么"


def test_nothing_but_chatter_still_searches_what_was_typed() -> None:
    reading = read_query("你好在吗")
    assert reading.questions and reading.questions[0]

def test_nothing_but_personal_data_searches_nothing_of_it() -> None:
    """Only a number (or a number and its label): there is still one question, so the panel gets an
    answer rather than an error, but the number is neither searched nor shown as read."""
    for typed in ("13812345678", "我手机13812345678", "粤B·12345", "身份证 110101199003071234 ？？"):
        reading = read_query(typed)
        assert len(reading.questions) == 1
        digits = "".join(ch for ch in typed if ch.isdigit())
        shown = " ".join((*reading.questions, reading.cleaned))
        assert digits[-5:] not in "".join(ch for ch in shown if ch.isdigit()), typed
        assert reading.personal_data
