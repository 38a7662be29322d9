"""Real Whoosh and FAISS indexes on disk, built from tiny real corpora."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import write_article

from kb_service.index import builder as indexing
from kb_service.index.builder import build_index
from kb_service.index.store import CURRENT, current_generation, read_manifest
from kb_service.search.engine import SearchEngine, semantic_search
from kb_service.search.snapshot import LiveWhoosh, SegmentsBM25F
from kb_service.settings import Settings


def _top_articles(engine: SearchEngine, query: str, k: int = 3) -> list[str]:
    return [h.article_id for h in engine.search(query, k=k).hits]


def test_full_build_writes_manifest_and_serves(corpus_settings: Settings) -> None:
    report = build_index(corpus_settings)
    assert report.full and sorted(report.added) == ["complaint-grading", "flood-claim", "theft-claim", "third-party"]
    generation = current_generation(corpus_settings.index_dir)
    manifest = read_manifest(generation)
    assert set(manifest.articles) == set(report.added)
    assert manifest.articles["third-party"].version == 1 and len(manifest.articles["third-party"].hash) == 64
    assert manifest.embedding_model == "use-multilingual" and manifest.built_at
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
    assert not list((corpus_settings.index_dir / "segments").glob(".building-*"))
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


def test_broken_article_keeps_its_last_good_version_in_a_moved_checkout(corpus_settings: Settings,
                                                                          tmp_path: Path) -> None:
    """The index is built in one checkout, then the checkout (articles + index) moves: the manifest
    holds paths relative to the articles folder, so a broken article is still recognised."""
    build_index(corpus_settings)
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(str(corpus_settings.articles_dir), moved / "articles")
    shutil.move(str(corpus_settings.index_dir), moved / "indexes")
    settings = corpus_settings.with_overrides(articles_dir=moved / "articles", index_dir=moved / "indexes",
                                              lexicon_path=moved / "articles" / "lexicon.yaml")
    assert read_manifest(current_generation(settings.index_dir)).articles["complaint-grading"].path == "complaint-grading.md"
    path = settings.articles_dir / "complaint-grading.md"
    path.write_text(path.read_text(encoding="utf-8").replace("category: coverage", "category: nonsense"), encoding="utf-8")
    report = build_index(settings)
    assert report.kept_last_good == ["complaint-grading"] and report.removed == []
    engine = SearchEngine.open(settings)
    assert _top_articles(engine, "二级投诉多久解决")[0] == "complaint-grading"
    assert engine.article("complaint-grading").path == settings.articles_dir / "complaint-grading.md"


def _segment_dirs(settings: Settings) -> set[str]:
    return {p.name for p in (settings.index_dir / "segments").iterdir()}


def test_an_edit_writes_one_small_segment_and_reload_reuses_the_rest(corpus_settings: Settings) -> None:
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    base = engine._snapshot.segments[0]
    write_article(corpus_settings.articles_dir, "theft-claim", "车辆盗抢理赔",
                  {"盗抢理赔材料": "车辆被盗后先报警，理赔需要报警证明和行驶证原件，满60天未找回再赔付。"}, version=2)
    report = build_index(corpus_settings)
    manifest = read_manifest(current_generation(corpus_settings.index_dir))
    assert len(manifest.segments) == 2 and manifest.segments[0] == base.segment_id
    assert manifest.articles["theft-claim"].segment == manifest.segments[1]
    assert manifest.articles["third-party"].segment == base.segment_id
    assert report.passages == manifest.passages == sum(manifest.segment_rows.values()) - 1  # the old theft-claim row is dead
    assert engine.reload()
    snapshot = engine._snapshot
    assert snapshot.segments[0] is base  # loaded once, shared by both snapshots
    assert snapshot.live[0].sum() == len(base.passages) - 1 and snapshot.live[1].tolist() == [True]
    hits = engine.search("丢车要什么材料").hits
    assert hits[0].article_id == "theft-claim" and hits[0].version == 2
    assert [h.article_id for h in hits].count("theft-claim") == 1


def _edit_theft_claim(settings: Settings, version: int):  # type: ignore[no-untyped-def]
    write_article(settings.articles_dir, "theft-claim", "车辆盗抢理赔",
                  {"盗抢理赔材料": f"第{version}版：车辆被盗后先报警，理赔需要报警证明和未找回证明。"}, version=version)
    return build_index(settings)


def test_too_many_outdated_rows_make_a_full_merge_due(corpus_settings: Settings) -> None:
    settings = corpus_settings.with_overrides(max_segments=100, max_dead_fraction=0.25)
    build_index(settings)  # 5 passages
    assert not _edit_theft_claim(settings, 2).full_merge_due  # 1 outdated row of 6
    assert _edit_theft_claim(settings, 3).full_merge_due  # 2 of 7
    merged = build_index(settings, full=True)
    manifest = read_manifest(current_generation(settings.index_dir))
    assert merged.embedded == 0 and sum(manifest.segment_rows.values()) == manifest.passages == 5  # vectors from the cache


def test_small_segments_are_folded_when_they_pile_up(corpus_settings: Settings) -> None:
    settings = corpus_settings.with_overrides(max_segments=3, max_dead_fraction=1.0)
    build_index(settings)
    engine = SearchEngine.open(settings)
    write_article(settings.articles_dir, "glass", "玻璃单独破碎险", {"玻璃": "玻璃单独破碎险只赔玻璃单独破碎的损失，车身其他损失不赔。"})
    build_index(settings)
    reports = [_edit_theft_claim(settings, version) for version in (2, 3)]
    assert [r.merged for r in reports] == [False, True]
    report = reports[-1]
    assert not report.full and report.embedded == 1  # glass moved over with its cached vector
    manifest = read_manifest(current_generation(settings.index_dir))
    base = manifest.segments[0]
    assert len(manifest.segments) == 2 and manifest.articles["third-party"].segment == base
    assert manifest.articles["glass"].segment == manifest.articles["theft-claim"].segment == manifest.segments[1]
    assert manifest.segment_rows[manifest.segments[1]] == 2
    assert engine.reload()
    assert engine.search("盗抢理赔材料").hits[0].version == 3
    assert _top_articles(engine, "挡风玻璃碎了")[0] == "glass"
    assert len(engine.passages_of("glass")) == 1
    # Segments no kept generation refers to are deleted.
    referenced = set()
    for generation in settings.index_dir.glob("gen-*"):
        referenced |= set(json.loads((generation / "manifest.json").read_text(encoding="utf-8"))["segments"])
    assert _segment_dirs(settings) == referenced


def test_a_merge_keeps_the_last_good_version_of_a_broken_article(corpus_settings: Settings) -> None:
    build_index(corpus_settings)
    path = corpus_settings.articles_dir / "complaint-grading.md"
    path.write_text(path.read_text(encoding="utf-8").replace("version: 1", "version: zwei"), encoding="utf-8")
    write_article(corpus_settings.articles_dir, "glass", "玻璃单独破碎险", {"玻璃": "玻璃单独破碎险只赔玻璃单独破碎的损失，车身其他损失不赔。"})
    build_index(corpus_settings)
    settings = corpus_settings.with_overrides(max_segments=1)  # the next update folds, then a full merge
    write_article(settings.articles_dir, "theft-claim", "车辆盗抢理赔", {"盗抢": "车辆被盗后先报警，满60天未找回再赔付，需要报警证明。"}, version=2)
    assert build_index(settings).merged
    report = build_index(settings, full=True)
    assert report.full and report.kept_last_good == ["complaint-grading"]
    engine = SearchEngine.open(settings)
    assert _top_articles(engine, "二级投诉多久解决")[0] == "complaint-grading"
    assert _top_articles(engine, "玻璃碎了")[0] == "glass"


def test_whoosh_backend_serves_and_updates(corpus_settings: Settings) -> None:
    settings = corpus_settings.with_overrides(lexical_backend="whoosh")
    build_index(settings)
    assert (current_generation(settings.index_dir) / "lexical").is_dir()
    engine = SearchEngine.open(settings)
    assert isinstance(engine._snapshot.lexical, LiveWhoosh)
    assert [h.article_id for h in engine.search("三者险赔什么", mode="lexical").hits][0] == "third-party"
    (settings.articles_dir / "theft-claim.md").unlink()
    build_index(settings)
    assert engine.reload()
    assert "theft-claim" not in [h.article_id for h in engine.search("车被偷了", mode="lexical", k=5).hits]
    sparse = SearchEngine.open(corpus_settings.with_overrides(index_dir=settings.index_dir))
    assert isinstance(sparse._snapshot.lexical, SegmentsBM25F)  # the same index serves the default backend too


def test_hnsw_segments_skip_outdated_rows(corpus_settings: Settings) -> None:
    settings = corpus_settings.with_overrides(vector_index="hnsw")
    build_index(settings)
    engine = SearchEngine.open(settings)
    _edit_theft_claim(settings, 2)
    assert engine.reload()
    hits = engine.search("车被偷了要什么材料", mode="semantic", k=5).hits
    assert [h.article_id for h in hits].count("theft-claim") == 1
    assert next(h for h in hits if h.article_id == "theft-claim").version == 2


def test_snapshot_vector_mean_counts_only_live_rows(corpus_settings: Settings) -> None:
    import numpy as np

    build_index(corpus_settings)
    _edit_theft_claim(corpus_settings, 2)  # the first segment's theft-claim row is now outdated
    engine = SearchEngine.open(corpus_settings)
    snap = engine._snapshot
    live_vectors = np.concatenate([s.vectors.vectors_of(np.flatnonzero(live)) for s, live in zip(snap.segments, snap.live, strict=True)])
    assert len(live_vectors) == len(snap.passages)
    assert np.allclose(snap.vector_mean, live_vectors.mean(axis=0), atol=1e-5)
    first, live = snap.segments[0], snap.live[0]
    assert not live.all()  # both ways of summing a segment with outdated rows agree
    assert np.allclose(first.live_vector_sum(live), first.live_vector_sum(live, max_subtracted=0), atol=1e-5)


def test_the_first_passage_embeds_the_article_aliases_and_a_new_alias_count_rebuilds(corpus_settings: Settings) -> None:
    from kb_service.models import Passage

    def passage(ordinal: int) -> Passage:
        return Passage(f"glass#{ordinal}", "glass", "玻璃险说明", "保什么", "只赔玻璃单独破碎。", "coverage", (),
                       ("玻璃险", "挡风玻璃", "玻璃碎了"), 1, 3)

    assert indexing.embedding_text(passage(0), aliases=2) == "玻璃险说明（玻璃险、挡风玻璃）｜保什么\n只赔玻璃单独破碎。"
    assert indexing.embedding_text(passage(1), aliases=2) == "玻璃险说明｜保什么\n只赔玻璃单独破碎。"
    assert indexing.embedding_text(passage(0), aliases=0) == "玻璃险说明｜保什么\n只赔玻璃单独破碎。"
    first = build_index(corpus_settings)
    assert not build_index(corpus_settings).full  # nothing changed: incremental no-op
    again = build_index(corpus_settings.with_overrides(embedded_aliases=2))
    assert again.full and again.generation != first.generation  # vectors of every article change


def test_a_question_finds_its_passage_and_leaves_with_an_edit(corpus_settings: Settings) -> None:
    import numpy as np
    from conftest import SMALL_CORPUS

    folder = corpus_settings.articles_dir
    asked = {"third-party": ["撞了别人的车谁来赔", "把行人撞伤了三者险管不管"], "theft-claim": ["车停楼下一晚上没了咋办"],
             "complaint-grading": ["客户投诉了多久要处理完"]}
    for article_id, questions in asked.items():  # the questions' mean is what the shift measures against
        title, sections, aliases = SMALL_CORPUS[article_id]
        write_article(folder, article_id, title, sections, aliases=aliases, questions={next(iter(sections)): questions})
    title, sections, aliases = "自然灾害理赔", {"水淹车理赔材料": "暴雨水淹等自然灾害理赔一般需要灾害证明和损失清单，并提供灾前灾后照片。"}, ["水淹车"]
    write_article(folder, "flood-claim", title, sections, aliases=aliases, questions={"水淹车理赔材料": ["独角鲸游进车库了咋办"]})
    build_index(corpus_settings)
    engine = SearchEngine.open(corpus_settings)
    snap = engine._snapshot
    assert snap.segments[0].questions is not None and snap.segments[0].questions.size == 5
    response = engine.search("独角鲸游进车库了咋办", mode="semantic")
    assert response.hits[0].article_id == "flood-claim"
    assert response.features.question_match == pytest.approx(1.0, abs=0.01)  # type: ignore[attr-defined]
    # The question's cosine is moved onto the passages' scale before it ranks its passage.
    vector = np.asarray(engine.embedder.encode(["独角鲸游进车库了咋办"])[0])
    shift = corpus_settings.question_offset + float(vector @ snap.question_mean - vector @ snap.vector_mean)
    matches = semantic_search(snap, vector, 5, question_offset=corpus_settings.question_offset)
    assert matches.ranked[0][0] == "flood-claim#0" and matches.ranked[0][1] == pytest.approx(1.0 - shift, abs=0.01)
    assert 0.1 < shift < 0.9

    write_article(folder, "flood-claim", title, sections, aliases=aliases, version=2)  # the question is removed
    report = build_index(corpus_settings)
    assert report.changed == ["flood-claim"] and report.embedded == 0  # the passage's vector came from the cache
    assert engine.reload()
    snap = engine._snapshot
    live_questions = [q for p in snap.passages.values() for q in p.questions]
    assert len(live_questions) == 4 and "独角鲸游进车库了咋办" not in live_questions
    assert np.allclose(snap.question_mean, engine.embedder.encode(live_questions).mean(axis=0), atol=1e-3)
    first, live = snap.segments[0], snap.live[0]
    assert not live.all()  # both ways of summing a segment's live questions agree
    subtracted, count = first.live_question_sum(live)
    reread, recount = first.live_question_sum(live, max_subtracted=0)
    assert count == recount == 4 and np.allclose(subtracted, reread, atol=1e-3)
    assert engine.search("独角鲸游进车库了咋办", mode="semantic").features.question_match < 0.9  # type: ignore[attr-defined]


def test_questions_can_be_left_out_of_the_index(corpus_settings: Settings) -> None:
    folder = corpus_settings.articles_dir
    write_article(folder, "glass", "玻璃险", {"玻璃险赔什么": "玻璃单独破碎险只赔挡风玻璃或车窗玻璃单独破碎的损失。"},
                  questions={"玻璃险赔什么": ["前挡被石子崩裂了能赔吗"]})
    first = build_index(corpus_settings)
    settings = corpus_settings.with_overrides(embedded_questions=False)
    again = build_index(settings)
    assert again.full and again.generation != first.generation
    engine = SearchEngine.open(settings)
    assert all(s.questions is None for s in engine._snapshot.segments) and engine._snapshot.question_mean is None
    assert engine.search("前挡被石子崩裂了能赔吗").features.question_match == 0.0  # type: ignore[attr-defined]


def _big_article(folder, sections: int) -> None:
    """One article of `sections` distinct `## ` sections, as a large manual would be written: a link,
    a script block and 相似问 on some sections, the rest without (only a note)."""
    texts, questions = {}, {}
    for n in range(sections):
        heading = f"第{n}节 三者险赔付要点"
        text = (f"第{n}节说明第三者责任险的赔付范围，事故造成第三方人身伤亡或财产损失时按保单约定赔付。"
                f"客户报案后，客服应先核实身份，再说明理赔材料和处理时限。")
        if n % 10 == 0:
            text += f"\n\n交强险详见[交强险](third-party.md)。\n\n```script\n您好，第{n}节的赔付以条款为准。\n```"
        if n % 3 == 0:
            questions[heading] = [f"三者险第{n}条赔啥", f"撞了别人第{n}次谁赔"]
        texts[heading] = text
    write_article(folder, "big-manual", "超长理赔手册", texts, questions=questions)


def _counted_calls(settings: Settings, tokenizer) -> dict[str, int]:
    """Function calls (Python and C) of each stage before embedding: check (parse, validate,
    chunk) and lexical (analysis, term weights, vocabulary). A deterministic measure of work."""
    import sys

    from kb_service.content.validation import check_knowledge_base, sections_without_questions
    from kb_service.index.lexical.bm25f import (
        BM25FParams,
        LexicalSegment,
        analyze_passage,
        average_lengths,
        word_document_counts,
    )

    calls = 0

    def count(frame, event, arg) -> None:  # noqa: ANN001
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    counts = {}
    sys.setprofile(count)
    try:
        check = check_knowledge_base(settings.articles_dir, settings)
        for article in check.articles:
            sections_without_questions(article)
        counts["check"], calls = calls, 0
        analyzed = [analyze_passage(p, tokenizer) for p in check.passages]
        LexicalSegment.build(analyzed, average_lengths(analyzed), BM25FParams())
        word_document_counts(analyzed)
        texts = [indexing.embedding_text(p) for p in check.passages]
        counts["lexical"] = calls
    finally:
        sys.setprofile(None)
    assert check.ok and len(texts) == len(check.passages), check.problems[:3]
    return counts


def test_indexing_work_grows_linearly_with_the_sections_of_one_article(tmp_path, corpus_dir) -> None:
    """A 2,000-section article once took minutes to become searchable: per-section work that
    re-scans the whole article (heading lookups, line searches, question matching) would make
    4x the sections cost up to 16x. Counted in calls, not seconds, so the test is deterministic.
    (A scan done inside one C call, e.g. str.find over the whole article, is not seen.)"""
    from kb_service.query.tokenizer import DomainTokenizer

    tokenizer = DomainTokenizer(())
    list(tokenizer.spans("三者险赔付"))  # load jieba's dictionary outside the count
    counts = {}
    for sections in (100, 400):
        folder = tmp_path / f"kb-{sections}"
        folder.mkdir()
        (folder / "third-party.md").write_text((corpus_dir / "third-party.md").read_text(encoding="utf-8"),
                                               encoding="utf-8")
        _big_article(folder, sections)
        settings = Settings(articles_dir=folder, lexicon_path=folder / "lexicon.yaml", index_dir=tmp_path / "idx")
        counts[sections] = _counted_calls(settings, tokenizer)
    for stage in ("check", "lexical"):
        ratio = counts[400][stage] / counts[100][stage]
        assert 3.0 < ratio < 5.0, (stage, counts)  # linear: ~4x for 4x the sections (quadratic: ~10x)
