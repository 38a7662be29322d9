"""Damaged index files are found, named in one line, never served, and repaired by `kb index`;
builds of one index take turns and clean up after killed builds. Real indexes in tmp folders."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from conftest import SMALL_CORPUS, write_article
from typer.testing import CliRunner

from kb_service.cli import app
from kb_service.index import store as index_store
from kb_service.index.builder import build_index
from kb_service.index.embedding import Embedder, load_embedder
from kb_service.index.integrity import IndexDamagedError
from kb_service.index.store import CURRENT, current_generation, read_manifest
from kb_service.search.engine import SearchEngine
from kb_service.settings import Settings

LEXICON = "terms: [三者险, 第三者责任险, 交强险, 盗抢]\nsynonyms:\n  第三者责任险: [三者险, 三者]\n  盗抢: [丢车, 被偷]\n"
# Every file a segment (with 相似问) and a generation hold.
SEGMENT_FILES = ("segment.json", "passages.jsonl", "articles.jsonl", "lexical.npz", "vectors.faiss", "vectors.faiss.meta.json",
                 "questions.faiss", "questions.faiss.meta.json", "vocabulary.json", "checksums.json")
GENERATION_FILES = ("manifest.json", "segments.json", "tokenizer.json", "checksums.json")
CORRUPTIONS = ("truncate", "empty", "flip", "delete")


def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flip":  # 32 bytes in the middle (all of a shorter file), each inverted
        n = min(32, len(data))
        start = (len(data) - n) // 2
        path.write_bytes(data[:start] + bytes(b ^ 0xFF for b in data[start:start + n]) + data[start + n:])
    else:
        path.unlink()


def _env(settings: Settings) -> dict[str, str]:
    return {"KB_ARTICLES_DIR": str(settings.articles_dir), "KB_LEXICON_PATH": str(settings.lexicon_path),
            "KB_INDEX_DIR": str(settings.index_dir), "KB_EMBEDDING_MODEL": settings.embedding_model,
            "KB_CONFIDENCE_PATH": str(settings.confidence_path), "KB_LOG_DB": str(settings.log_db)}


def _settings(root: Path) -> Settings:
    return Settings(articles_dir=root / "articles", lexicon_path=root / "articles" / "lexicon.yaml", index_dir=root / "indexes",
                    embedding_model="use-multilingual", log_db=root / "usage.sqlite3", confidence_path=root / "confidence.json")


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder("use-multilingual", "onnx-int8", Path("/nonexistent-models"), 1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """Articles (one with 相似问, so segments hold questions.faiss) and a first generation."""
    root = tmp_path_factory.mktemp("integrity")
    folder = root / "articles"
    folder.mkdir()
    for article_id, (title, sections, aliases) in SMALL_CORPUS.items():
        asked = {next(iter(sections)): ["丢了车去哪报案"]} if article_id == "theft-claim" else None
        write_article(folder, article_id, title, sections, aliases=aliases, questions=asked)
    (folder / "lexicon.yaml").write_text(LEXICON, encoding="utf-8")
    build_index(_settings(root), embedder=embedder)
    return root


@pytest.fixture()
def settings(built: Path, tmp_path: Path) -> Settings:
    shutil.copytree(built, tmp_path / "kb")
    return _settings(tmp_path / "kb")


def _add_glass(settings: Settings, embedder: Embedder) -> str:
    """An edit: a second generation whose new segment holds the glass article (with a 相似问)."""
    write_article(settings.articles_dir, "glass", "玻璃单独破碎险", {"玻璃险赔什么": "玻璃单独破碎险只赔挡风玻璃或车窗玻璃单独破碎的损失。"},
                  questions={"玻璃险赔什么": ["前挡被石子崩裂了能赔吗"]})
    report = build_index(settings, embedder=embedder)
    assert report.added == ["glass"] and not report.full
    return report.generation


def _answers(engine: SearchEngine) -> bool:
    return engine.search("三者险赔什么").hits[0].article_id == "third-party"


@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize("where, name", [*(("segment", n) for n in SEGMENT_FILES), *(("generation", n) for n in GENERATION_FILES)])
def test_a_damaged_file_is_named_never_served_and_repaired(settings: Settings, embedder: Embedder, where: str, name: str,
                                                           how: str) -> None:
    engine = SearchEngine.open(settings, embedder=embedder)
    serving = engine._snapshot.generation
    generation = settings.index_dir / _add_glass(settings, embedder)
    manifest = read_manifest(generation)
    folder = settings.index_dir / "segments" / manifest.segments[-1] if where == "segment" else generation
    assert (folder / name).is_file()
    _corrupt(folder / name, how)

    with pytest.raises(IndexDamagedError) as opened:
        SearchEngine.open(settings, embedder=embedder)
    message = str(opened.value)
    assert "\n" not in message and f"{folder.name}/{name}" in message and "kb index" in message

    with pytest.raises(IndexDamagedError, match=name.replace(".", r"\.")):
        engine.reload()
    assert engine._snapshot.generation == serving and _answers(engine)  # the previous generation keeps serving

    result = CliRunner().invoke(app, ["index"], env=_env(settings))
    assert result.exit_code == 0, result.output
    assert "up to date" not in result.output and f"{folder.name}/{name}" in result.output and "rebuilt" in result.output
    repaired = SearchEngine.open(settings, embedder=embedder)
    assert _answers(repaired) and repaired.search("挡风玻璃碎了").hits[0].article_id == "glass"
    assert engine.reload() and _answers(engine)
    again = CliRunner().invoke(app, ["index"], env=_env(settings))
    assert again.exit_code == 0 and "up to date" in again.output


def test_a_damaged_older_segment_found_by_an_incremental_build(settings: Settings, embedder: Embedder) -> None:
    """A segment the new generation carries over (not the newest) is verified by the update too."""
    base = read_manifest(current_generation(settings.index_dir)).segments[0]
    _add_glass(settings, embedder)
    _corrupt(settings.index_dir / "segments" / base / "vectors.faiss", "flip")
    write_article(settings.articles_dir, "theft-claim", "车辆盗抢理赔", {"盗抢理赔材料": "车辆被盗后先报警，理赔需要报警证明和未找回证明。"}, version=2)
    report = build_index(settings, embedder=embedder)
    assert report.full and not report.problems and any(f"{base}/vectors.faiss" in line for line in report.repaired)
    engine = SearchEngine.open(settings, embedder=embedder)
    assert _answers(engine) and base not in read_manifest(current_generation(settings.index_dir)).segments
    assert engine.article("theft-claim").version == 2


def test_two_builds_at_once_both_finish_and_leave_a_consistent_index(settings: Settings, embedder: Embedder) -> None:
    write_article(settings.articles_dir, "glass", "玻璃单独破碎险", {"玻璃险赔什么": "玻璃单独破碎险只赔挡风玻璃或车窗玻璃单独破碎的损失。"})
    errors: list[BaseException] = []
    reports = []

    def run(full: bool) -> None:
        try:
            reports.append(build_index(settings, full=full, embedder=embedder))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(full,)) for full in (False, True, False, True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(reports) == 4
    engine = SearchEngine.open(settings, embedder=embedder)  # verifies every file
    assert _answers(engine) and engine.search("挡风玻璃碎了").hits[0].article_id == "glass"
    assert not list(settings.index_dir.glob(".building-*")) and not list(settings.index_dir.glob(".CURRENT.*"))


def test_a_second_build_waits_for_the_lock_then_gives_up_in_one_line(settings: Settings) -> None:
    with index_store.build_lock(settings.index_dir, 5.0), pytest.raises(index_store.BuildLockTimeout) as waited:
        build_index(settings, lock_timeout=0.2)
    assert "\n" not in str(waited.value) and "another index build" in str(waited.value)
    result = CliRunner().invoke(app, ["index", "--lock-timeout", "0.2"], env=_env(settings))
    assert result.exit_code == 0  # the lock is free again


def test_the_next_build_removes_what_a_killed_build_left(settings: Settings, embedder: Embedder) -> None:
    index_dir = settings.index_dir
    serving = (index_dir / CURRENT).read_text()
    leftovers = [index_dir / ".building-gen-20260101T000000-abcdef", index_dir / "segments" / ".building-seg-20260101T000000-12345678"]
    for folder in leftovers:
        folder.mkdir()
        (folder / "passages.jsonl").write_text("{}\n")
    (index_dir / f".{CURRENT}.1234abcd.tmp").write_text("gen-half-written")
    report = build_index(settings, embedder=embedder)
    assert report.unchanged and (index_dir / CURRENT).read_text() == serving
    assert sorted(report.cleaned) == sorted([".CURRENT.1234abcd.tmp", ".building-gen-20260101T000000-abcdef",
                                             "segments/.building-seg-20260101T000000-12345678"])
    assert not any(p.exists() for p in leftovers) and not list(index_dir.glob(".CURRENT.*.tmp"))
    assert _answers(SearchEngine.open(settings, embedder=embedder))
