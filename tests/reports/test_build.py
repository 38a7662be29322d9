"""Report metrics on hand-built logs with exact expected numbers, plus rendering and the API."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kb_service.reports import (
    EMPTY_MESSAGE,
    INSUFFICIENT,
    PeriodError,
    Report,
    build_report,
    definitions_markdown,
    make_period,
    never_shown_articles,
    render_html,
    report_to_json,
    run_report_command,
    wilson_interval,
    write_csv,
)
from kb_service.reports.bigram_topics import cluster_topics
from kb_service.reports.data import REPORT_TZ
from kb_service.reports.stats import format_rate
from kb_service.reports.textsim import group_near_duplicates, lcs_length, lcs_ratio
from kb_service.settings import Settings
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import Impression, QueryLog
from kb_service.web.auth import AccessPolicy
from kb_service.web.routers.reports import router as report_router

DAY = dt.datetime(2026, 11, 10, 10, 30, tzinfo=REPORT_TZ).timestamp()  # a Tuesday, 10:30 Beijing time
CATALOG = {
    "art-a": {"title": "三者险说明", "category": "coverage"},
    "art-b": {"title": "车损险说明", "category": "coverage"},
    "art-c": {"title": "交强险说明", "category": "claims"},
    "art-d": {"title": "从未展示", "category": "script"},
}


def _query(qid: str, text: str, ts: float, confident: bool, shown: list[tuple[str, int]]) -> QueryLog:
    return QueryLog(
        query_id=qid, ts=ts, agent_id="agent-1", session_id="s-1", query_text=text, confident=confident,
        n_hits=len(shown), latency_ms=10.0, index_version="gen-test",
        impressions=[Impression(rank, a, v, f"{a}#0", 1.0 / rank) for rank, (a, v) in enumerate(shown, start=1)],
    )


@pytest.fixture()
def hand_log(tmp_path: Path) -> Path:
    """Six queries whose every metric is worked out by hand in the tests below."""
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        store.record_query(_query("q1", "三者险赔多少", DAY, True, [("art-a", 1), ("art-b", 1)]))
        store.record_event("q1", "art-a", "open", ts=DAY + 5)
        store.record_event("q1", "art-a", "open", ts=DAY + 9)
        store.record_event("q1", "art-a", "copy", ts=DAY + 12)
        store.record_feedback("q1", "art-a", True, ts=DAY + 60)

        store.record_query(_query("q2", "三者险 赔多少？", DAY + 3600, True, [("art-a", 1), ("art-b", 1)]))
        store.record_event("q2", "art-b", "open", ts=DAY + 3605)
        store.record_feedback("q2", "art-b", False, ts=DAY + 3660)

        store.record_query(_query("q3", "三者险能赔多少", DAY + 86400, False, [("art-b", 1), ("art-c", 2)]))
        store.record_feedback("q3", None, False, comment="都没用", ts=DAY + 86460)

        store.record_query(_query("q4", "交强险赔多少", DAY + 86400 + 60, True, [("art-c", 2)]))
        store.record_event("q4", "art-c", "open", ts=DAY + 86470)
        store.record_feedback("q4", "art-c", True, ts=DAY + 86500)
        store.record_feedback("q4", "art-c", False, ts=DAY + 86510)

        store.record_query(_query("q5", "怎么报案", DAY - 30 * 86400, True, [("art-a", 1)]))  # before the period
        store.record_query(_query("q6", "新能源车电池坏了赔吗", DAY + 2 * 86400, False, []))
    return db


def _report(db: Path) -> Report:
    return build_report(db, "2026-11-01", "2026-11-30", article_catalog=CATALOG)


def _article(report: Report, article_id: str, version: int | None = None, versions: bool = False):  # type: ignore[no-untyped-def]
    rows = report.article_versions if versions else report.articles
    (found,) = [a for a in rows if a.article_id == article_id and (not versions or a.version == version)]
    return found


# --- statistics -------------------------------------------------------------------------------


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(8, 10)  # type: ignore[misc]
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_minimum_sample_rule_labels_and_ranking(tmp_path: Path) -> None:
    assert format_rate(5, 9).startswith(INSUFFICIENT)
    assert format_rate(5, 10).startswith("50.0%")
    db = tmp_path / "u.sqlite3"
    with SQLiteLogStore(db) as store:
        # art-few: 9 votes, all unresolved; art-many: 10 votes, 9 resolved.
        for i in range(9):
            store.record_query(_query(f"f{i}", "玻璃险", DAY + i, True, [("art-few", 1)]))
            store.record_feedback(f"f{i}", "art-few", False, ts=DAY + i)
        for i in range(10):
            store.record_query(_query(f"m{i}", "自燃险", DAY + i, True, [("art-many", 1)]))
            store.record_feedback(f"m{i}", "art-many", i > 0, ts=DAY + i)
    report = build_report(db)
    few, many = _article(report, "art-few"), _article(report, "art-many")
    assert few.resolution_rate is None and not few.enough_feedback and few.rate_label.startswith(INSUFFICIENT)
    assert few.ci_low is None
    assert many.resolution_rate == pytest.approx(0.9) and many.enough_feedback
    # Ranked articles come first even though art-few's 0/9 looks worse.
    assert [a.article_id for a in report.articles] == ["art-many", "art-few"]


# --- text grouping ----------------------------------------------------------------------------


def test_lcs_matches_dynamic_programming() -> None:
    def slow(a: str, b: str) -> int:
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
        return table[-1][-1]

    pairs = [("三者险赔多少", "三者险能赔多少钱"), ("abcbdab", "bdcaba"), ("", "x"), ("交强险", "三者险"), ("aaaa", "aa")]
    for a, b in pairs:
        assert lcs_length(a, b) == slow(a, b)
    assert lcs_ratio("三者险赔多少", "三者险赔多少") == 1.0


def test_near_duplicates_grouped_but_different_products_kept_apart() -> None:
    groups = group_near_duplicates([
        ("三者险赔多少", 50), ("三者险能赔多少", 20), ("三者险赔多少钱", 10), ("三者险能赔多少钱", 4),
        ("交强险赔多少", 30), ("交强险能赔多少钱", 5), ("车被偷了", 3), ("车子被偷", 2), ("报案", 9),
    ])
    as_sets = [sorted(t for t, _ in g) for g in groups]
    assert sorted(["三者险赔多少", "三者险能赔多少", "三者险赔多少钱", "三者险能赔多少钱"]) in as_sets
    assert sorted(["交强险赔多少", "交强险能赔多少钱"]) in as_sets
    assert sorted(["车被偷了", "车子被偷"]) in as_sets
    assert groups[0][0] == ("三者险赔多少", 50)  # the most frequent phrasing leads, largest group first
    # Deterministic: input order does not matter.
    shuffled = group_near_duplicates(list(reversed([(t, c) for g in groups for t, c in g])))
    assert shuffled == groups


def test_topic_clustering_joins_questions_sharing_a_rare_term() -> None:
    counts = [("网约车出事故保险赔吗", 30), ("网约车要买营运险吗", 20), ("兼职开网约车怎么投保", 10),
              ("代驾撞车谁来赔", 25), ("代驾期间车损谁负责", 15), ("食堂几点开饭", 5)]
    reference = [t for t, _ in counts] + ["三者险赔多少", "车损险赔什么", "怎么报案", "保险怎么买", "出事故怎么办"]
    topics = cluster_topics(counts, reference)
    by_text = [{counts[i][0] for i in t.members} for t in topics]
    assert {"网约车出事故保险赔吗", "网约车要买营运险吗", "兼职开网约车怎么投保"} in by_text
    assert {"代驾撞车谁来赔", "代驾期间车损谁负责"} in by_text
    assert topics[0].weight == 60 and "网约车" in topics[0].keywords


# --- metrics on the hand-built log ------------------------------------------------------------


def test_frequency_metrics(hand_log: Path) -> None:
    r = _report(hand_log)
    s = r.summary
    assert (s.queries, s.non_confident, s.no_hit_queries, s.distinct_queries) == (5, 2, 1, 4)
    assert s.non_confident_share == pytest.approx(0.4) and s.no_hit_share == pytest.approx(0.2)
    # q4's 已解决 on art-c was replaced by its later 未解决 on art-c (the latest vote counts).
    assert (s.feedback_votes, s.resolved_votes, s.queries_with_open) == (4, 1, 3)
    assert s.resolution_rate == pytest.approx(0.25)
    top = r.top_queries[0]
    # 「三者险赔多少」「三者险 赔多少？」 normalise alike; 「三者险能赔多少」 is a near-duplicate.
    assert (top.representative, top.count, top.n_variants, top.non_confident) == ("三者险赔多少", 3, 2, 1)
    assert top.share == pytest.approx(0.6)
    assert [v.count for v in top.variants] == [2, 1]
    assert [g.representative for g in r.top_queries[1:]] == ["交强险赔多少", "新能源车电池坏了赔吗"]
    assert [(d.day, d.queries, d.non_confident) for d in r.daily] == [
        ("2026-11-10", 2, 0), ("2026-11-11", 2, 1), ("2026-11-12", 1, 1)]
    hours = {h.hour: h.queries for h in r.hourly if h.queries}
    assert hours == {10: 4, 11: 1} and len(r.hourly) == 24
    assert r.hourly[10].per_day == pytest.approx(4 / 3)


def test_article_metrics(hand_log: Path) -> None:
    r = _report(hand_log)
    a, b, c = _article(r, "art-a"), _article(r, "art-b"), _article(r, "art-c")
    assert (a.impressions, a.shown_queries, a.opens, a.open_queries, a.copies, a.copy_queries) == (2, 2, 2, 1, 1, 1)
    assert a.ctr == pytest.approx(0.5) and a.mean_rank == pytest.approx(1.0)
    assert (a.feedback, a.resolved, a.unresolved, a.resolution_rate) == (1, 1, 0, None)
    assert (b.impressions, b.open_queries, b.feedback, b.resolved) == (3, 1, 1, 0)
    assert b.ctr == pytest.approx(1 / 3) and b.mean_rank == pytest.approx(5 / 3)
    assert (c.impressions, c.open_queries, c.feedback, c.resolved, c.category_label) == (2, 1, 1, 0, "理赔材料与流程")
    assert _article(r, "art-c", 2, versions=True).impressions == 2
    assert [x.article_id for x in r.never_shown] == ["art-d"]
    assert never_shown_articles(["art-a", "zzz"], r.articles) [0].article_id == "zzz"
    coverage = next(x for x in r.categories if x.category == "coverage")
    assert (coverage.articles_in_catalog, coverage.impressions, coverage.open_queries, coverage.feedback) == (2, 5, 2, 2)


def test_article_version_attribution(tmp_path: Path) -> None:
    db = tmp_path / "v.sqlite3"
    with SQLiteLogStore(db) as store:
        store.record_query(_query("old", "玻璃险", DAY, True, [("art-a", 1)]))
        store.record_feedback("old", "art-a", False, ts=DAY)
        store.record_query(_query("new", "玻璃险", DAY + 10, True, [("art-a", 2)]))
        store.record_event("new", "art-a", "open", ts=DAY + 11)
        store.record_feedback("new", "art-a", True, ts=DAY + 12)
        store.record_query(_query("link", "别的", DAY + 20, True, [("art-b", 1)]))
        store.record_event("link", "art-a", "open", ts=DAY + 21)  # opened but never shown in this query
    r = build_report(db)
    v1, v2, unknown = (_article(r, "art-a", v, versions=True) for v in (1, 2, None))
    assert (v1.feedback, v1.resolved, v2.feedback, v2.resolved, v2.open_queries) == (1, 0, 1, 1, 1)
    assert (unknown.opens, unknown.open_queries, unknown.impressions) == (1, 0, 0)
    total = _article(r, "art-a")
    assert (total.opens, total.open_queries, total.shown_queries, total.ctr) == (2, 1, 2, 0.5)


def test_low_ctr_rule(tmp_path: Path) -> None:
    db = tmp_path / "ctr.sqlite3"
    with SQLiteLogStore(db) as store:
        for i in range(60):
            store.record_query(_query(f"q{i}", "三者险", DAY + i, True, [("good", 1), ("ignored", 1)]))
            if i % 2 == 0:
                store.record_event(f"q{i}", "good", "open", ts=DAY + i)
            if i == 0:
                store.record_event(f"q{i}", "ignored", "open", ts=DAY + i)
    r = build_report(db)
    # overall CTR = 31/120; 'ignored' has 1/60 < half of it and ≥ 50 shown queries.
    assert [a.article_id for a in r.low_ctr] == ["ignored"]
    assert _article(r, "ignored").low_ctr and not _article(r, "good").low_ctr


def test_gap_queries_and_clusters(hand_log: Path) -> None:
    r = _report(hand_log)
    # q2 (unresolved vote, nothing resolved), q3 (non-confident, 'nothing helped'), q6 (non-confident).
    # q4: its 已解决 was replaced by a later 未解决 on the same article (the latest vote counts): a gap too.
    assert r.summary.gap_queries == 4
    # 三者险 and 交强险 are two gaps (two articles to fix): they share only 赔多少, a generic word.
    first, second, third = r.gaps
    assert (first.label, first.queries, first.non_confident, first.unresolved, first.distinct_phrasings) == (
        "三者险能赔多少", 2, 1, 2, 2)
    assert [(x.article_id, x.queries) for x in first.articles_shown] == [("art-b", 2), ("art-a", 1), ("art-c", 1)]
    assert first.articles_shown[0].title == "车损险说明"
    # Equal counts: the leading phrasing is the first in text order (deterministic tie-break).
    assert (second.label, second.queries, second.unresolved, [(x.article_id, x.queries) for x in second.articles_shown]) == (
        "交强险赔多少", 1, 1, [("art-c", 1)])
    assert (third.label, third.queries, third.articles_shown) == ("新能源车电池坏了赔吗", 1, [])


# --- periods, empty logs, outputs -------------------------------------------------------------


def test_period_parsing() -> None:
    period = make_period("2026-11-01", "2026-11-07")
    assert period.since == dt.datetime(2026, 11, 1, tzinfo=REPORT_TZ)
    assert period.until == dt.datetime(2026, 11, 8, tzinfo=REPORT_TZ)  # until day is inclusive
    assert "含首尾两天" in period.label
    with pytest.raises(PeriodError):
        make_period("2026-11-31", None)
    with pytest.raises(PeriodError):
        make_period("2026-11-07", "2026-11-01")


def test_period_excludes_outside_queries(hand_log: Path) -> None:
    assert build_report(hand_log).summary.queries == 6
    assert build_report(hand_log, "2026-11-11", "2026-11-11").summary.queries == 2


def test_empty_period_and_missing_log(hand_log: Path, tmp_path: Path) -> None:
    for report in (build_report(hand_log, "2025-01-01", "2025-01-31"), build_report(tmp_path / "none.sqlite3")):
        assert report.empty and report.message.startswith(EMPTY_MESSAGE)
        assert EMPTY_MESSAGE in render_html(report)
        assert report_to_json(report)["empty"] is True
        assert len(write_csv(report, tmp_path / "csv")) == 12  # flags.csv since issue 16


def test_html_is_self_contained_and_labelled(hand_log: Path) -> None:
    page = render_html(_report(hand_log))
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 4
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the report must not load anything"
    for heading in ("高频查询", "内容缺口", "文章表现", "按分类", "指标定义", "Wilson"):
        assert heading in page


def test_csv_and_json_outputs(hand_log: Path, tmp_path: Path) -> None:
    report = _report(hand_log)
    paths = write_csv(report, tmp_path / "out")
    names = {p.name for p in paths}
    assert {"top_queries.csv", "articles.csv", "gaps.csv", "definitions.csv", "daily_volume.csv"} <= names
    with open(tmp_path / "out" / "articles.csv", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["article_id"]: r["impressions"] for r in rows}["art-b"] == "3"
    data = report_to_json(report, sections=["gaps"])
    assert set(data) >= {"period", "summary", "gaps", "definitions"} and "articles" not in data
    json.dumps(report_to_json(report), ensure_ascii=False)  # fully serialisable


def test_definitions_markdown_covers_every_metric() -> None:
    text = definitions_markdown()
    assert text.startswith("| 指标 | 定义 |")
    for name in ("点击率 CTR", "解决率", "内容缺口查询", "查询组", "从未展示"):
        assert name in text


def test_run_report_command_uses_articles_dir_catalog(hand_log: Path, tmp_path: Path) -> None:
    from tests.conftest import write_article

    articles = tmp_path / "articles"
    articles.mkdir()
    write_article(articles, "art-a", "三者险说明", {"说明": "三者险赔偿范围和限额的说明文字足够长。"})
    write_article(articles, "art-z", "没人看的文章", {"说明": "这篇文章在统计期间从未被展示过。"})
    settings = Settings(log_db=hand_log, articles_dir=articles, index_dir=tmp_path / "no-index")
    messages: list[str] = []
    (html_path,) = run_report_command(settings, "2026-11-01", "2026-11-30", "html", tmp_path / "r", echo=messages.append)
    assert html_path.name == "report.html" and "没人看的文章" in html_path.read_text(encoding="utf-8")
    (json_path,) = run_report_command(settings, "2025-01-01", "2025-01-02", "json", tmp_path / "r", echo=messages.append)
    assert json.loads(json_path.read_text(encoding="utf-8"))["message"] == EMPTY_MESSAGE
    assert EMPTY_MESSAGE in messages
    with pytest.raises(ValueError):
        run_report_command(settings, None, None, "pdf", tmp_path / "r")


# --- API --------------------------------------------------------------------------------------


@pytest.fixture()
def api(hand_log: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(log_db=hand_log, analyst_keys="an-key", agent_keys="ag-key",
                        articles_dir=tmp_path / "none", index_dir=tmp_path / "none")
    app = FastAPI()
    app.state.settings = settings
    app.state.access = AccessPolicy.from_settings(settings)
    app.include_router(report_router)
    with TestClient(app) as client:
        yield client


ANALYST = {"Authorization": "Bearer an-key"}


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": "Bearer ag-key"}, 403), (ANALYST, 200)])
def test_api_role_check(api: TestClient, headers: dict[str, str], status: int) -> None:
    assert api.get("/api/reports/frequency", headers=headers).status_code == status
    # The role check runs first: unknown names are not revealed to callers without the role.
    assert api.get("/api/reports/unknown", headers=headers).status_code == (404 if status == 200 else status)


def test_api_sections_errors_and_empty_period(api: TestClient) -> None:
    freq = api.get("/api/reports/frequency?since=2026-11-01&until=2026-11-30", headers=ANALYST).json()
    assert freq["summary"]["queries"] == 5 and freq["top_queries"][0]["count"] == 3 and "articles" not in freq
    arts = api.get("/api/reports/articles", headers=ANALYST).json()
    assert {a["article_id"] for a in arts["articles"]} == {"art-a", "art-b", "art-c"}
    gaps = api.get("/api/reports/gaps", headers=ANALYST).json()
    assert gaps["gaps"][0]["queries"] == 2 and any(d["key"] == "gap_query" for d in gaps["definitions"])
    missing = api.get("/api/reports/nope", headers=ANALYST)
    assert missing.status_code == 404 and "frequency" in missing.json()["detail"]
    assert api.get("/api/reports/gaps?since=2026-02-30", headers=ANALYST).status_code == 422
    assert api.get("/api/reports/gaps?since=yesterday", headers=ANALYST).status_code == 422
    empty = api.get("/api/reports/gaps?since=2020-01-01&until=2020-01-31", headers=ANALYST)
    assert empty.status_code == 200 and empty.json()["empty"] and empty.json()["message"] == EMPTY_MESSAGE
