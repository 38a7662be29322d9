from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_article

from kb_service.evaluation.runner import save_confidence
from kb_service.index.builder import build_index
from kb_service.index.embedding import model_key
from kb_service.search.confidence import FEATURES, ConfidenceModel
from kb_service.search.engine import IndexNotBuiltError, QueryError, SearchEngine
from kb_service.settings import Settings


@pytest.fixture()
def engine(corpus_settings: Settings) -> SearchEngine:
    build_index(corpus_settings)
    return SearchEngine.open(corpus_settings)


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_a_clear_error(engine: SearchEngine, query: str) -> None:
    with pytest.raises(QueryError, match="查询内容为空"):
        engine.search(query)


@pytest.mark.parametrize("query", ["13812345678", "我手机 138 1234 5678", "粤B·12345"])
def test_a_query_of_nothing_but_personal_data_is_answered_without_searching_it(engine: SearchEngine, query: str) -> None:
    response = engine.search(query)
    assert not response.confident
    assert response.reading.questions == ("",) and response.reading.personal_data
    assert "12345" not in response.reading.cleaned
    assert not any("12345" in term for hit in response.hits for term in hit.highlights)


def test_huge_query_is_a_clear_error(engine: SearchEngine) -> None:
    with pytest.raises(QueryError, match="查询过长：最多 1000 个字"):
        engine.search("三者险" * 334)
    assert engine.search("三者险" * 333).hits  # 999 characters still search


def test_a_900_character_pasted_message_is_read_and_answered(engine: SearchEngine) -> None:
    story = "我昨天下午开车去上班，路上车很多，等红灯的时候后面的车没刹住，"
    message = "亲，在吗？？" + story * 28 + "想问一下三者险赔什么？我手机13812345678，谢谢亲～"
    assert 880 <= len(message) <= 1000
    response = engine.search(message)
    assert response.hits[0].article_id == "third-party"
    assert "13812345678" not in response.reading.cleaned and "〔手机号〕" in response.reading.personal_data


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


@pytest.mark.parametrize("style, query, article_id", [
    ("short", "三者险", "third-party"),
    ("colloquial", "三者险都赔些啥呀", "third-party"),
    ("scenario", "车停地库被暴雨淹了，要准备什么材料", "flood-claim"),
    ("pasted", "亲在吗？？😭我的车昨天晚上停小区门口被偷了，已经报警了，车牌粤B12345，电话13812345678，"
               "想问下理赔要准备什么材料？？谢谢亲～急急急", "theft-claim"),
    ("multi", "丢车了理赔要什么材料，另外投诉分几级", "theft-claim"),
    ("voice", "那个就是车子被偷了然后理陪要等多久啊", "theft-claim"),
    ("trad", "車輛被盜搶以後理賠要等多久", "theft-claim"),
    ("mixed", "customer 丢车 lipei 要等多久", "theft-claim"),
])
def test_each_writing_style_finds_its_passage(engine: SearchEngine, style: str, query: str, article_id: str) -> None:
    response = engine.search(query)
    assert response.hits[0].article_id == article_id, (style, response.reading)


def test_several_questions_answer_each_in_turn(engine: SearchEngine) -> None:
    response = engine.search("丢车了理赔要什么材料，另外投诉分几级")
    assert [q.hits[0].article_id for q in response.questions] == ["theft-claim", "complaint-grading"]
    # The flat list (what `kb search --json` prints) leads with the first question's answers and
    # carries the best answer of the second too.
    assert response.hits[0].article_id == "theft-claim" and "complaint-grading" in [h.article_id for h in response.hits]
    assert response.to_dict()["reading"]["questions"] == ["丢车了理赔要什么材料", "投诉分几级"]


def test_a_typed_number_never_matches_a_passage(engine: SearchEngine) -> None:
    """A phone number in the query is not searched: it neither matches digits nor counts as unknown."""
    plain = engine.search("三者险赔什么")
    with_phone = engine.search("三者险赔什么 13812345678")
    assert with_phone.hits[0].article_id == plain.hits[0].article_id
    assert with_phone.features.vector() == plain.features.vector()  # type: ignore[attr-defined]


