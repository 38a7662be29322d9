"""Publishing generations to a shared folder and fetching them into replicas' own index folders.

Real indexes built from the small corpus, real folders; the follower runs against a real engine.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import SMALL_CORPUS, write_article

from kb_service.index.builder import build_index
from kb_service.index.embedding import Embedder, load_embedder
from kb_service.index.following import GenerationFollower
from kb_service.index.integrity import IndexDamagedError, verify_folder
from kb_service.index.publishing import (
    LATEST,
    DirectoryGenerationStore,
    GenerationStoreError,
    PublishReport,
    open_generation_store,
)
from kb_service.index.segments import SEGMENTS_DIR
from kb_service.index.store import CURRENT, current_generation, read_manifest, verify_generation
from kb_service.search.engine import SearchEngine
from kb_service.settings import Settings

LEXICON = "terms: [三者险, 第三者责任险, 交强险, 盗抢]\nsynonyms:\n  第三者责任险: [三者险, 三者]\n"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder("use-multilingual", "onnx-int8", Path("/nonexistent-models"), 1)


def _settings(root: Path, index_dir: Path | None = None) -> Settings:
    return Settings(articles_dir=root / "articles", lexicon_path=root / "articles" / "lexicon.yaml",
                    index_dir=index_dir or root / "indexes", embedding_model="use-multilingual",
                    log_db=root / "usage.sqlite3", confidence_path=root / "confidence.json", snapshot_grace_seconds=0.1)


def _write_corpus(root: Path) -> None:
    folder = root / "articles"
    folder.mkdir(parents=True)
    for article_id, (title, sections, aliases) in SMALL_CORPUS.items():
        write_article(folder, article_id, title, sections, aliases=aliases)
    (folder / "lexicon.yaml").write_text(LEXICON, encoding="utf-8")


def _edit(root: Path, n: int) -> None:
    write_article(root / "articles", "glass", f"玻璃单独破碎险{n}", {"玻璃破碎怎么赔": f"挡风玻璃单独破碎可以单独理赔，不影响车损险的其他保障，这是第{n}版说明。"},
                  aliases=["玻璃险"])


@pytest.fixture()
def indexer(tmp_path: Path, embedder: Embedder) -> Settings:
    """The indexer's checkout with one built generation."""
    _write_corpus(tmp_path / "indexer")
    settings = _settings(tmp_path / "indexer")
    build_index(settings, embedder=embedder)
    return settings


def _store(tmp_path: Path) -> DirectoryGenerationStore:
    (tmp_path / "store").mkdir()
    return DirectoryGenerationStore(tmp_path / "store")


def _publish_edits(store: DirectoryGenerationStore, indexer: Settings, embedder: Embedder, rounds: int,
                   pause: float = 0.0) -> list[tuple[str, PublishReport]]:
    """Publish the indexer's generation, then `rounds - 1` more, each after an edit and a rebuild."""
    published = []
    for n in range(rounds):
        if n:
            _edit(indexer.articles_dir.parent, n)
            build_index(indexer, embedder=embedder)
        name = _current(indexer.index_dir)
        published.append((name, store.publish(indexer.index_dir, name)))
        time.sleep(pause)
    return published


def _current(index_dir: Path) -> str:
    generation = current_generation(index_dir)
    assert generation is not None
    return generation.name


def test_publish_then_fetch_serves_the_same_generation_from_another_folder(tmp_path: Path, indexer: Settings,
                                                                           embedder: Embedder) -> None:
    store = _store(tmp_path)
    assert store.latest() is None
    name = _current(indexer.index_dir)
    report = store.publish(indexer.index_dir, name)
    manifest = read_manifest(indexer.index_dir / name)
    assert store.latest() == name and store.generations() == [name]
    assert sorted(report.segments_copied) == sorted(manifest.segments) and report.segments_present == []
    published = json.loads((store.root / name / "manifest.json").read_text(encoding="utf-8"))
    assert all(not Path(e["path"]).is_absolute() and "/" not in e["path"] for e in published["articles"].values())
    assert str(tmp_path) not in (store.root / name / "manifest.json").read_text(encoding="utf-8")

    replica = tmp_path / "replica" / "indexes"
    fetched = store.fetch(name, replica)
    assert fetched.switched and sorted(fetched.segments_copied) == sorted(manifest.segments)
    assert _current(replica) == name
    engine = SearchEngine.open(_settings(tmp_path / "indexer", replica), embedder=embedder)
    try:
        assert engine.info()["index_version"] == name
        assert engine.search("三者险赔什么").hits[0].article_id == "third-party"
    finally:
        engine.close()
    assert not store.fetch(name, replica).switched  # already serving: nothing copied, nothing switched


