from pathlib import Path

from conftest import write_article

from kb_service.content.articles import parse_article
from kb_service.content.chunking import chunk_article, split_text


def test_one_passage_per_section_with_metadata(tmp_path: Path) -> None:
    path = write_article(tmp_path, "a", "标题", {"第一节": "内容一。" * 10, "第二节": "内容二。" * 10}, aliases=["别名"], version=4)
    article, _ = parse_article(path)
    passages = chunk_article(article, 600)
    assert [p.passage_id for p in passages] == ["a#0", "a#1"]
    assert [p.heading for p in passages] == ["第一节", "第二节"]
    assert all(p.version == 4 and p.aliases == ("别名",) and p.category == "coverage" for p in passages)


def test_long_section_splits_at_sentence_boundaries() -> None:
    sentences = [f"第{i}句话讲的是理赔材料和时限要求。" for i in range(60)]
    text = "".join(sentences)
    pieces = split_text(text, 200)
    assert len(pieces) > 1
    assert all(len(p) <= 200 for p in pieces)
    assert all(p.endswith("。") for p in pieces)  # never mid-sentence
    assert "".join(pieces).replace("\n", "") == text


def test_paragraphs_are_preferred_split_points() -> None:
    text = "甲" * 150 + "。\n\n" + "乙" * 150 + "。"
    assert split_text(text, 200) == ["甲" * 150 + "。", "乙" * 150 + "。"]


def test_script_blocks_are_detected_and_attached(tmp_path: Path) -> None:
    section = "向客户说明材料要求。\n\n```script\n您好，请您在24小时内补充以下材料。\n```\n\n普通引用不是话术。"
    path = write_article(tmp_path, "s", "话术", {"补充材料": section}, category="script")
    article, problems = parse_article(path)
    assert problems == []
    assert [b.text for b in article.sections[0].scripts] == ["您好，请您在24小时内补充以下材料。"]
    passage = chunk_article(article, 600)[0]
    assert passage.scripts == ("您好，请您在24小时内补充以下材料。",)
    assert "```" not in passage.text and "您好，请您在24小时内补充以下材料。" in passage.text