def test_a_filter_that_excludes_the_answer_gives_no_confident_hit(corpus_dir, corpus_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    write_article(corpus_dir, "late-report", "报案延误话术", {
        "报案超时怎么说": "客户超过48小时才报案时，先致歉，再说明延误可能影响查勘，请客户尽快补充事故照片和证明。",
    }, category="script")
    build_index(corpus_settings)
    # A model confident about everything: only the filter rule can withhold confidence here.
    key = model_key(corpus_settings.embedding_model, corpus_settings.embedding_runtime)
    save_confidence(corpus_settings.confidence_path, f"{key}/hybrid",
                    ConfidenceModel([0.0] * len(FEATURES), bias=0.0, threshold=0.1))
    engine = SearchEngine.open(corpus_settings)
    assert engine.search("三者险赔什么").confident
    filtered = engine.search("三者险赔什么", category="script")
    assert [h.article_id for h in filtered.hits] == ["late-report"]
    assert filtered.confident is False and filtered.outside_filter == "coverage"
    assert filtered.to_dict()["outside_filter"] == "coverage"
    assert engine.search("报案超时怎么说", category="script").confident  # the answer passes the filter


def test_a_pasted_message_finds_what_it_tells_without_asking(corpus_dir, corpus_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """The question of a pasted message is embedded and judged; the story it leaves out (here the red
    envelope) is still read by the lexical side, which is how the rule the agent needs comes up."""
    write_article(corpus_dir, "gifts", "客户送礼怎么办", {
        "客户发红包": "客户发红包、送礼品或请吃饭表示感谢时，客服一律不能收受，礼貌婉拒并说明公司规定。",
    })
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    message = ("妹子谢谢你啊这几天帮我跑前跑后的，三者险赔什么？到了我给你发个小红包，就当请你喝奶茶，"
               "你加我微信吧，以后我朋友买车险都找你，放心不会有人知道的，我这人最讲义气了")
    response = engine.search(message)
    assert response.reading.untold_story is not None
    assert response.hits[0].article_id == "third-party"  # the question still leads
    lexical_with_story = [h.article_id for h in engine.search(message, mode="lexical").hits]
    lexical_asked_only = [h.article_id for h in engine.search(response.reading.questions[0], mode="lexical").hits]
    assert "gifts" in lexical_with_story and "gifts" not in lexical_asked_only


def test_a_chat_signal_brings_its_section_first_in_a_pasted_message_and_second_after_a_typed_query(corpus_dir, corpus_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """The editors' chat signal (红包) in a pasted message that asks something else puts the red-line
    section first, marked with the words that brought it; in a short query the agent typed it comes
    right after the question's answer; asked outright, the section is simply found first, unmarked."""
    write_article(corpus_dir, "gifts", "客户送礼怎么办", {
        "客户发红包": "客户表示感谢想送礼品时，客服一律不能收受，礼貌婉拒并说明公司规定。",
    }, category="compliance", signals={"客户发红包": ["红包", "送礼"]})
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    message = ("妹子谢谢你啊这几天帮我跑前跑后的，三者险赔什么？到了我给你发个小红包，就当请你喝奶茶，你加我微信吧，"
               "以后我朋友买车险都找你，放心不会有人知道的，我这人最讲义气了")
    response = engine.search(message)
    assert [h.article_id for h in response.hits[:2]] == ["gifts", "third-party"]
    assert response.hits[0].signal == "红包" and response.hits[0].to_dict()["signal"] == "红包"
    assert response.hits[1].signal is None
    typed = engine.search("三者险赔什么，客户说要发红包")
    assert [h.article_id for h in typed.hits[:2]] == ["third-party", "gifts"] and typed.hits[1].signal == "红包"
    assert "gifts" not in [h.article_id for h in engine.search(message, category="coverage").hits]
    switched_off = SearchEngine.open(corpus_settings.model_copy(update={"chat_signals": False}))
    assert switched_off.search(message).hits[0].article_id == "third-party"
    asked = engine.search("客户要发红包给我能收吗")
    assert asked.hits[0].article_id == "gifts" and asked.hits[0].signal is None


def test_a_signal_of_two_parts_fires_only_when_the_message_says_both(corpus_dir, corpus_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """A fraud section signalled by two warning signs together (a policy just bought, cash instead of
    repair): a pasted message with both gets it first, named by the words it said; one sign alone
    does not bring it."""
    write_article(corpus_dir, "fraud", "欺诈预警信号", {
        "预警信号": "投保后短期内出险、坚持现金赔付不愿修理，多个信号同时出现时按流程上报反欺诈团队。",
    }, category="compliance", signals={"预警信号": ["刚投保|刚买的保险 + 要现金|不想修|直接打钱"]})
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    story = "你好，我上周刚买的保险，昨天晚上在郊区撞了护栏，车头都瘪了，三者险赔什么？"
    both = engine.search(story + "这车旧了我不想修了，你们直接打钱给我吧，卡号我发你")
    assert both.hits[0].article_id == "fraud" and both.hits[0].signal == "刚买的保险、不想修"
    one = engine.search(story + "对方的车也坏了，我该怎么报案，要准备什么材料呢")
    assert all(h.signal is None for h in one.hits)


def test_opening_the_engine_sets_faiss_threads_from_the_settings(corpus_settings: Settings) -> None:
    import faiss

    build_index(corpus_settings)
    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(2)
        SearchEngine.open(corpus_settings.model_copy(update={"threads": 1})).close()
        assert faiss.omp_get_max_threads() == 1
    finally:
        faiss.omp_set_num_threads(before)


def test_the_engine_embeds_queries_on_the_workers_share_of_the_cores(
    corpus_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kb_service.search.engine as engine_module

    build_index(corpus_settings)
    asked: list[int] = []
    real_load = engine_module.load_embedder

    def recording_load(model: str, runtime: str, models_dir: Path, threads: int = 1):  # type: ignore[no-untyped-def]
        asked.append(threads)
        return real_load(model, runtime, models_dir, threads)

    monkeypatch.setattr(engine_module, "load_embedder", recording_load)
    SearchEngine.open(corpus_settings.model_copy(update={"embedding_threads": 3})).close()
    SearchEngine.open(corpus_settings.model_copy(update={"embedding_threads": 0, "workers": 64})).close()
    assert asked == [3, 1]
