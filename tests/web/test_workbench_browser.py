"""The analyst workbench in headless Chromium against a real uvicorn server and a real SQLite log.

A hand-built log holds two periods; the page must change its numbers with the period, drill from
a gap topic down to its queries, export a table as CSV, and adopt a proposed 相似问 (the article
file changes, its version goes up, and the knowledge base still validates).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from _service_fixtures import (
    BuiltCorpus,
    build_corpus_index,
    corpus_settings,
    free_port,
    settings_env,
    stop_server,
)
from _service_fixtures import uvicorn_command as _uvicorn

from kb_service.content.validation import check_knowledge_base
from kb_service.reports.data import REPORT_TZ
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import FlagLog, Impression, QueryLog

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
if not CHROMIUM.exists():
    pytest.skip("headless Chromium not found at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

KEY = "both-key"  # analyst and editor
ANALYST_ONLY = "analyst-only"
EARLY = dt.datetime(2026, 11, 3, 10, 0, tzinfo=REPORT_TZ).timestamp()
LATE = dt.datetime(2026, 11, 20, 10, 0, tzinfo=REPORT_TZ).timestamp()
PROPOSED = "车泡水了找谁报案"


def _query(store: SQLiteLogStore, qid: str, text: str, ts: float, confident: bool, shown: list[str], session: str) -> None:
    store.record_query(QueryLog(
        query_id=qid, ts=ts, agent_id="agent-1", session_id=session, query_text=text, confident=confident,
        n_hits=len(shown), latency_ms=6.0, index_version="gen-test",
        impressions=[Impression(r, p.split("#")[0], 1, p, 0.5) for r, p in enumerate(shown, start=1)]))


def _write_log(db: Path) -> None:
    with SQLiteLogStore(db) as store:
        # Early period: three queries, one gap topic.
        _query(store, "e1", "新能源车电池坏了赔吗", EARLY, False, ["vehicle-damage#0"], "s1")
        _query(store, "e2", "新能源车电池坏了赔吗", EARLY + 600, False, ["vehicle-damage#0"], "s1")
        _query(store, "e3", "三者险赔哪些损失", EARLY + 1200, True, ["third-party#0"], "s1")
        # Late period: five queries: two gap topics, and one found the hard way (a proposal).
        _query(store, "l1", "代驾撞车了谁来赔", LATE, False, ["third-party#0"], "s2")
        _query(store, "l2", "代驾司机把车撞了谁赔", LATE + 60, False, ["third-party#0"], "s2")
        store.record_feedback("l2", None, False, ts=LATE + 90)
        _query(store, "l3", "新能源车电池进水了能赔吗", LATE + 300, False, ["vehicle-damage#1"], "s3")
        _query(store, "l4", PROPOSED, LATE + 900, False, ["third-party#0", "vehicle-damage#1"], "s4")
        store.record_event("l4", "vehicle-damage", "open", ts=LATE + 920)
        store.record_feedback("l4", "vehicle-damage", True, ts=LATE + 960)
        _query(store, "l5", "理赔材料有哪些", LATE + 1500, True, ["claim-materials#0"], "s5")
        store.record_flag(FlagLog("third-party", 1, "outdated", "客户13812345678说限额已调整", LATE + 1600, "l1"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> BuiltCorpus:
    root = tmp_path_factory.mktemp("workbench-kb")
    corpus = build_corpus_index(root)
    _write_log(root / "usage.sqlite3")
    return corpus


@pytest.fixture(scope="module")
def server(corpus: BuiltCorpus):  # type: ignore[no-untyped-def]
    settings = corpus_settings(corpus, corpus.articles_dir.parent / "usage.sqlite3",
                               analyst_keys=f"{KEY},{ANALYST_ONLY}", editor_keys=KEY)
    port = free_port()
    log = open(corpus.articles_dir.parent / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(_uvicorn(port, "--log-level", "warning"), env=settings_env(settings), cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail((corpus.articles_dir.parent / "server.log").read_text(encoding="utf-8", errors="replace"))
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    yield base
    stop_server(proc)
    log.close()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM),
                                      args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/workbench")
    page.fill("#key", KEY)
    page.dispatch_event("#key", "change")
    yield page
    context.close()
    assert not errors, f"JavaScript errors in the workbench: {errors}"


def _period(page, since: str, until: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#since", since)
    page.fill("#until", until)
    page.click("#apply")


def _first_card(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("#summary .card b").first.inner_text()


def test_period_change_changes_the_numbers(page) -> None:  # type: ignore[no-untyped-def]
    _period(page, "2026-11-01", "2026-11-10")
    page.wait_for_function("document.querySelector('#period-label').textContent.includes('2026-11-01 至 2026-11-10')")
    assert _first_card(page) == "3"
    _period(page, "2026-11-15", "2026-11-30")
    page.wait_for_function("document.querySelector('#period-label').textContent.includes('2026-11-15')")
    page.wait_for_function("document.querySelector('#summary .card b').textContent === '5'")
    assert page.locator("#top_queries tbody tr").count() == 5


def test_drill_from_gap_topic_to_its_queries_and_export_csv(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _period(page, "2026-11-15", "2026-11-30")
    page.click("#tabs button[data-tab=gaps]")
    page.wait_for_selector("#gaps tbody tr")
    labels = page.locator("#gaps tbody tr td:nth-child(2)").all_inner_texts()
    assert "代驾撞车了谁来赔" in labels or "代驾司机把车撞了谁赔" in labels, labels
    row = page.locator("#gaps tbody tr", has_text="代驾").first
    row.click()
    page.wait_for_selector("#gap_queries tbody tr")
    texts = page.locator("#gap_queries tbody tr td:nth-child(2)").all_inner_texts()
    assert sorted(texts) == ["代驾司机把车撞了谁赔", "代驾撞车了谁来赔"]
    assert "未解决" in page.locator("#gap_queries").inner_text()  # l2's vote
    assert "代驾" in page.input_value("#assign-question")  # an editor may assign the topic to a section
    assert page.input_value("#assign-article") == "third-party"  # prefilled with the article shown
    with page.expect_download() as download_info:
        page.click("#gaps .csv")
    path = tmp_path / "gaps.csv"
    download_info.value.save_as(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["#", "主题（中心问法）", "缺口查询"]
    assert len(rows) - 1 == len(labels) and any("代驾" in r[1] for r in rows[1:])


def test_adopting_a_proposal_writes_the_article_and_check_stays_clean(page, corpus: BuiltCorpus, server: str) -> None:  # type: ignore[no-untyped-def]
    article = corpus.articles_dir / "vehicle-damage.md"
    before = article.read_text(encoding="utf-8")
    # An analyst-only key may read proposals but not adopt them.
    request = urllib.request.Request(f"{server}/api/workbench/proposals/adopt", method="POST",
                                     data=json.dumps({"question": PROPOSED, "article_id": "vehicle-damage"}).encode(),
                                     headers={"Authorization": f"Bearer {ANALYST_ONLY}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403 and article.read_text(encoding="utf-8") == before

    page.click("#tabs button[data-tab=proposals]")
    row = page.locator("#proposals tbody tr", has_text=PROPOSED)
    row.wait_for()
    assert "水淹车报案要点" in row.inner_text()
    row.locator("button.adopt").click()
    page.wait_for_selector("#adopt-diff")
    assert f"水淹车报案要点: [{PROPOSED}]" in page.locator("#adopt-diff").inner_text()
    after = article.read_text(encoding="utf-8")
    assert f"  水淹车报案要点: [{PROPOSED}]" in after and "version: 2" in after and "version: 1" in before
    settings = corpus_settings(corpus, corpus.articles_dir.parent / "usage.sqlite3")
    report = check_knowledge_base(corpus.articles_dir, settings)
    assert report.ok, report.problems
    page.wait_for_selector("#proposals")  # the list reloads without the adopted one
    page.wait_for_function(f"!document.querySelector('#proposals').textContent.includes('{PROPOSED}')")


def test_review_tab_lists_articles_agents_flagged(page) -> None:  # type: ignore[no-untyped-def]
    _period(page, "2026-11-15", "2026-11-30")
    page.click("#tabs button[data-tab=stale]")
    rows = page.locator("#flags tbody tr")
    sync_api.expect(rows).to_have_count(1)
    sync_api.expect(rows.first).to_contain_text("已过时")
    sync_api.expect(rows.first).to_contain_text("〔手机号〕")  # the comment is shown masked
    assert "13812345678" not in page.locator("#flags").inner_text()
