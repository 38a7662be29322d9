"""The section questions file: rows, bad lines reported with their line, rows naming no section."""

from __future__ import annotations

import json
from pathlib import Path

from kb_service.content.section_questions import (
    load_section_questions,
    section_questions_file,
    unknown_sections,
)


def _row(query: str, article: str = "glass", heading: str = "赔什么", style: str = "pasted") -> str:
    return json.dumps({"query": query, "article": article, "heading": heading, "style": style}, ensure_ascii=False)


def test_rows_are_read_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "section-questions.jsonl"
    path.write_text("\n".join([_row("亲 前挡碎了能赔吗"), "", _row("那个玻璃裂了 保险管不管", style="voice")]) + "\n",
                    encoding="utf-8")
    loaded = load_section_questions(path)
    assert loaded.problems == []
    assert [(r.query, r.section, r.style, r.line) for r in loaded.rows] == [
        ("亲 前挡碎了能赔吗", ("glass", "赔什么"), "pasted", 1), ("那个玻璃裂了 保险管不管", ("glass", "赔什么"), "voice", 3)]


def test_bad_lines_are_reported_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "section-questions.jsonl"
    path.write_text("\n".join([_row("前挡碎了能赔吗"), "{not json", json.dumps({"query": "缺小节", "article": "glass"}),
                               json.dumps(["a list"]), _row("  ")]) + "\n", encoding="utf-8")
    loaded = load_section_questions(path)
    assert [r.query for r in loaded.rows] == ["前挡碎了能赔吗"]
    assert [(p.line, p.message.split(":")[0]) for p in loaded.problems] == [
        (2, "not JSON"), (3, "'heading' must be non-empty text"), (4, "each line must be a JSON object"),
        (5, "'query' must be non-empty text")]


def test_a_missing_file_is_empty_and_the_default_sits_beside_the_articles(tmp_path: Path) -> None:
    assert load_section_questions(tmp_path / "absent.jsonl").rows == []
    assert section_questions_file(None, tmp_path) == tmp_path / "section-questions.jsonl"
    assert section_questions_file(tmp_path / "x.jsonl", "articles") == tmp_path / "x.jsonl"
    (tmp_path / "bad.jsonl").write_bytes("前挡".encode("gbk"))
    assert [p.message for p in load_section_questions(tmp_path / "bad.jsonl").problems] == [
        "section questions file is not UTF-8 text"]


def test_rows_naming_no_current_section_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "section-questions.jsonl"
    path.write_text("\n".join([_row("前挡碎了能赔吗"), _row("玻璃险咋报", heading="怎么报案")]) + "\n", encoding="utf-8")
    notes = unknown_sections(path, load_section_questions(path), {("glass", "赔什么")})
    assert [(n.line, n.message.split(":")[0]) for n in notes] == [(2, "section 'glass › 怎么报案' does not exist")]
