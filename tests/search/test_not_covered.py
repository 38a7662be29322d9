"""The not-covered list embedded (real USE embedder, real SQLite cache) and read by the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CountingEmbedder, write_article

from kb_service.evaluation.runner import save_confidence
from kb_service.index.builder import build_index
from kb_service.index.embedding import load_embedder, model_key
from kb_service.search import engine as engine_module
from kb_service.search.confidence import FEATURES, ConfidenceModel
from kb_service.search.engine import SearchEngine
from kb_service.search.not_covered import NotCoveredIndex, embed_not_covered
from kb_service.settings import Settings

LISTED = "退保:\n  - 车卖了剩下的保险能退多少钱\n  - 退保要扣多少手续费\n"



def test_nearest_is_the_closest_question_and_its_topic() -> None:
    index = NotCoveredIndex(["退保", "年检"], ["退保手续费", "年检周期"],
                            np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32))
    assert index.nearest(np.array([0.0, 1.0], dtype=np.float32)) == (pytest.approx(0.8), "年检")
    assert NotCoveredIndex().nearest(np.array([1.0, 0.0])) == (0.0, None)


def test_a_word_that_names_topics_picks_the_topic_to_name_among_them() -> None:
    index = NotCoveredIndex(["驾照换证", "年检预约", "年检周期"], ["驾照换证带什么", "年检怎么预约", "年检几年一次"],
                            np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32),
                            rows_naming={"驾照": (0,), "年检": (1, 2)})
    query = np.array([0.96, 0.28], dtype=np.float32)  # nearest 驾照换证 by cosine
    assert index.nearest(query) == (pytest.approx(0.96), "驾照换证")
    # The query says 年检: the closest 年检 topic is named; the cosine stays the closest question's.
    assert index.nearest(query, ["年检", "证件"]) == (pytest.approx(0.96), "年检预约")
    assert index.nearest(query, ["证件"]) == (pytest.approx(0.96), "驾照换证")


def _as_typed(question: str) -> tuple[str, tuple[str, ...]]:
    return question, tuple(question.split())


def test_a_name_word_that_other_topics_questions_use_as_a_scene_does_not_count() -> None:
    from kb_service.search.not_covered import topic_words

    pairs = [("年检 预约", "年检 预约 去哪"), ("年检 预约", "年检 要 预约 吗"), ("4S店 保管", "4S店 保管 丢了 东西"),
             ("车船税", "4S店 代缴 车船税"), ("代步车", "4S店 修车 代步车"), ("停车", "4S店 停车 收费")]
    read = {text: _as_typed(text) for pair in pairs for text in pair}
    # 4S店 names one topic, but three of its four questions belong to other topics: a scene there.
    assert topic_words(pairs, read) == {"年检", "预约", "保管", "车船税", "代步车", "停车"}


def test_an_edit_embeds_only_the_questions_it_adds(tmp_path: Path) -> None:
    embedder = CountingEmbedder(load_embedder("use-multilingual", "", tmp_path / "models", 1))
    path, cache = tmp_path / "not-covered.yaml", tmp_path / "cache.sqlite3"
    path.write_text(LISTED, encoding="utf-8")
    first = embed_not_covered(path, _as_typed, embedder, cache)
    assert first.topics == ["退保", "退保"] and first.vectors is not None and first.vectors.shape == (2, embedder.dim)
    path.write_text(LISTED + "年检: [年检周期是几年]\n", encoding="utf-8")
    second = embed_not_covered(path, _as_typed, embedder, cache)
    assert sorted(embedder.texts) == sorted([*first.questions, "年检周期是几年"]) and second.topics[-1] == "年检"
    assert second.words == {"退保", "年检"} and first.words == {"退保"}  # the topics' names, as read
    assert "年检" not in embedder.texts  # names are read for their words, never embedded
    assert np.array_equal(second.vectors[:2], first.vectors)  # type: ignore[index]


def _engine_judging_by_not_covered_only(settings: Settings) -> SearchEngine:
    """A model that reads nothing but `not_covered`: confident exactly when the query is nearer
    the passage it found than any not-covered question."""
    weights = [0.0] * len(FEATURES)
    weights[FEATURES.index("not_covered")] = -100.0
    key = model_key(settings.embedding_model, settings.embedding_runtime)
    save_confidence(settings.confidence_path, f"{key}/hybrid", ConfidenceModel(weights, bias=0.0, threshold=0.5))
    return SearchEngine.open(settings)


def test_a_query_nearer_a_listed_question_than_its_passage_is_not_confident(corpus_dir: Path, corpus_settings: Settings) -> None:
    (corpus_dir / "not-covered.yaml").write_text(LISTED, encoding="utf-8")
    build_index(corpus_settings)
    engine = _engine_judging_by_not_covered_only(corpus_settings)
    asked = engine.search("客户问退保要扣多少手续费")
    assert asked.features.not_covered > 0 and not asked.confident  # type: ignore[attr-defined]
    answered = engine.search("三者险赔什么")
    assert answered.features.not_covered < 0 and answered.confident  # type: ignore[attr-defined]
    assert engine.search("三者险赔什么", mode="lexical").features.not_covered == 0.0  # type: ignore[attr-defined]


def test_an_edit_to_the_list_goes_live_without_a_rebuild(corpus_dir: Path, corpus_settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    build_index(corpus_settings)
    engine = _engine_judging_by_not_covered_only(corpus_settings)
    assert engine.search("年检周期是几年").features.not_covered == 0.0  # type: ignore[attr-defined]  # no list yet
    monkeypatch.setattr(engine_module, "QUESTION_LISTS_CHECK_SECONDS", 0.0)
    (corpus_dir / "not-covered.yaml").write_text("年检: [年检周期是几年, 车辆多久年检一次]\n", encoding="utf-8")
    after = engine.search("年检周期是几年")
    assert after.features.not_covered > 0 and not after.confident  # type: ignore[attr-defined]
    # 年检 names a listed topic and no article uses it; 三者险 is an article's word.
    assert after.features.not_covered_words > 0  # type: ignore[attr-defined]
    assert engine.search("三者险年检").features.not_covered_words > 0  # type: ignore[attr-defined]
    assert engine.search("三者险赔什么").features.not_covered_words == 0.0  # type: ignore[attr-defined]
    (corpus_dir / "not-covered.yaml").unlink()
    gone = engine.search("年检周期是几年").features
    assert gone.not_covered == 0.0 and gone.not_covered_words == 0.0  # type: ignore[attr-defined]


def test_a_topic_name_written_out_counts_only_where_no_article_uses_it(corpus_dir: Path, corpus_settings: Settings) -> None:
    """电子发票 is cut into 电子 + 发票; written out whole it names the topic. 灾害证明 is listed too,
    but an article states it (the flood claim's materials): not a sign of a missing answer."""
    (corpus_dir / "not-covered.yaml").write_text(
        "电子发票: [车险电子发票在哪下载]\n灾害证明: [灾害证明去哪开]\n", encoding="utf-8")
    write_article(corpus_dir, "repair-invoice", "维修发票", {"发票要求": "理赔要交维修发票原件，照片可以用电子设备拍摄上传。"})
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    listed = engine._not_covered
    snap = engine._snapshot
    from kb_service.search.not_covered import AbsentNames

    absent = AbsentNames().of(snap.passages, snap.lexical, listed)
    assert absent == {"电子发票"}
    assert listed.named_in("客户问电子发票在哪下载", absent) == ["电子发票"]
    assert listed.named_in("水淹车要灾害证明吗", absent) == []
    named = engine.search("三者险的电子发票在哪下载").features  # type: ignore[attr-defined]
    plain = engine.search("三者险的纸质保单在哪下载").features  # type: ignore[attr-defined]
    assert named.not_covered_words > 0 and plain.not_covered_words == 0.0
    assert engine.search("水淹车要灾害证明吗").features.not_covered_words == 0.0  # type: ignore[attr-defined]


def test_a_named_topic_is_the_one_a_rejected_answer_names() -> None:
    index = NotCoveredIndex(["驾照换证", "电子发票"], ["驾照换证带什么", "电子发票怎么开"],
                            np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    query = np.array([0.96, 0.28], dtype=np.float32)  # nearest 驾照换证 by cosine
    assert index.nearest(query) == (pytest.approx(0.96), "驾照换证")
    assert index.nearest(query, named=["电子发票"]) == (pytest.approx(0.96), "电子发票")


def test_a_name_of_stop_characters_only_is_looked_for_in_every_passage(corpus_settings: Settings) -> None:
    """No bigram is indexed for 可以 (two stop characters): the candidates are then every live
    passage, not none, so a name an article uses is never taken for an absent one."""
    build_index(corpus_settings)
    snap = SearchEngine.open(corpus_settings)._snapshot
    assert sorted(snap.lexical.holding([])) == sorted(snap.passages)
    assert snap.lexical.holding(["交强"]) and set(snap.lexical.holding(["交强"])) < set(snap.passages)
