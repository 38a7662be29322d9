"""`kb report`: a wrong --log-db is one line and a non-zero exit; headers and columns say what they count."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from typer.testing import CliRunner

from kb_service.cli import app
from kb_service.reports import build_report, render_html
from kb_service.reports.data import REPORT_TZ
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import Impression, QueryLog

DAY = dt.datetime(2026, 11, 10, 10, 0, tzinfo=REPORT_TZ).timestamp()


def _env(tmp_path: Path) -> dict[str, str]:
    # No index and a model that does not exist: the report must not need either.
    return {"KB_INDEX_DIR": str(tmp_path / "no-index"), "KB_ARTICLES_DIR": str(tmp_path / "no-articles"),
            "KB_EMBEDDING_MODEL": str(tmp_path / "no-model")}


def _log(db: Path) -> None:
    with SQLiteLogStore(db) as store:
        for n, text in enumerate(["三者险赔多少", "三者险赔多少", "三者险 赔多少？", "交强险赔多少"]):
            store.record_query(QueryLog(
                query_id=f"q{n}", ts=DAY + n * 86400, agent_id="a", session_id="s", query_text=text, confident=True,
                n_hits=1, latency_ms=3.0, index_version="g", impressions=[Impression(1, "art-a", 1, "art-a#0", 0.9)]))


def test_missing_log_is_one_line_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    missing = tmp_path / "usgae.sqlite3"
    result = CliRunner().invoke(app, ["report", "--log-db", str(missing), "--out", str(out)], env=_env(tmp_path))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: no usage log at {missing} (check --log-db or KB_LOG_DB)"]
    assert not out.exists()


def test_a_file_that_is_not_a_log_is_refused(tmp_path: Path) -> None:
    not_a_log = tmp_path / "notes.txt"
    not_a_log.write_text("hello", encoding="utf-8")
    result = CliRunner().invoke(app, ["report", "--log-db", str(not_a_log), "--out", str(tmp_path / "r")],
                                env=_env(tmp_path))
    assert result.exit_code == 2 and "is not a usage log" in result.output and "Traceback" not in result.output


def test_report_of_a_real_log_exits_0_and_dates_the_header(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    _log(db)
    result = CliRunner().invoke(app, ["report", "--log-db", str(db), "--out", str(tmp_path / "r")], env=_env(tmp_path))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "统计时间段：2026-11-10 至 2026-11-13" in page
    assert "最早 至 最新" not in page


def test_impressions_and_distinct_shown_queries_differ(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    _log(db)
    report = build_report(db)
    (article,) = report.articles
    # Four searches showed it (展示次数); they were two distinct questions after normalising (展示查询).
    assert (article.impressions, article.shown_queries, article.shown_texts) == (4, 4, 2)
    assert "展示查询（不同问法）" in render_html(report)
