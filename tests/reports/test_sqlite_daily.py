"""Reports from the day roll-ups equal reports from the raw rows, method by method and section by section."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from _daily_fixtures import DAY1, UTC8, write_tricky_log

from kb_service.reports import build_report, report_to_json
from kb_service.reports.build import make_period
from kb_service.reports.source import open_log_reader
from kb_service.reports.sqlite_daily import DailyLogReader, day_bounds
from kb_service.reports.sqlite_reader import LogReader

METHODS = ("totals", "text_counts", "daily", "hourly", "article_versions", "article_texts", "feedback_totals",
           "gap_text_counts", "gap_articles", "gap_opens", "distinct_normalised", "flags")
# Whole-day periods the workbench's date picker sends (and open ends), including a day with no query,
# and one over a week (LONG_PERIOD_DAYS: read off the text-ordered indexes).
PERIODS = [(None, None), ("2026-11-02", "2026-11-02"), ("2026-11-01", "2026-11-03"), (None, "2026-11-02"),
           ("2026-11-03", None), ("2026-11-05", "2026-11-06"), ("2026-10-25", "2026-11-10")]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("daily") / "usage.sqlite3"
    write_tricky_log(db)
    return db


def _comparable(value: object) -> object:
    return sorted(value, key=repr) if isinstance(value, list) and value and isinstance(value[0], tuple) else value


@pytest.mark.parametrize("period", PERIODS)
def test_every_reader_method_equals_the_raw_scan(log: Path, period: tuple) -> None:
    low, high = make_period(*period).bounds()
    daily = open_log_reader(log, low, high)
    assert isinstance(daily, DailyLogReader)
    with daily, LogReader(log, low, high) as raw:
        for method in METHODS:
            assert _comparable(getattr(daily, method)()) == _comparable(getattr(raw, method)()), method
        assert daily.distinct_normalised() == raw.distinct_normalised(), "the same order (gap_topics samples it)"
        if period == (None, None):
            assert daily.totals()["queries"] == 13 and daily.gap_text_counts() and daily.article_versions()


@pytest.mark.parametrize("period", PERIODS)
def test_every_section_equals_the_raw_scan(log: Path, period: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb_service.reports import source

    fast = report_to_json(build_report(log, *period))
    monkeypatch.setattr(source, "open_daily_reader", lambda *args: None)
    raw = report_to_json(build_report(log, *period))
    fast.pop("generated_at")
    raw.pop("generated_at")
    assert fast == raw


def test_a_period_inside_a_day_reads_the_raw_rows(log: Path) -> None:
    since = dt.datetime.fromtimestamp(DAY1 + 30, UTC8).replace(tzinfo=None)
    low, high = make_period(since, "2026-11-03").bounds()
    assert day_bounds(low, high) is None
    with open_log_reader(log, low, high) as reader:
        assert type(reader) is LogReader
        conn = sqlite3.connect(log)
        (expected,) = conn.execute("SELECT COUNT(*) FROM queries WHERE ts >= ? AND ts < ?", (low, high)).fetchone()
        conn.close()
        assert reader.totals()["queries"] == expected > 0


def test_a_log_without_rollups_reads_the_raw_rows(tmp_path: Path) -> None:
    from kb_service.usage_log.sqlite import _SCHEMA_V1

    db = tmp_path / "v1.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(_SCHEMA_V1 + ";INSERT INTO queries (query_id, ts, query_masked, query_normalised, confident, "
                       "n_hits) VALUES ('old', 1, '三者险', '三者险', 1, 0);")
    conn.close()
    with open_log_reader(db, float("-inf"), float("inf")) as reader:
        assert type(reader) is LogReader
        assert reader.totals()["queries"] == 1
