"""The panel inside a chat tool, end to end: headless Chromium on the demo host page (/demo/host)
against a real uvicorn server and a real SQLite usage log.

The host posts the conversation → suggestions for the customer's latest question appear in the
framed panel; 插入 puts the script, placeholders filled from the host's values, into the host's
reply box; a flag reaches the editors' queue; typing a query at 5 characters a second logs one
query; the agent and session ids the host gives reach the log.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _service_fixtures import (
    BuiltCorpus,
    corpus_settings,
    free_port,
    settings_env,
    stop_server,
    uvicorn_command,
    write_corpus,
)

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
if not CHROMIUM.exists():
    pytest.skip("headless Chromium not found at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
expect = sync_api.expect

PHONE = "13712345678"
SCRIPT = "[客户姓名]您好，您的赔款[金额]已经支付到您预留的银行账户，预计[到账日期]前到账，请留意银行短信。"
PAYOUT = f"""---
id: payout-notice
title: 赔款到账查询：什么时候到账
category: claims
tags: [理赔, 赔款]
aliases: [赔款到账, 赔款什么时候到, 钱什么时候到账]
updated: 2026-11-25
version: 3
owner: 理赔服务组
---

# 赔款到账查询：什么时候到账

## 赔款到账时间

赔款支付后一般在三个工作日内到账，到账时间以银行处理为准。客户询问赔款什么时候到账时，先核实身份，再查询支付记录。

```script
{SCRIPT}
```
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> BuiltCorpus:
    from kb_service.index.builder import build_index

    root = tmp_path_factory.mktemp("host-kb")
    built = BuiltCorpus(root / "articles", root / "indexes", root / "lexicon.yaml")
    write_corpus(built.articles_dir)
    (built.articles_dir / "payout-notice.md").write_text(PAYOUT, encoding="utf-8")
    report = build_index(corpus_settings(built, root / "unused.sqlite3"))
    assert not report.problems, [str(p) for p in report.problems]
    return built


class Server:
    def __init__(self, corpus: BuiltCorpus, db: Path) -> None:
        self.db = db
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
        env.update(settings_env(corpus_settings(corpus, db)))
        env["PYTHONPATH"] = str(ROOT)
        self.out = (db.parent / f"server-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(uvicorn_command(self.port, "--log-level", "warning"), env=env, cwd=ROOT,
                                     stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "server exited early"
            try:
                with urllib.request.urlopen(f"{self.base}/api/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.25)
        raise AssertionError("server not ready")

    def rows(self, sql: str, *args: object, want: int | None = None, timeout: float = 5.0) -> list[tuple]:
        """Rows from the live log file; with `want`, waits for the background writer to get there."""
        deadline = time.monotonic() + timeout
        while True:
            conn = sqlite3.connect(self.db)
            try:
                rows = conn.execute(sql, args).fetchall()
            finally:
                conn.close()
            if want is None or len(rows) >= want or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)


@pytest.fixture(scope="module")
def server(corpus: BuiltCorpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(corpus, tmp_path_factory.mktemp("host-log") / "usage.sqlite3")
    yield srv
    stop_server(srv.proc)
    srv.out.close()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server: Server):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1100, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def _open_host(page, server: Server, session: str, **extra: str):  # type: ignore[no-untyped-def]
    query = "&".join(f"{k}={v}" for k, v in {"agent_id": "agent-007", "session_id": session, **extra}.items())
    page.goto(f"{server.base}/demo/host?{query}")
    page.wait_for_function("window.hostEvents.some((m) => m.type === 'kb:ready')")
    return page.frame_locator("#kb-panel")


def test_conversation_suggestions_insert_filled_script_and_ids_logged(page, server: Server) -> None:
    panel = _open_host(page, server, "chat-insert", customer="张先生", amount="3200元")
    page.evaluate("demoHost.addTurn('customer', '你好在吗')")
    page.evaluate("demoHost.addTurn('agent', '您好，请问有什么可以帮您？')")
    page.evaluate(f"demoHost.addTurn('customer', '我手机{PHONE}，上周理赔的赔款什么时候到账啊')")
    first = panel.locator("#results > .card").first
    expect(first).to_have_attribute("data-article-id", "payout-notice")
    expect(panel.locator("#reading")).to_contain_text("根据对话中客户的问题推荐")
    # The placeholder the host has no value for is marked for the agent; known ones are not.
    expect(first.locator("mark.ph.is-missing")).to_have_text("[到账日期]")
    first.locator(".script .insert-btn").click()
    expect(first.locator(".script .insert-btn")).to_contain_text("待填：到账日期")
    filled = SCRIPT.replace("[客户姓名]", "张先生").replace("[金额]", "3200元")
    expect(page.locator("#reply")).to_have_value(filled)
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "test-artifacts" / "panel-host.png"))  # README's picture (docs/panel-host.png)
    insert = page.evaluate("window.hostEvents.find((m) => m.type === 'kb:insert')")
    assert (insert["articleId"], insert["articleVersion"], insert["missing"]) == ("payout-notice", 3, ["到账日期"])
    assert insert["filled"] == {"客户姓名": "张先生", "金额": "3200元"}
    # A plain passage (not a script) can be inserted too.
    page.locator("#reply").fill("")
    first.locator(".card-actions .insert-btn").click()
    expect(page.locator("#reply")).to_have_value(re.compile(r"^赔款支付后一般在三个工作日内到账[\s\S]*张先生您好"))
    # The agent and session ids the host gave reach the log, with the suggestion marked as such.
    rows = server.rows("SELECT agent_id, session_id, source, query_masked FROM queries WHERE session_id = ?",
                       "chat-insert", want=1)
    assert [r[:3] for r in rows] == [("agent-007", "chat-insert", "conversation")], rows
    assert PHONE not in rows[0][3] and "到账" in rows[0][3]
    events = server.rows("SELECT e.type, e.article_id FROM events e JOIN queries q USING (query_id) "
                         "WHERE q.session_id = ?", "chat-insert", want=2)
    assert ("copy", "payout-notice") in events


