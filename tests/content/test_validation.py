import json
from pathlib import Path

import pytest
from conftest import article_text, write_article

from kb_service.content.validation import check_knowledge_base
from kb_service.settings import Settings


def _check(folder: Path) -> list[str]:
    settings = Settings(articles_dir=folder, lexicon_path=folder / "lexicon.yaml")
    return [f"{p.path.name}:{p.line}: {p.message}" for p in check_knowledge_base(folder, settings).problems]


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if needle in line)


GOOD = {"小节": "这是一段足够长的正常内容，用来通过长度检查。" * 2}


def test_clean_corpus_has_no_problems(corpus_dir: Path) -> None:
    assert _check(corpus_dir) == []


@pytest.mark.parametrize(
    ("field", "replacement", "message"),
    [
        ("category: coverage", "category: weather", "unknown category 'weather'"),
        ("version: 1", "version: one", "'version' must be a positive integer"),
        ("updated: 2026-11-25", "updated: yesterday", "'updated' must be a date"),
        ("id: a-1", "id: A_1", "invalid id 'A_1'"),
        ("aliases: []", "aliases: 三者险", "'aliases' must be a list of strings"),
    ],
)
def test_invalid_front_matter_fields_are_reported_at_their_line(tmp_path: Path, field: str, replacement: str, message: str) -> None:
    path = tmp_path / "a-1.md"
    path.write_text(article_text("a-1", "标题", GOOD).replace(field, replacement), encoding="utf-8")
    problems = _check(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"a-1.md:{_line_of(path, replacement)}: {message}")


def test_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(article_text("a", "标题", GOOD).replace("owner: 测试组\n", ""), encoding="utf-8")
    assert _check(tmp_path) == ["a.md:1: front matter field 'owner' is missing"]


def test_duplicate_ids_and_titles(tmp_path: Path) -> None:
    write_article(tmp_path, "same", "标题一", GOOD)
    other = tmp_path / "zz-copy.md"
    other.write_text(article_text("same", "标题一", GOOD), encoding="utf-8")
    problems = _check(tmp_path)
    assert f"zz-copy.md:{_line_of(other, 'id: same')}: duplicate id 'same' (also in same.md)" in problems
    assert f"zz-copy.md:{_line_of(other, 'title: 标题一')}: duplicate title '标题一' (also in same.md)" in problems


def test_empty_and_oversize_sections(tmp_path: Path) -> None:
    path = write_article(tmp_path, "sizes", "尺寸", {"空的": "", "太长": "很长的句子。" * 120, "正常": GOOD["小节"]})
    problems = _check(tmp_path)
    assert problems[0] == f"sizes.md:{_line_of(path, '## 空的')}: section '空的' is empty or too short (0 chars)"
    assert problems[1] == f"sizes.md:{_line_of(path, '## 太长')}: section '太长' is too long (720 > 600 chars)"
    assert len(problems) == 2


def test_broken_internal_link(tmp_path: Path) -> None:
    write_article(tmp_path, "target", "目标", GOOD)
    path = write_article(tmp_path, "links", "链接", {"小节": GOOD["小节"] + "见[目标](target.md)和[不存在](missing.md)。"})
    assert _check(tmp_path) == [f"links.md:{_line_of(path, 'missing.md')}: broken link to 'missing.md'"]


def test_forbidden_phrase_only_inside_script_blocks(tmp_path: Path) -> None:
    text = GOOD["小节"] + "\n\n禁忌用语举例：没办法。\n\n```script\n您好，很抱歉带来不便。\n这是规定，请您理解。\n```\n"
    path = write_article(tmp_path, "scripts", "话术", {"小节": text}, category="script")
    assert _check(tmp_path) == [f"scripts.md:{_line_of(path, '这是规定，请您理解')}: forbidden phrase '这是规定' in script block"]


def test_lexicon_problems_are_reported(tmp_path: Path) -> None:
    write_article(tmp_path, "a", "标题", GOOD)
    (tmp_path / "lexicon.yaml").write_text(
        "terms: [三者险]\nsynonyms:\n  第三者责任险: [三者险]\n  车损险: [三者险]\ntypos:\n  理赔: 理赔\n", encoding="utf-8"
    )
    problems = _check(tmp_path)
    assert "lexicon.yaml:4: '三者险' maps to both '第三者责任险' and '车损险'" in problems
    assert "lexicon.yaml:6: typo '理赔' maps to itself" in problems


def test_bundled_knowledge_base_is_clean() -> None:
    root = Path(__file__).resolve().parents[2]
    settings = Settings()
    report = check_knowledge_base(root / "articles", settings)
    assert report.problems == [] and report.notes == []  # every section has its 相似问
    assert len(report.articles) >= 60
    assert max(len(p.text) for p in report.passages) <= 600


