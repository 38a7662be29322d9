from __future__ import annotations

import pytest

from kb_service.engine import IndexNotBuiltError, QueryError, SearchEngine
from kb_service.indexing import build_index
from kb_service.settings import Settings


@pytest.fixture()
def engine(corpus_settings: Settings) -> SearchEngine:
    build_index(corpus_settings)
    return SearchEngine.open(corpus_settings)


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_a_clear_error(engine: SearchEngine, query: str) -> None:
    with pytest.raises(QueryError, match="查询内容为空"):
        engine.search(query)


def test_huge_query_is_a_clear_error(engine: SearchEngine) -> None:
    with pytest.raises(QueryError, match="查询过长：最多 200 个字"):
        engine.search("三者险" * 100)
    assert engine.search("三者险" * 66).hits  # 198 characters still search


def test_hits_carry_passage_highlights_and_version(engine: SearchEngine) -> None:
    response = engine.search("三者险赔什么", k=2)
    top = response.hits[0]
    assert top.article_id == "third-party" and top.version == 1 and len(response.hits) == 2
    assert top.heading == "三者险赔什么" and "第三方" in top.text
    assert "三者险" in top.highlights or "三者险赔什么" in top.highlights
    assert all(h in top.text for h in top.highlights)


def test_category_and_tag_filters(engine: SearchEngine) -> None:
    assert engine.search("理赔材料", category="claims").hits == []  # the fixture corpus is all 'coverage'
    assert {h.article_id for h in engine.search("理赔材料", tags=["测试"]).hits}
    assert engine.search("理赔材料", tags=["不存在的标签"]).hits == []


def test_typos_and_colloquial_forms_find_the_canonical_article(engine: SearchEngine) -> None:
    assert engine.search("丢车了咋办").hits[0].article_id == "theft-claim"  # lexicon synonym
    assert engine.search("到抢要等多久").hits[0].article_id == "theft-claim"  # homophone of 盗抢
    assert engine.search("daoqiang要等多久").hits[0].article_id == "theft-claim"  # 盗抢 typed as pinyin


def test_unknown_article_is_none(engine: SearchEngine) -> None:
    assert engine.article("no-such-article") is None
    assert engine.article("third-party").title == "第三者责任险说明"


def test_open_without_index_says_what_to_do(tmp_path, corpus_settings: Settings) -> None:
    with pytest.raises(IndexNotBuiltError, match="kb index"):
        SearchEngine.open(corpus_settings.with_overrides(index_dir=tmp_path / "empty"))