def test_only_segments_the_store_lacks_are_copied(tmp_path: Path, indexer: Settings, embedder: Embedder) -> None:
    store = _store(tmp_path)
    first = _current(indexer.index_dir)
    store.publish(indexer.index_dir, first)
    replica = tmp_path / "replica"
    store.fetch(first, replica)
    old_segments = set(read_manifest(indexer.index_dir / first).segments)

    _edit(indexer.articles_dir.parent, 1)
    build_index(indexer, embedder=embedder)  # incremental: one new segment beside the old ones
    second = _current(indexer.index_dir)
    new_segments = set(read_manifest(indexer.index_dir / second).segments) - old_segments
    assert second != first and len(new_segments) == 1
    report = store.publish(indexer.index_dir, second)
    assert set(report.segments_copied) == new_segments
    assert set(report.segments_present) == set(read_manifest(indexer.index_dir / second).segments) - new_segments
    fetched = store.fetch(second, replica)
    assert set(fetched.segments_copied) == new_segments and _current(replica) == second
    # Publishing again is harmless: nothing copied, LATEST unchanged.
    again = store.publish(indexer.index_dir, second)
    assert again.segments_copied == [] and store.latest() == second


def test_a_reader_never_sees_a_partial_generation(tmp_path: Path, indexer: Settings, embedder: Embedder) -> None:
    """While generations are published one after another, whatever LATEST names (and every
    listed generation and its segments) is complete: copies become visible only by rename."""
    store = _store(tmp_path)
    seen: list[str] = []
    problems: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            latest = store.latest()
            for name in {latest, *store.generations()} - {None}:
                try:
                    manifest = verify_generation(store.root / name)  # type: ignore[operator]
                    for segment in manifest.segments:
                        verify_folder(store.root / SEGMENTS_DIR / segment, segment,
                                      manifest.segment_checksums[segment])
                except (IndexDamagedError, OSError) as exc:
                    problems.append(str(exc))
            if latest and latest not in seen:
                seen.append(latest)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        published = [name for name, _ in _publish_edits(store, indexer, embedder, rounds=3, pause=0.05)]
    finally:
        done.set()
        thread.join()
    assert problems == []
    assert seen and seen[-1] == published[-1] and set(seen) <= set(published)
    assert not list(store.root.glob(".incoming-*")) and not list((store.root / SEGMENTS_DIR).glob(".incoming-*"))


def test_a_corrupt_fetch_is_refused_and_the_old_generation_keeps_serving(tmp_path: Path, indexer: Settings,
                                                                         embedder: Embedder) -> None:
    store = _store(tmp_path)
    first = _current(indexer.index_dir)
    store.publish(indexer.index_dir, first)
    replica = tmp_path / "replica"
    store.fetch(first, replica)
    engine = SearchEngine.open(_settings(tmp_path / "indexer", replica), embedder=embedder)
    follower = GenerationFollower(store, replica, poll_seconds=60, on_switch=engine.reload)
    try:
        _edit(indexer.articles_dir.parent, 1)
        build_index(indexer, embedder=embedder)
        second = _current(indexer.index_dir)
        report = store.publish(indexer.index_dir, second)
        damaged = store.root / SEGMENTS_DIR / report.segments_copied[0] / "passages.jsonl"
        data = damaged.read_bytes()
        damaged.write_bytes(data[:10] + bytes(b ^ 0xFF for b in data[10:40]) + data[40:])

        with pytest.raises(IndexDamagedError, match="checksum mismatch"):
            follower.sync()
        assert (replica / CURRENT).read_text(encoding="utf-8").strip() == first
        assert engine.info()["index_version"] == first
        assert engine.search("三者险赔什么").hits  # still answering from the old generation
        assert not list(replica.glob(".building-*")) and not list((replica / SEGMENTS_DIR).glob(".building-*"))
        assert not (replica / SEGMENTS_DIR / report.segments_copied[0]).exists()

        damaged.write_bytes(data)  # repaired in the store: the next sync switches
        assert follower.sync() and engine.info()["index_version"] == second
        assert follower.info() == {"published_generation": second, "generation_fetch_failed": False}
    finally:
        engine.close()


def test_a_damaged_published_manifest_is_refused(tmp_path: Path, indexer: Settings) -> None:
    store = _store(tmp_path)
    name = _current(indexer.index_dir)
    store.publish(indexer.index_dir, name)
    manifest = store.root / name / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b"third-party", b"third-partx"))
    replica = tmp_path / "replica"
    with pytest.raises(IndexDamagedError):
        store.fetch(name, replica)
    assert not (replica / CURRENT).exists() and not (replica / name).exists()