def test_sections_without_questions_are_noted_not_refused(tmp_path: Path) -> None:
    path = write_article(tmp_path, "glass", "玻璃险", {"赔什么": "玻璃单独破碎险只赔玻璃单独破碎的损失。" * 2,
                                                      "怎么报": "拍照后在线报案即可。" * 3}, questions={"赔什么": ["前挡碎了赔不赔"]})
    report = check_knowledge_base(tmp_path, Settings(articles_dir=tmp_path))
    assert report.problems == [] and [a.id for a in report.articles] == ["glass"]
    line = path.read_text(encoding="utf-8").splitlines().index("## 怎么报") + 1
    assert [(n.line, n.message) for n in report.notes] == [(line, "section '怎么报' has no 相似问 (front matter 'questions')")]


RAW_HTML_ADVICE = "use a ```script block for 话术"


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ('<div class="kb-script">这是规定，请您理解。</div>', 'class="kb-script"'),
        ("<p class='tip kb-script'>没办法。</p>", 'class="kb-script"'),
        ("<script>alert(1)</script>", "<script>"),
        ("<SCRIPT src='https://evil.example/x.js'></SCRIPT>", "<script>"),
        ('<img src="x" onerror="alert(1)">', "onerror="),
        ('<span onclick="alert(1)">点我</span>', "onclick="),
        ('<iframe src="https://evil.example"></iframe>', "<iframe>"),
        ('<form action="https://evil.example"><input name="a"></form>', "<form>"),
        ('<object data="x.swf"></object>', "<object>"),
        ('<embed src="x.swf">', "<embed>"),
        ("<style>body { display: none }</style>", "<style>"),
        ("[点我](javascript:alert(1))", "javascript: link"),
        ("[点我](java&#9;script:alert(1))", "javascript: link"),
        ("[点我](<java\tscript:alert(1)>)", "javascript: link"),
        ('<a href="&#x6A;avascript:alert(1)">点我</a>', "javascript: link"),
        ("<b>加粗</b>", "<b>"),
        ("<!-- 编辑备注 -->", "<!-- comment -->"),
    ],
)
def test_raw_html_is_reported_at_its_line(tmp_path: Path, raw: str, named: str) -> None:
    path = write_article(tmp_path, "raw", "原始HTML", {"小节": f"{GOOD['小节']}\n\n{raw}\n"})
    problems = _check(tmp_path)
    assert len(problems) == 1, problems
    where, message = problems[0].split(": ", 1)
    assert where == f"raw.md:{_line_of(path, raw)}"
    assert message.startswith("raw HTML in article body (") and named in message and RAW_HTML_ADVICE in message


def test_raw_html_over_several_lines_is_reported_where_it_is(tmp_path: Path) -> None:
    text = GOOD["小节"] + '\n\n<a href="java\nscript:alert(1)"\n   onmouseover="alert(2)">点我</a>\n'
    path = write_article(tmp_path, "multi", "多行", {"小节": text})
    first = _line_of(path, '<a href="java')
    problems = _check(tmp_path)
    # The javascript: scheme split by a line break is reported where it starts.
    assert [p.split(": ", 1)[0] for p in problems] == [f"multi.md:{first}", f"multi.md:{first + 2}"]
    assert "javascript: link" in problems[0] and "onmouseover=" in problems[1]


def test_raw_html_problems_keep_the_article_out_of_the_index(tmp_path: Path) -> None:
    write_article(tmp_path, "fine", "正常", GOOD)
    write_article(tmp_path, "raw", "原始", {"小节": GOOD["小节"] + '\n\n<div class="kb-script">稍等。</div>\n'})
    report = check_knowledge_base(tmp_path, Settings(articles_dir=tmp_path))
    assert [a.id for a in report.articles] == ["fine"]


def test_html_written_as_code_or_text_is_not_raw_html(tmp_path: Path) -> None:
    text = (
        GOOD["小节"]
        + "\n\n客户原话可能含有 `<img src=x onerror=alert(1)>` 或 ``<div class=\"kb-script\">`` 这样的字符，照原样保存。"
        + "\n\n金额 3<5 万元、<三者险> 和 <https://example.com/terms> 都不是 HTML；[官网](https://example.com) 正常。"
        + "\n\n```\n<script>alert(1)</script>\n```\n\n```script\n您好，请您提供 <事故认定书>。\n```\n"
    )
    write_article(tmp_path, "clean", "代码与文本", {"小节": text}, category="script")
    assert _check(tmp_path) == []


def test_section_questions_are_checked_bad_lines_refused_unknown_sections_noted(tmp_path: Path) -> None:
    write_article(tmp_path, "glass", "玻璃险", {"赔什么": "玻璃单独破碎险只赔玻璃单独破碎的损失。" * 2},
                  questions={"赔什么": ["前挡碎了赔不赔"]})
    rows = [{"query": "亲 前挡裂了能报吗", "article": "glass", "heading": "赔什么"},
            {"query": "玻璃险怎么报案", "article": "glass", "heading": "怎么报"}]
    (tmp_path / "section-questions.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{broken\n", encoding="utf-8")
    report = check_knowledge_base(tmp_path, Settings(articles_dir=tmp_path))
    assert [(p.path.name, p.line) for p in report.problems] == [("section-questions.jsonl", 3)]
    assert [a.id for a in report.articles] == ["glass"]  # the articles still index
    assert [(n.line, n.message.split(":")[0]) for n in report.notes] == [(2, "section 'glass › 怎么报' does not exist")]
    assert report.unasked_sections == []
