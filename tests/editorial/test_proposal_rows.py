"""Proposals from the SQLite log's per-query roll-ups equal those from the raw statements."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from kb_service.editorial import proposal_rows
from kb_service.editorial.proposals import FOLLOW_UP_SECONDS, find_proposals, load_current_articles
from kb_service.reports.build import make_period

ROOT = Path(__file__).resolve().parents[2]
PERIODS = [(None, None), ("2026-11-03", "2026-11-09"), (None, "2026-11-09"), ("2026-11-12", None)]


@pytest.fixture(scope="module")
def simulated_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("simulate_usage", ROOT / "scripts" / "simulate_usage.py")
    assert spec and spec.loader
    sim = importlib.util.module_from_spec(spec)
    sys.modules["simulate_usage"] = sim  # dataclasses resolve their module by name
    spec.loader.exec_module(sim)
    db = tmp_path_factory.mktemp("sim") / "usage.sqlite3"
    sim.simulate(db, sim.SimConfig(queries=6_000, agents=25, days=28, seed=5), ROOT / "articles")
    return db


@pytest.mark.parametrize("period", PERIODS)
def test_the_same_proposals_from_the_rollups_and_from_the_raw_rows(simulated_log: Path, period: tuple,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    articles = load_current_articles(ROOT / "articles")
    conn = sqlite3.connect(simulated_log)
    kept = proposal_rows.daily_candidate_rows(conn, make_period(*period), FOLLOW_UP_SECONDS)
    conn.close()
    assert kept is not None and kept["in_query"] and kept["after_gap"], "the roll-ups are read, and hold rows"
    fast = find_proposals(simulated_log, make_period(*period), articles)
    monkeypatch.setattr(proposal_rows, "daily_candidate_rows", lambda *args: None)
    monkeypatch.setattr(proposal_rows, "daily_shown_passages", lambda *args: None)
    raw = find_proposals(simulated_log, make_period(*period), articles)
    assert fast == raw and raw


def test_a_period_inside_a_day_reads_the_raw_rows(simulated_log: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(simulated_log)
    assert proposal_rows.daily_candidate_rows(conn, make_period("2026-11-03T12:00", "2026-11-09"), 300) is None
    conn.close()
