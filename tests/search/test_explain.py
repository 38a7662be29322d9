"""`kb explain`: the parts of each hit's score and of the confidence verdict add up."""

from __future__ import annotations

import json
import math

from conftest import write_article
from typer.testing import CliRunner

from kb_service.cli import app
from kb_service.index.builder import build_index
from kb_service.search.engine import SearchEngine
from kb_service.search.explain import explain, render
from kb_service.settings import Settings


def test_explanation_matches_the_search_and_its_confidence(corpus_settings: Settings) -> None:
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    reading, questions = explain(engine, "車輛被盜搶以後理賠要等多久？我手機13812345678")
    assert reading["converted"] is True and reading["personal_data"] == ["〔手机号〕"]
    (question,) = questions
    response = engine.search("車輛被盜搶以後理賠要等多久？我手機13812345678")
    assert [h.article_id for h in question.hits] == [h.article_id for h in response.hits]
    assert question.hits[0].article_id == "theft-claim" and question.hits[0].lexical_rank
    logit = engine.confidence["hybrid"].bias + sum(part for _, part in question.contributions.values())
    assert math.isclose(1 / (1 + math.exp(-logit)), question.probability, abs_tol=0.01)
    assert question.confident == response.confident
    text = render(reading, questions, engine.confidence["hybrid"].bias)
    assert "theft-claim" in text and "question_match" in text and "13812345678" not in text


def test_the_explanation_says_at_which_rank_a_chat_signal_put_its_section(corpus_dir, corpus_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    write_article(corpus_dir, "gifts", "客户送礼怎么办", {"客户发红包": "客户想送礼品时客服一律不能收受，礼貌婉拒。"},
                  category="compliance", signals={"客户发红包": ["红包"]})
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    pasted, _ = explain(engine, "妹子谢谢你啊这几天帮我跑前跑后的，三者险赔什么？到了我给你发个小红包，就当请你喝奶茶，"
                                "你加我微信吧，以后我朋友买车险都找你")
    typed, _ = explain(engine, "三者险赔什么，客户说要发红包")
    assert pasted["signalled"].startswith("#1 gifts") and typed["signalled"].startswith("#2 gifts")
    assert "chat signal, shown at #1 gifts" in render(pasted, [], 0.0)


def test_the_explanation_names_the_section_a_section_question_put_in_its_slot(corpus_dir, corpus_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    asked = "客户说我要投诉你们 这种投诉要多久给答复"
    (corpus_dir / "section-questions.jsonl").write_text(json.dumps(
        {"query": asked, "article": "flood-claim", "heading": "水淹车理赔材料"}, ensure_ascii=False) + "\n", encoding="utf-8")
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings.with_overrides(answered_slot=2))
    reading, questions = explain(engine, asked)
    assert reading["section_question"] == "#2 flood-claim › 水淹车理赔材料"
    assert "section question's section (articles/section-questions.jsonl), shown at #2 flood-claim" in render(reading, questions, 0.0)
    unplaced, _ = explain(engine, "投诉分几级", k=1)
    assert unplaced["section_question"] is None


def test_cli_json_and_a_bad_query(corpus_settings: Settings) -> None:
    build_index(corpus_settings)
    env = {"KB_ARTICLES_DIR": str(corpus_settings.articles_dir), "KB_LEXICON_PATH": str(corpus_settings.lexicon_path),
           "KB_INDEX_DIR": str(corpus_settings.index_dir), "KB_EMBEDDING_MODEL": corpus_settings.embedding_model,
           "KB_CONFIDENCE_PATH": str(corpus_settings.confidence_path)}
    result = CliRunner().invoke(app, ["explain", "三者险赔什么", "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["questions"][0]["hits"][0]["article_id"] == "third-party"
    empty = CliRunner().invoke(app, ["explain", "   "], env=env)
    assert empty.exit_code == 2 and "error: 查询内容为空" in empty.output
