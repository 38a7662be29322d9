"""The section questions embedded (real USE embedder, real index) and read as `answered_match`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kb_service.index.builder import build_index
from kb_service.models import Hit
from kb_service.search import engine as engine_module
from kb_service.search.answered import AnsweredIndex, with_answered_section
from kb_service.search.engine import SearchEngine
from kb_service.settings import Settings
from tests.conftest import SMALL_CORPUS, write_article


def test_nearest_counts_only_rows_whose_section_exists() -> None:
    index = AnsweredIndex(["前挡碎了", "车丢了"], [("glass", "赔什么"), ("theft", "材料")],
                          np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32))
    query = np.array([0.0, 1.0], dtype=np.float32)
    assert index.closest(query, np.array([True, True]))[0] == pytest.approx(0.8)
    only_glass = index.live_rows("gen-1", lambda: {("glass", "赔什么")})
    assert only_glass.tolist() == [True, False] and index.closest(query, only_glass)[0] == pytest.approx(0.0)
    assert index.closest(query, index.live_rows("gen-1", lambda: set()))[0] == pytest.approx(0.0)  # asked once per generation
    assert index.live_rows("gen-2", lambda: set()).tolist() == [False, False]
    assert AnsweredIndex().closest(query, np.array([], dtype=bool))[0] == 0.0


def test_closest_section_skips_dead_rows_and_what_the_filter_refuses() -> None:
    index = AnsweredIndex(["a", "b", "c"], [("glass", "赔什么"), ("theft", "材料"), ("flood", "材料")],
                          np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]], dtype=np.float32))
    query = np.array([1.0, 0.0], dtype=np.float32)
    every = np.array([True, True, True])
    assert index.closest(query, every) == (pytest.approx(1.0), ("glass", "赔什么"))
    assert index.closest(query, np.array([False, True, True])) == (pytest.approx(0.8), ("theft", "材料"))
    # The filter picks the section; the cosine stays the closest live question's (answered_match).
    assert index.closest(query, every, lambda s: s[0] == "flood") == (pytest.approx(1.0), ("flood", "材料"))
    assert index.closest(query, np.array([True, True, False]), lambda s: s[0] == "flood") == (pytest.approx(1.0), None)
    assert index.closest(query, np.array([False, False, False])) == (0.0, None)
    assert AnsweredIndex().closest(query, np.array([], dtype=bool)) == (0.0, None)


def _hit(article_id: str, heading: str = "h") -> Hit:
    return Hit(article_id, article_id, heading, "", 1.0, "coverage", 1)


def test_the_answered_section_takes_its_slot_unless_its_article_is_above() -> None:
    hits = [_hit(a) for a in "abcdef"]
    placed = with_answered_section(hits, _hit("x", "s"), 5, 5)
    assert [h.article_id for h in placed] == ["a", "b", "c", "d", "x"]
    moved = with_answered_section(hits, _hit("e", "other"), 3, 5)  # its article's lower hit goes
    assert [(h.article_id, h.heading) for h in moved] == [("a", "h"), ("b", "h"), ("e", "other"), ("c", "h"), ("d", "h")]
    assert with_answered_section(hits, _hit("b", "other"), 5, 5) == hits  # already above the slot: kept as ranked
    assert [h.article_id for h in with_answered_section(hits[:2], _hit("x"), 5, 5)] == ["a", "b", "x"]


def _write(corpus_dir: Path, rows: list[tuple[str, str, str]]) -> None:
    (corpus_dir / "section-questions.jsonl").write_text(
        "\n".join(json.dumps({"query": q, "article": a, "heading": h}, ensure_ascii=False) for q, a, h in rows) + "\n",
        encoding="utf-8")


def test_a_query_asked_like_a_section_question_matches_it_and_edits_go_live(
        corpus_dir: Path, corpus_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = "亲 在吗 我车停小区一晚上就没了 报警了 接下来要准备啥"
    _write(corpus_dir, [(asked, "theft-claim", "盗抢理赔材料")])
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    near = engine.search(asked).features.answered_match  # type: ignore[attr-defined]
    far = engine.search("投诉分几级").features.answered_match  # type: ignore[attr-defined]
    assert near == pytest.approx(1.0, abs=1e-3) and far < near - 0.1
    assert engine.search(asked, mode="lexical").features.answered_match == 0.0  # type: ignore[attr-defined]
    monkeypatch.setattr(engine_module, "QUESTION_LISTS_CHECK_SECONDS", 0.0)
    # The section is renamed in the file only: the row names nothing current and counts for nothing.
    _write(corpus_dir, [(asked, "theft-claim", "盗抢理赔要什么")])
    assert engine.search(asked).features.answered_match == 0.0  # type: ignore[attr-defined]
    (corpus_dir / "section-questions.jsonl").unlink()
    assert engine.search(asked).features.answered_match == 0.0  # type: ignore[attr-defined]


def test_the_nearest_section_question_puts_its_section_in_the_slot_a_filter_allows(
        corpus_dir: Path, corpus_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    title, sections, aliases = SMALL_CORPUS["flood-claim"]
    write_article(corpus_dir, "flood-claim", title, sections, aliases=aliases, category="claims")
    asked = "客户说我要投诉你们 这种投诉要多久给答复"
    _write(corpus_dir, [(asked, "flood-claim", "水淹车理赔材料")])  # a row naming a far section: only its question can bring it
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings.with_overrides(answered_slot=2))
    hits = engine.search(asked, k=5).hits
    assert hits[0].article_id == "complaint-grading" and not hits[0].via_section_question
    assert (hits[1].article_id, hits[1].heading, hits[1].via_section_question) == ("flood-claim", "水淹车理赔材料", True)
    assert sum(h.article_id == "flood-claim" for h in hits) == 1
    filtered = engine.search(asked, k=5, category="coverage").hits  # the filter refuses the section: nothing is added
    assert "flood-claim" not in {h.article_id for h in filtered} and not any(h.via_section_question for h in filtered)
    assert not any(h.via_section_question for h in engine.search(asked, k=5, mode="lexical").hits)
    assert not any(h.via_section_question for h in engine.search(asked, k=1).hits)  # no slot 2 in a list of one
    monkeypatch.setattr(engine_module, "QUESTION_LISTS_CHECK_SECONDS", 0.0)
    _write(corpus_dir, [(asked, "complaint-grading", "投诉分几级")])  # its article already on top: the list stays ranked
    assert not any(h.via_section_question for h in engine.search(asked, k=5).hits)
