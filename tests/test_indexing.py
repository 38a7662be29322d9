"""Real Whoosh and FAISS indexes on disk, built from tiny real corpora."""

from __future__ import annotations

import json

import pytest
from conftest import write_article

from kb_service import indexing
from kb_service.engine import SearchEngine
from kb_service.indexing import CURRENT, build_index, current_generation
from kb_service.settings import Settings


def _top_articles(engine: SearchEngine, query: str, k: int = 3) -> list[str]:
    return [h.article_id for h in engine.search(query, k=k).hits]


def test_full_build_writes_manifest_and_serves(corpus_settings: Settings) -> None:
    report = build_index(corpus_settings)
    assert report.full and sorted(report.added) == ["complaint-grading", "flood-claim", "theft-claim", "third-party"]
    generation = current_generation(corpus_settings.index_dir)
    manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["articles"]) == set(report.added)
    assert manifest["articles"]["third-party"]["version"] == 1 and len(manifest["articles"]["third-party"]["hash"]) == 64
    assert manifest["embedding_model"] == "use-multilingual" and manifest["built_at"]
    engine = SearchEngine.open(corpus_settings)
    assert _top_articles(engine, "三者险赔什么")[0] == "third-party"
    assert _top_articles(engine, "车被偷了要什么材料")[0] == "theft-claim"


def test_second_build_without_changes_is_a_no_op(corpus_settings: Settings) -> None:
    first = build_index(corpus_settings)
    second = build_index(corpus_settings)
    assert second.unchanged and second.generation == first.generation


@pytest.mark.parametrize("query", ['三者险 AND "交强险"', "三者险*", "title:三者险", "(三者险) OR [交强险]", "三者险 NOT", ':*"()[]{}^~'])
def test_query_syntax_characters_are_literal(corpus_settings: Settings, query: str) -> None:
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    response = engine.search(query)  # must not raise
    if "三者险" in query:
        assert response.hits[0].article_id == "third-party"


def test_edit_is_searchable_and_delete_is_gone_incrementally(corpus_settings: Settings) -> None:
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    folder = corpus_settings.articles_dir
    write_article(folder, "glass", "玻璃单独破碎险", {"玻璃险赔什么": "玻璃单独破碎险只赔挡风玻璃或车窗玻璃单独破碎的损失，车身其他损失不在此险种。"}, version=1)
    (folder / "flood-claim.md").unlink()
    report = build_index(corpus_settings)
    assert not report.full and report.added == ["glass"] and report.removed == ["flood-claim"] and report.embedded == 1
    assert engine.reload()
    assert _top_articles(engine, "挡风玻璃碎了")[0] == "glass"
    assert "flood-claim" not in _top_articles(engine, "水淹车理赔材料", k=5)
    assert engine.article("flood-claim") is None


def test_changed_article_replaces_its_passages(corpus_settings: Settings) -> None:
    build_index(corpus_settings)
    folder = corpus_settings.articles_dir
    write_article(folder, "theft-claim", "车辆盗抢理赔", {"盗抢理赔材料": "车辆被盗后先报警，理赔需要报警证明、未找回证明和行驶证原件，满60天未找回再赔付。"}, version=2)
    report = build_index(corpus_settings)
    assert report.changed == ["theft-claim"]
    engine = SearchEngine.open(corpus_settings)
    hits = engine.search("丢车要什么材料").hits
    assert hits[0].article_id == "theft-claim" and hits[0].version == 2 and "行驶证原件" in hits[0].text
    assert len([p for p in engine.passages_of("theft-claim")]) == 1


def test_crash_mid_build_leaves_previous_index_serving(corpus_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build_index(corpus_settings)
    before = (corpus_settings.index_dir / CURRENT).read_text()
    engine = SearchEngine.open(corpus_settings)
    write_article(corpus_settings.articles_dir, "glass", "玻璃单独破碎险", {"玻璃": "玻璃单独破碎险只赔玻璃单独破碎的损失，车身其他损失不赔。"})

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut while writing vectors")

    monkeypatch.setattr(indexing.FaissVectorIndex, "save", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        build_index(corpus_settings)
    assert (corpus_settings.index_dir / CURRENT).read_text() == before
    assert not list(corpus_settings.index_dir.glob(".building-*"))
    assert _top_articles(engine, "三者险赔什么")[0] == "third-party"
    assert _top_articles(SearchEngine.open(corpus_settings), "三者险赔什么")[0] == "third-party"
    monkeypatch.undo()
    assert build_index(corpus_settings).added == ["glass"]  # the next build picks the change up


def test_broken_article_keeps_its_last_good_version(corpus_settings: Settings) -> None:
    build_index(corpus_settings)
    path = corpus_settings.articles_dir / "complaint-grading.md"
    path.write_text(path.read_text(encoding="utf-8").replace("category: coverage", "category: nonsense"), encoding="utf-8")
    write_article(corpus_settings.articles_dir, "glass", "玻璃单独破碎险", {"玻璃": "玻璃单独破碎险只赔玻璃单独破碎的损失，车身其他损失不赔。"})
    report = build_index(corpus_settings)
    assert report.kept_last_good == ["complaint-grading"] and report.added == ["glass"]
    assert any("unknown category 'nonsense'" in p.message for p in report.problems)
    engine = SearchEngine.open(corpus_settings)
    assert _top_articles(engine, "二级投诉多久解决")[0] == "complaint-grading"
    assert _top_articles(engine, "玻璃碎了")[0] == "glass"