def test_publish_refuses_a_damaged_local_generation(tmp_path: Path, indexer: Settings) -> None:
    store = _store(tmp_path)
    name = _current(indexer.index_dir)
    (indexer.index_dir / name / "tokenizer.json").write_text("{}", encoding="utf-8")
    with pytest.raises(IndexDamagedError):
        store.publish(indexer.index_dir, name)
    assert store.latest() is None and store.generations() == []


def test_the_follower_polls_without_notifications(tmp_path: Path, indexer: Settings, embedder: Embedder) -> None:
    """No PostgreSQL: a replica still finds a new generation within its poll interval."""
    store = _store(tmp_path)
    first = _current(indexer.index_dir)
    store.publish(indexer.index_dir, first)
    replica = tmp_path / "replica"
    store.fetch(first, replica)
    engine = SearchEngine.open(_settings(tmp_path / "indexer", replica), embedder=embedder)
    follower = GenerationFollower(store, replica, poll_seconds=0.2, on_switch=engine.reload)
    follower.start()
    try:
        _edit(indexer.articles_dir.parent, 1)
        build_index(indexer, embedder=embedder)
        second = _current(indexer.index_dir)
        store.publish(indexer.index_dir, second)
        deadline = time.monotonic() + 10
        while engine.info()["index_version"] != second and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.info()["index_version"] == second
        assert follower.latest == second
    finally:
        follower.stop()
        engine.close()
    assert not follower.is_alive()


def test_store_locations(tmp_path: Path) -> None:
    assert isinstance(open_generation_store(tmp_path), DirectoryGenerationStore)
    assert open_generation_store(f"file://{tmp_path}").root == tmp_path  # type: ignore[attr-defined]
    with pytest.raises(GenerationStoreError, match="object store"):
        open_generation_store("s3://bucket/kb")
    missing = DirectoryGenerationStore(tmp_path / "absent")
    with pytest.raises(GenerationStoreError, match="does not exist"):
        missing.publish(tmp_path, "gen-x")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / LATEST).write_text("../etc", encoding="utf-8")
    assert DirectoryGenerationStore(tmp_path / "store").latest() is None
    shutil.rmtree(tmp_path / "store")


def test_kb_index_publishes_when_a_store_is_set(tmp_path: Path) -> None:
    """KB_GENERATION_STORE: `kb index` builds, then publishes what it built (SQLite log: no announcement)."""
    from typer.testing import CliRunner

    from kb_service.cli import app

    _write_corpus(tmp_path)
    store = _store(tmp_path)
    settings = _settings(tmp_path)
    env = {"KB_ARTICLES_DIR": str(settings.articles_dir), "KB_LEXICON_PATH": str(settings.lexicon_path),
           "KB_INDEX_DIR": str(settings.index_dir), "KB_EMBEDDING_MODEL": settings.embedding_model,
           "KB_LOG_DB": str(settings.log_db), "KB_GENERATION_STORE": str(store.root)}
    result = CliRunner().invoke(app, ["index"], env=env)
    assert result.exit_code == 0, result.output
    built = _current(settings.index_dir)
    assert f"published {built} to {store.root}" in result.output and store.latest() == built
    shutil.rmtree(store.root)
    result = CliRunner().invoke(app, ["index"], env=env)  # up to date, but the store is gone: said, exit 1
    assert result.exit_code == 1 and "does not exist" in result.output


def test_the_store_keeps_recent_generations_and_drops_old_ones_with_their_segments(
        tmp_path: Path, indexer: Settings, embedder: Embedder) -> None:
    store = _store(tmp_path)
    rounds = _publish_edits(store, indexer, embedder, rounds=3)
    assert all(report.pruned == [] for _, report in rounds)  # everything arrived just now: within the grace period
    published = [name for name, _ in rounds]
    assert store.generations() == published
    every_segment = {p.name for p in (store.root / SEGMENTS_DIR).glob("seg-*")}

    removed = store.prune(keep=1, grace_seconds=0)
    latest = published[-1]
    assert store.generations() == [latest] and store.latest() == latest
    needed = set(read_manifest(store.root / latest).segments)
    assert {p.name for p in (store.root / SEGMENTS_DIR).glob("seg-*")} == needed
    assert set(removed) == set(published[:-1]) | {f"{SEGMENTS_DIR}/{s}" for s in every_segment - needed}
    assert store.fetch(latest, tmp_path / "replica").switched  # what stays is whole
    assert _current(tmp_path / "replica") == latest

    # LATEST is never removed, even when asked to keep nothing.
    assert store.prune(keep=0, grace_seconds=0) == [] and store.generations() == [latest]
