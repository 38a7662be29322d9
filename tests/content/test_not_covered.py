from __future__ import annotations

from pathlib import Path

from kb_service.content.not_covered import load_not_covered, not_covered_file
from kb_service.content.validation import check_knowledge_base
from kb_service.settings import Settings


def test_topics_and_their_questions_are_read_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "not-covered.yaml"
    path.write_text("# 知识库不回答的问题\n退保:\n  - 车卖了剩下的保险能退吗\n  - 退保手续费怎么算\n车船税: [车船税一年交多少]\n",
                    encoding="utf-8")
    listed = load_not_covered(path)
    assert listed.problems == []
    assert listed.questions() == [("退保", "车卖了剩下的保险能退吗"), ("退保", "退保手续费怎么算"), ("车船税", "车船税一年交多少")]


def test_no_file_is_an_empty_list_and_the_default_file_sits_beside_the_articles(tmp_path: Path) -> None:
    assert load_not_covered(tmp_path / "absent.yaml").questions() == []
    assert not_covered_file(None, tmp_path) == tmp_path / "not-covered.yaml"
    assert not_covered_file(tmp_path / "elsewhere.yaml", tmp_path / "articles") == tmp_path / "elsewhere.yaml"


def test_a_broken_list_is_reported_by_line_and_its_valid_topics_kept(tmp_path: Path) -> None:
    path = tmp_path / "not-covered.yaml"
    path.write_text("退保: [退保手续费怎么算]\n年检:\n车船税: [车船税一年交多少, '']\n", encoding="utf-8")
    listed = load_not_covered(path)
    assert [(p.line, p.message) for p in listed.problems] == [
        (2, "topic '年检' must list at least one question"),
        (3, "topic '车船税': every question must be non-empty text"),
    ]
    assert listed.questions() == [("退保", "退保手续费怎么算"), ("车船税", "车船税一年交多少")]
    path.write_text("- 退保手续费怎么算\n", encoding="utf-8")
    assert [p.message for p in load_not_covered(path).problems] == ["not-covered list must map a topic to a list of questions"]
    path.write_text("退保: [退保手续费\n", encoding="utf-8")
    assert load_not_covered(path).problems[0].message.startswith("invalid YAML")
    path.write_bytes("退保: [退保手续费怎么算]\n".encode("gbk"))
    assert [p.message for p in load_not_covered(path).problems] == ["not-covered list is not UTF-8 text"]


def test_kb_check_reports_the_list_beside_the_articles(corpus_dir: Path) -> None:
    (corpus_dir / "not-covered.yaml").write_text("年检:\n", encoding="utf-8")
    settings = Settings(articles_dir=corpus_dir, lexicon_path=corpus_dir / "lexicon.yaml")
    problems = check_knowledge_base(corpus_dir, settings).problems
    assert [(p.path.name, p.line, p.message) for p in problems] == [
        ("not-covered.yaml", 1, "topic '年检' must list at least one question")]
