"""The usage simulator, and the reports checked against the truth it planted."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import sqlite3
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kb_service.reports import build_report
from kb_service.reports.data import REPORT_TZ
from kb_service.usage_log.grouping import grouping_form

ROOT = Path(__file__).resolve().parents[2]
ARTICLES = ROOT / "articles"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("simulate_usage", ROOT / "scripts" / "simulate_usage.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulate_usage"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


sim = _load_script()


def _dump(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    try:
        return {
            "queries": conn.execute("SELECT * FROM queries ORDER BY query_id").fetchall(),
            "impressions": conn.execute("SELECT * FROM impressions ORDER BY query_id, rank").fetchall(),
            "events": conn.execute("SELECT query_id, ts, type, article_id FROM events ORDER BY id").fetchall(),
            "feedback": conn.execute(
                "SELECT query_id, ts, article_id, resolved, comment FROM feedback ORDER BY id").fetchall(),
        }
    finally:
        conn.close()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """20k queries over 4 weeks: enough for the planted structure to show, fast enough for CI."""
    folder = tmp_path_factory.mktemp("sim")
    db, truth = folder / "usage.sqlite3", folder / "truth.json"
    sim.simulate(db, sim.SimConfig(queries=20_000, agents=30, days=28, seed=11), ARTICLES, truth_out=truth)
    return db, json.loads(truth.read_text(encoding="utf-8"))


def test_same_seed_same_log_other_seed_other_log(tmp_path: Path) -> None:
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        db = tmp_path / f"{name}.sqlite3"
        sim.simulate(db, sim.SimConfig(queries=1500, seed=seed), ARTICLES)
        runs.append(_dump(db))
    assert runs[0] == runs[1]
    assert runs[0]["queries"] != runs[2]["queries"]


def test_fast_writer_matches_the_real_store(tmp_path: Path) -> None:
    articles = sim.load_sim_articles(ARTICLES)
    cfg = sim.SimConfig(queries=600, seed=5)
    fast, store = tmp_path / "fast.sqlite3", tmp_path / "store.sqlite3"
    sim.write_fast(fast, sim.generate(articles, cfg)[1])
    sim.write_via_store(store, sim.generate(articles, cfg)[1])
    assert _dump(fast) == _dump(store)


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    db.write_text("keep me")
    with pytest.raises(SystemExit):
        sim.simulate(db, sim.SimConfig(queries=10), ARTICLES)
    assert db.read_text() == "keep me"


def test_log_looks_like_real_usage(simulated: tuple[Path, dict]) -> None:
    db, truth = simulated
    conn = sqlite3.connect(db)
    try:
        ts = [row[0] for row in conn.execute("SELECT ts FROM queries")]
        texts = [row[0] for row in conn.execute("SELECT query_masked FROM queries")]
        n_impressions = conn.execute("SELECT COUNT(*) FROM impressions").fetchone()[0]
        votes = conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
    finally:
        conn.close()
    local = [dt.datetime.fromtimestamp(t, REPORT_TZ) for t in ts]
    assert len(ts) == 20_000 and all(moment.hour >= 7 for moment in local)  # nobody works at night
    weekday = sum(moment.weekday() < 5 for moment in local) / 20
    weekend = sum(moment.weekday() >= 5 for moment in local) / 8
    assert weekend < 0.6 * weekday
    assert not any(re.search(r"1[3-9]\d{9}", t) for t in texts), "pasted phone numbers must be masked"
    assert any("〔手机号〕" in t for t in texts)
    assert 4.5 < n_impressions / 20_000 <= 5 and 0.1 < votes / 20_000 < 0.3
    assert {g["name"] for g in truth["gap_topics"]} == {t.name for t in sim.GAP_TOPICS}
    assert sum(len(a["versions"]) > 1 for a in truth["articles"].values()) == 6


def _topic_of(normalised: str, truth: dict) -> str | None:
    for topic in truth["gap_topics"]:
        if any(normalised.startswith(grouping_form(p)) for p in topic["phrasings"]):
            return topic["name"]
    return None


def test_planted_gaps_come_out_on_top(simulated: tuple[Path, dict]) -> None:
    db, truth = simulated
    gaps = build_report(db, sections=["gaps"]).gaps
    planted = [t["name"] for t in truth["gap_topics"]]
    found: dict[str, int] = {}
    # At 20k queries the smallest planted gaps compete with unresolved head questions, so look
    # at the top 12 of the backlog (an editor's first page); every planted topic must be there.
    for cluster in gaps[:12]:
        topics = [_topic_of(e.normalised, truth) for e in cluster.examples]
        main = max(set(topics), key=lambda t: (topics.count(t), t or ""))
        if main is not None:
            assert topics.count(main) == len(topics), f"cluster #{cluster.rank} mixes topics: {topics}"
            found.setdefault(main, cluster.rank)
    assert set(found) == set(planted), f"planted gaps missing from the top clusters: {set(planted) - set(found)}"
    # The two largest planted gaps are the two largest clusters of all.
    assert {_topic_of(gaps[0].examples[0].normalised, truth), _topic_of(gaps[1].examples[0].normalised, truth)} == {
        "新能源车电池", "网约车营运"}


def test_known_resolution_rates_fall_inside_wilson_intervals(simulated: tuple[Path, dict]) -> None:
    db, truth = simulated
    report = build_report(db, sections=["articles"])
    checked = inside = 0
    for row in report.article_versions:
        if row.version is None or not row.enough_feedback:
            continue
        p = truth["articles"][row.article_id]["versions"][str(row.version)]
        checked += 1
        inside += row.ci_low <= p <= row.ci_high  # type: ignore[operator]
    assert checked >= 40
    # 95% intervals: about 1 in 20 misses by design, so demand 90%.
    assert inside / checked >= 0.9, f"{inside}/{checked} true rates inside their interval"
