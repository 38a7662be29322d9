"""Articles past their `review_by` date: listed by `kb check` as warnings, never failures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from conftest import write_article
from typer.testing import CliRunner

from kb_service.cli import app
from kb_service.editorial.stale import review_due

SECTION = {"说明": "这一节是足够长的正文内容，用来说明文章的复核日期字段如何工作。"}


def _with_review(path: Path, value: str) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("version: 1", f"version: 1\nreview_by: {value}", 1), encoding="utf-8")


def test_review_due_lists_past_and_malformed_dates_only(tmp_path: Path) -> None:
    write_article(tmp_path, "old-one", "过期文章", SECTION)
    write_article(tmp_path, "fresh-one", "未到期文章", SECTION)
    write_article(tmp_path, "no-date", "没有复核日期", SECTION)
    write_article(tmp_path, "bad-date", "日期写错", SECTION)
    _with_review(tmp_path / "old-one.md", "2026-06-30")
    _with_review(tmp_path / "fresh-one.md", "2027-01-31")
    _with_review(tmp_path / "bad-date.md", "明年")
    due = review_due(tmp_path, today=dt.date(2026, 12, 6))
    assert [(d.article_id, d.days_overdue) for d in due] == [("old-one", 159), ("bad-date", None)]


def test_kb_check_warns_but_passes(tmp_path: Path) -> None:
    write_article(tmp_path, "old-one", "过期文章", SECTION, questions={"说明": ["复核日期是什么"]})
    _with_review(tmp_path / "old-one.md", "2020-01-01")
    result = CliRunner().invoke(app, ["check", str(tmp_path)], env={"KB_LEXICON_PATH": str(tmp_path / "none.yaml")})
    assert result.exit_code == 0, result.output
    assert "warning: " in result.output and "review overdue since 2020-01-01" in result.output
    assert "1 articles due for review" in result.output and result.output.strip().endswith("ok")
