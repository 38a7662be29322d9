from pathlib import Path

from conftest import write_article

from kb_service.content.articles import load_articles, parse_article


def test_good_article_parses_with_fields_sections_and_lines(tmp_path: Path) -> None:
    path = write_article(tmp_path, "third-party", "三者险说明", {"赔什么": "三者险赔偿第三方的人身伤亡和财产损失。" * 3,
                                                                  "怎么赔": "按保单约定赔付，以条款为准。" * 3},
                         aliases=["三者险", "三者"], version=3)
    article, problems = parse_article(path)
    assert problems == []
    assert article is not None
    assert (article.id, article.title, article.category, article.version) == ("third-party", "三者险说明", "coverage", 3)
    assert article.aliases == ("三者险", "三者")
    assert article.updated == "2026-11-25"
    assert [s.heading for s in article.sections] == ["赔什么", "怎么赔"]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[article.sections[0].line - 1] == "## 赔什么"
    assert lines[article.sections[1].line - 1] == "## 怎么赔"


def test_h3_sections_carry_their_heading_path(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(
        "---\nid: a\ntitle: 标题\ncategory: claims\ntags: []\naliases: []\nupdated: 2026-01-01\nversion: 1\nowner: x\n---\n"
        "# 标题\n\n## 理赔\n\n概述文字。\n\n### 材料\n\n需要的材料。\n",
        encoding="utf-8",
    )
    article, problems = parse_article(path)
    assert problems == [] and article is not None
    assert [s.heading_path for s in article.sections] == [("理赔",), ("理赔", "材料")]


def test_malformed_article_is_reported_and_skipped_while_the_rest_load(tmp_path: Path) -> None:
    write_article(tmp_path, "good-one", "好文章", {"小节": "正常内容。" * 10})
    write_article(tmp_path, "good-two", "另一篇", {"小节": "正常内容。" * 10})
    (tmp_path / "broken.md").write_text("---\nid: broken\ntitle: [unclosed\n---\n# x\n", encoding="utf-8")
    (tmp_path / "no-front-matter.md").write_text("# 没有元数据\n\n正文\n", encoding="utf-8")
    result = load_articles(tmp_path)
    assert sorted(a.id for a in result.articles) == ["good-one", "good-two"]
    reported = {(p.path.name, p.line) for p in result.problems}
    assert ("no-front-matter.md", 1) in reported
    assert any(name == "broken.md" and line >= 2 for name, line in reported)


def test_readme_is_not_an_article(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# 编写规范\n", encoding="utf-8")
    assert load_articles(tmp_path).problems == []


def test_cache_reparses_only_touched_files(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    from kb_service.content import articles

    first = write_article(tmp_path, "a-one", "甲文章", {"小节": "这是第一篇文章的正文内容，足够长。"})
    write_article(tmp_path, "b-two", "乙文章", {"小节": "这是第二篇文章的正文内容，足够长。"})
    cache = articles.ArticleCache()
    before = load_articles(tmp_path, cache)
    parsed: list[str] = []
    real_parse = articles.parse_article
    monkeypatch.setattr(articles, "parse_article", lambda p, raw=None: parsed.append(p.name) or real_parse(p, raw))
    again = load_articles(tmp_path, cache)
    assert parsed == [] and [a.id for a in again.articles] == [a.id for a in before.articles]
    digest = cache.digest(first)
    write_article(tmp_path, "a-one", "甲文章", {"小节": "这是第一篇文章修改后的正文内容。"})
    os.utime(first, ns=(1, 1))  # a new mtime even on filesystems with coarse timestamps
    after = load_articles(tmp_path, cache)
    assert parsed == ["a-one.md"] and cache.digest(first) != digest
    assert "修改后" in after.articles[0].markdown
    (tmp_path / "b-two.md").unlink()
    assert [a.id for a in load_articles(tmp_path, cache).articles] == ["a-one"]


def test_questions_attach_to_their_sections_and_reach_every_passage(tmp_path: Path) -> None:
    from kb_service.content.chunking import chunk_article

    path = write_article(tmp_path, "theft", "盗抢险", {"赔什么": "盗抢险赔车辆被盗。" * 3, "等多久": "报警后满60天未找回再赔。" * 40},
                         questions={"等多久": ["车丢了要等几天", "车丢了要等几天", "被偷的车多久能赔"]})
    article, problems = parse_article(path)
    assert problems == [] and article is not None
    assert [s.questions for s in article.sections] == [(), ("车丢了要等几天", "被偷的车多久能赔")]  # duplicates dropped
    passages = chunk_article(article, max_chars=200)
    assert len(passages) > 2  # the long section is split, and each piece carries its questions
    assert all(p.questions == ("车丢了要等几天", "被偷的车多久能赔") for p in passages if p.heading == "等多久")
    assert passages[0].questions == ()


def test_chat_signals_attach_to_their_section_and_bad_ones_are_reported(tmp_path: Path) -> None:
    from kb_service.content.chunking import chunk_article

    path = write_article(tmp_path, "gifts", "送礼", {"能不能收": "客户送的红包和礼品一律婉拒。" * 3, "怎么拒": "礼貌说明公司规定。" * 3},
                         signals={"能不能收": ["红包", " 请你喝 ", "红包"]})
    article, problems = parse_article(path)
    assert problems == [] and article is not None
    assert [s.signals for s in article.sections] == [("红包", "请你喝"), ()]  # trimmed, duplicates dropped
    assert [p.signals for p in chunk_article(article)] == [("红包", "请你喝"), ()]
    for signals, wanted in (({"能不能收": ["包"]}, "at least 2 characters"), ({"收不收": ["红包"]}, "'收不收'"),
                            ({"能不能收": ["红包|礼物 + 卡"]}, "at least 2 characters"),
                            ({"能不能收": ["红包 + "]}, "at least 2 characters")):
        bad = write_article(tmp_path, "bad", "送礼", {"能不能收": "客户送的红包一律婉拒。"}, signals=signals)
        article, problems = parse_article(bad)
        assert len(problems) == 1 and wanted in problems[0].message and problems[0].message.startswith("signals")
        assert bad.read_text(encoding="utf-8").splitlines()[problems[0].line - 1] == "signals:"


def test_questions_for_a_renamed_heading_are_reported(tmp_path: Path) -> None:
    path = write_article(tmp_path, "theft", "盗抢险", {"赔什么": "盗抢险赔车辆被盗。" * 3},
                         questions={"赔啥": ["车丢了赔不赔"]})
    article, problems = parse_article(path)
    assert len(problems) == 1 and "赔啥" in problems[0].message
    assert path.read_text(encoding="utf-8").splitlines()[problems[0].line - 1] == "questions:"
    (tmp_path / "bad.md").write_text(path.read_text(encoding="utf-8").replace("id: theft", "id: bad").replace(
        "  赔啥: [车丢了赔不赔]", "  赔什么: 车丢了赔不赔"), encoding="utf-8")
    _, problems = parse_article(tmp_path / "bad.md")
    assert [p.message for p in problems] == ["questions for '赔什么' must be a list of strings"]