def test_a_flag_reaches_the_editor_queue(page, server: Server) -> None:
    panel = _open_host(page, server, "chat-flag", agent_id="坐席七号")  # not Latin-1: sent percent-encoded
    page.evaluate("demoHost.addTurn('customer', '赔款什么时候到账')")
    card = panel.locator("#results > .card").first
    expect(card).to_have_attribute("data-article-id", "payout-notice")
    card.locator(".flag-btn").click()
    card.locator(".flag-reason").select_option("outdated")
    card.locator(".flag-comment").fill(f"到账时间改成两个工作日了，客户{PHONE}反馈")
    card.locator(".flag-submit").click()
    expect(card.locator(".flag-btn")).to_contain_text("已标记「已过时」")
    with urllib.request.urlopen(f"{server.base}/api/flags?article_id=payout-notice", timeout=5) as response:
        queue = json.loads(response.read())
    flag = queue["flags"][0]
    assert (flag["reason"], flag["article_version"], flag["session_id"]) == ("outdated", 3, "chat-flag")
    assert "两个工作日" in flag["comment"] and PHONE not in flag["comment"]
    assert flag["query_id"] and flag["agent_id"] == "坐席七号"


def test_typing_a_query_logs_it_once(page, server: Server) -> None:
    panel = _open_host(page, server, "chat-typing")
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/api/search" in r.url else None)
    box = panel.locator("#q")
    box.press_sequentially("三者险赔什么", delay=200)  # 6 characters at 5 a second
    expect(panel.locator("#results > .card").first).to_be_visible()
    page.wait_for_timeout(2500)  # past the 1.5 s pause that settles a search
    rows = server.rows("SELECT query_masked, agent_id, source FROM queries WHERE session_id = ?", "chat-typing",
                       want=2, timeout=1.0)
    assert rows == [("三者险赔什么", "agent-007", "search")], rows
    # Enter on the same query does not log it again.
    box.press("Enter")
    page.wait_for_timeout(300)
    assert len(server.rows("SELECT 1 FROM queries WHERE session_id = ?", "chat-typing")) == 1

    # A hesitation mid-word shows results for the prefix (a preview) but logs only the settled query.
    box.fill("")
    searches.clear()
    box.press_sequentially("交强险", delay=200)
    page.wait_for_timeout(700)
    box.press_sequentially("赔多少", delay=200)
    page.wait_for_timeout(2500)
    previews = [u for u in searches if "log=0" in u]
    assert any("q=%E4%BA%A4%E5%BC%BA%E9%99%A9&" in u for u in previews), searches  # 交强险 was searched
    rows = server.rows("SELECT query_masked FROM queries WHERE session_id = ? ORDER BY ts", "chat-typing",
                       want=3, timeout=1.0)
    assert rows == [("三者险赔什么",), ("交强险赔多少",)], rows


def test_q_prefills_a_search(page, server: Server) -> None:
    panel = _open_host(page, server, "chat-q", q="理赔材料")
    expect(panel.locator("#q")).to_have_value("理赔材料")
    expect(panel.locator("#results > .card").first).to_have_attribute("data-article-id", "claim-materials")
    rows = server.rows("SELECT query_masked FROM queries WHERE session_id = ?", "chat-q", want=1)
    assert rows == [("理赔材料",)]
    # The host can hand over a query too (kb:query): searched and logged as if typed and entered.
    page.evaluate("demoHost.send({type: 'kb:query', q: '车被水淹了能赔吗'})")
    expect(panel.locator("#q")).to_have_value("车被水淹了能赔吗")
    expect(panel.locator("#results > .card").first).to_have_attribute("data-article-id", "vehicle-damage")
    rows = server.rows("SELECT query_masked FROM queries WHERE session_id = ? ORDER BY ts", "chat-q", want=2)
    assert rows == [("理赔材料",), ("车被水淹了能赔吗",)]


def test_the_latest_vote_stands_in_the_panel(page, server: Server) -> None:
    panel = _open_host(page, server, "chat-votes")
    panel.locator("#q").fill("理赔材料要交什么")
    panel.locator("#q").press("Enter")
    card = panel.locator("#results > .card").first
    card.locator(".fb-yes").click()
    expect(card.locator(".feedback-thanks")).to_contain_text("已解决")
    panel.locator("#none-helped").click()
    expect(panel.locator("#list-feedback")).to_contain_text("谢谢")
    # 都没解决 replaced the card's 已解决: the card offers its buttons again.
    expect(card.locator(".fb-yes")).to_be_visible()
    votes = server.rows("SELECT f.article_id, f.resolved FROM feedback f JOIN queries q USING (query_id) "
                        "WHERE q.session_id = ? ORDER BY f.id", "chat-votes", want=2)
    assert [v[1] for v in votes] == [1, 0] and votes[1][0] is None, votes
