"""The section questions embedded (real USE embedder, real index) and read as `answered_match`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kb_service.index.builder import build_index
from kb_service.search import engine as engine_module
from kb_service.search.answered import AnsweredIndex
from kb_service.search.engine import SearchEngine
from kb_service.settings import Settings


def test_nearest_counts_only_rows_whose_section_exists() -> None:
    index = AnsweredIndex(["前挡碎了", "车丢了"], [("glass", "赔什么"), ("theft", "材料")],
                          np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32))
    query = np.array([0.0, 1.0], dtype=np.float32)
    assert index.nearest(query) == pytest.approx(0.8)
    only_glass = index.live_rows("gen-1", lambda: {("glass", "赔什么")})
    assert only_glass.tolist() == [True, False] and index.nearest(query, only_glass) == pytest.approx(0.0)
    assert index.nearest(query, index.live_rows("gen-1", lambda: set())) == pytest.approx(0.0)  # asked once per generation
    assert index.live_rows("gen-2", lambda: set()).tolist() == [False, False]
    assert AnsweredIndex().nearest(query) == 0.0


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
