"""End-to-end test of the agent side panel in headless Chromium against a real server.

A real uvicorn process serves `kb_service.web.app:create_app_from_env` over a small fixture
knowledge base; Playwright drives the panel the way an agent does (type, arrow keys, Enter,
copy a script, go back, give feedback). After a clean SIGINT shutdown the SQLite usage log must
hold the query, its impressions, the open and copy events and the feedback.

Screenshots go to test-artifacts/ (git-ignored): panel.png, panel-article.png, panel-oos.png.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from _service_fixtures import free_port, uvicorn_command

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

if not CHROMIUM.exists():
    pytest.skip(
        "headless Chromium not found at /usr/bin/chromium (apt-get install chromium fonts-noto-cjk)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

LATE_REPORT_SCRIPT = (
    "您好，感谢您联系我们，我理解您当时可能有事情耽误了。虽然这次报案有所延误，我们仍会尽力为您提供服务。"
    "请您尽快提供能证明这次事故的材料，比如交警出具的事故认定书、事故现场的照片等，资料收到后我们会尽快评估并告诉您结果。"
)

ARTICLES = {
    "late-report-script.md": f"""\
        ---
        id: late-report-script
        title: 报案延误处理话术：仍受理咨询并请客户补证明
        category: script
        tags: [报案, 话术, 报案延误]
        aliases: [报案晚了, 报案延误, 晚报案, 延迟报案, 忘记报案]
        updated: 2026-11-25
        version: 2
        owner: 理赔服务组
        ---

        # 报案延误处理话术：仍受理咨询并请客户补证明

        ## 报案延误时的处理原则

        客户出险后没有第一时间报案、隔了一段时间才联系，属于报案延误。处理报案延误的原则：不拒绝、不指责，
        告诉客户虽然报案晚了，我们仍会尽力提供服务；不当场承诺，是否受理理赔要根据证明材料评估；请客户尽快补充
        证明材料。报案的具体时限以客户保单条款为准，客服不要自行说出天数。

        ## 报案延误处理话术

        报案延误时，先表达理解，再说明仍会尽力服务，最后讲清需要什么材料：

        ```script
        {LATE_REPORT_SCRIPT}
        ```

        报案延误的客户追问能不能赔时，如实说明需要看材料评估，不要给出肯定或否定的结论。
        """,
    "third-party-liability.md": """\
        ---
        id: third-party-liability
        title: 第三者责任险：保什么、怎么赔
        category: coverage
        tags: [商业险, 三者险]
        aliases: [三者险, 三者, 第三者险]
        updated: 2026-11-25
        version: 1
        owner: 产品知识组
        ---

        # 第三者责任险：保什么、怎么赔

        ## 三者险保什么

        第三者责任险（三者险）赔付的是被保险车辆发生意外事故，造成车外第三方的人身伤亡或财产损失，依法应由被保险人
        承担的赔偿责任。三者险不赔本车和本车上的人员，本车损失由车损险负责，车上人员由车上人员责任险负责。

        ## 三者险怎么赔

        三者险先由交强险在其责任限额内赔付，超出交强险的部分再由三者险按保单约定的保额和责任比例赔付。具体保额以
        客户保单为准，交强险限额请查现行条款，客服不要凭印象报数字。
        """,
    "glass-breakage-rider.md": """\
        ---
        id: glass-breakage-rider
        title: 玻璃单独破碎险：只碎玻璃也能赔
        category: coverage
        tags: [附加险, 玻璃险]
        aliases: [玻璃险, 挡风玻璃, 玻璃碎了]
        updated: 2026-11-25
        version: 1
        owner: 产品知识组
        ---

        # 玻璃单独破碎险：只碎玻璃也能赔

        ## 玻璃险保什么

        玻璃单独破碎险是车损险的附加险，车辆只有挡风玻璃或车窗玻璃单独破碎、车身没有其他损失时，由玻璃险赔付。
        玻璃险投保时要选择国产玻璃或进口玻璃，赔付按投保时选择的玻璃类型计算，具体以保单约定为准。
        """,
    "complaint-flow.md": """\
        ---
        id: complaint-flow
        title: 客户投诉处理流程：受理、核实、回复
        category: process
        tags: [投诉, 服务流程]
        aliases: [投诉, 客户投诉, 要投诉]
        updated: 2026-11-25
        version: 1
        owner: 客服管理组
        signals:
          投诉受理: [电视台, 曝光]
        ---

        # 客户投诉处理流程：受理、核实、回复

        ## 投诉受理

        客户提出投诉时，客服先耐心听完并记录投诉的时间、事由和诉求，向客户确认记录无误后生成投诉工单，并告诉客户
        投诉工单号和预计回复时间。投诉处理过程中不与客户争辩，不推诿，需要其他部门处理的投诉按流程转交并跟进。

        ## 投诉记录里的特殊字符

        投诉记录要照原样保存客户写的内容，哪怕里面有 `<img src="x" onerror="window.__kbInjected=1">` 这样的字符，
        投诉工单系统会按文本保存，客服不要改写或删除客户的原话。
        """,
}


# ---------------------------------------------------------------- fixtures



def _kb_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(
        {
            "KB_ARTICLES_DIR": str(tmp / "articles"),
            "KB_INDEX_DIR": str(tmp / "indexes"),
            "KB_LOG_DB": str(tmp / "usage.sqlite3"),
            "KB_EMBEDDING_MODEL": "use-multilingual",
            "KB_AGENT_KEYS": "",
            "KB_EDITOR_KEYS": "",
            "KB_ANALYST_KEYS": "",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fixture knowledge base with a built index (built once per module, in a subprocess)."""
    tmp = tmp_path_factory.mktemp("panel-kb")
    articles = tmp / "articles"
    articles.mkdir()
    for name, text in ARTICLES.items():
        (articles / name).write_text(textwrap.dedent(text), encoding="utf-8")
    (articles / "not-covered.yaml").write_text("做菜: [番茄炒蛋怎么做, 红烧肉怎么做]\n", encoding="utf-8")
    build = (
        "from kb_service.settings import Settings\n"
        "from kb_service.index.builder import build_index\n"
        "report = build_index(Settings(), full=True)\n"
        "assert not report.problems, [str(p) for p in report.problems]\n"
        "print(report.generation, report.articles, report.passages)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", build], env=_kb_env(tmp), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"index build failed:\n{result.stdout}\n{result.stderr}"
    return tmp


class Server:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"server-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            uvicorn_command(self.port, "--log-level", "warning"),
            env=_kb_env(tmp),
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/health", timeout=2) as response:
                    return json.loads(response.read())
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        self.stop()
        pytest.fail(f"server not ready after {timeout:.0f}s:\n{self.output()}")

    def stop(self, timeout: float = 30.0) -> int:
        """Clean shutdown (SIGINT, like Ctrl+C) so the usage log is drained to disk."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"server did not stop within {timeout:.0f}s of SIGINT:\n{self.output()}")
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def server(kb_dir: Path):
    db = kb_dir / "usage.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    srv = Server(kb_dir)
    srv.health = srv.wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 400, "height": 800}, locale="zh-CN")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    yield page
    context.close()
    assert not errors, f"JavaScript errors in the panel: {errors}"


def _query_rows(db: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _open_panel(page, server) -> None:
    page.goto(f"{server.base}/")
    page.wait_for_selector("#q")
    sync_api.expect(page.locator("#health")).to_contain_text(f"{server.health['articles']} 篇")
    sync_api.expect(page.locator("#hint")).to_be_visible()


# ---------------------------------------------------------------- tests


def test_agent_flow_is_logged(page, server) -> None:
    expect = sync_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    _open_panel(page, server)

    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/api/search" in r.url else None)

    # Search as you type: keystrokes faster than the debounce produce one request, not one per key.
    search_box = page.locator("#q")
    with page.expect_response(lambda r: "/api/search" in r.url and r.status == 200) as first:
        search_box.press_sequentially("报案晚了怎么办", delay=30)
    data = first.value.json()
    assert data["hits"], data
    assert len(searches) <= 2, searches
    cards = page.locator("#results > .card")
    expect(cards).to_have_count(len(data["hits"]))
    expect(page.locator("#status")).to_contain_text("条")
    top = data["hits"][0]
    assert top["article_id"] == "late-report-script", [h["article_id"] for h in data["hits"]]
    expect(cards.first.locator(".card-title")).to_have_text(top["title"])
    expect(cards.first.locator(".badge")).to_have_text("合规话术")
    if top["highlights"]:
        expect(cards.first.locator("mark").first).to_be_visible()
    # Passage text is rendered as text, never as HTML.
    assert cards.first.locator(".card-body script, .card-body img").count() == 0

    # Keyboard: ArrowDown selects the first result (aria-selected + aria-activedescendant).
    search_box.press("ArrowDown")
    expect(cards.first).to_have_attribute("aria-selected", "true")
    expect(search_box).to_have_attribute("aria-activedescendant", "hit-0")
    if cards.count() > 1:
        search_box.press("ArrowDown")
        expect(cards.nth(1)).to_have_attribute("aria-selected", "true")
        expect(cards.first).to_have_attribute("aria-selected", "false")
        page.keyboard.press("ArrowUp")
        expect(cards.first).to_have_attribute("aria-selected", "true")
    query_id = page.evaluate("window.kbPanel.state.data.query_id")
    assert query_id == data["query_id"]

    # Enter opens the selected result in the article view.
    with page.expect_response(lambda r: "/api/articles/late-report-script" in r.url) as opened:
        page.keyboard.press("Enter")
    assert f"query_id={query_id}" in opened.value.url
    article = page.locator("#article")
    expect(page.locator("#article-view")).to_be_visible()
    expect(page.locator("#list-view")).to_be_hidden()
    expect(article.locator(".article-title")).to_have_text(top["title"])
    copy = article.locator(".kb-script .copy-btn").first
    expect(copy).to_have_text("复制话术")
    copy.click()
    expect(copy).to_contain_text("已复制")
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert clipboard.strip() == LATE_REPORT_SCRIPT
    page.wait_for_timeout(150)  # let the copy event request leave
    page.screenshot(path=str(ARTIFACTS / "panel-article.png"))

    # Esc goes back to the list, with the selection kept.
    page.keyboard.press("Escape")
    expect(page.locator("#list-view")).to_be_visible()
    expect(page.locator("#article-view")).to_be_hidden()
    expect(cards.first).to_have_attribute("aria-selected", "true")

    # Feedback on the card; a second click on the same button must not submit twice.
    with page.expect_response(lambda r: "/api/feedback" in r.url) as fb:
        page.evaluate("() => { const b = document.querySelector('#hit-0 .fb-yes'); b.click(); b.click(); }")
    assert fb.value.ok, fb.value.text()
    expect(cards.first.locator(".feedback-thanks")).to_contain_text("谢谢")

    # "都没解决" for the list as a whole.
    with page.expect_response(lambda r: "/api/feedback" in r.url) as fb_none:
        page.locator("#none-helped").click()
    assert fb_none.value.ok, fb_none.value.text()
    expect(page.locator("#list-feedback")).to_contain_text("谢谢")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.locator("#content").evaluate("el => el.scrollTop = 0")
    page.screenshot(path=str(ARTIFACTS / "panel.png"))

    assert server.stop() in (0, -signal.SIGINT), server.output()

    db = Path(server.tmp) / "usage.sqlite3"
    assert _query_rows(db, "SELECT query_id FROM queries WHERE query_id = ?", query_id)
    impressions = _query_rows(
        db, "SELECT rank, article_id FROM impressions WHERE query_id = ? ORDER BY rank", query_id
    )
    assert impressions and impressions[0] == (1, "late-report-script"), impressions
    events = set(_query_rows(db, "SELECT type, article_id FROM events WHERE query_id = ?", query_id))
    assert ("open", "late-report-script") in events, events
    assert ("copy", "late-report-script") in events, events
    feedback = _query_rows(
        db, "SELECT article_id, resolved FROM feedback WHERE query_id = ? ORDER BY id", query_id
    )
    assert feedback.count(("late-report-script", 1)) == 1, feedback
    assert (None, 0) in feedback, feedback


def test_out_of_scope_errors_shortcuts_and_escaping(page, server) -> None:
    expect = sync_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    _open_panel(page, server)
    search_box = page.locator("#q")

    # "/" from anywhere focuses the search box.
    page.locator("body").click(position={"x": 200, "y": 700})
    page.keyboard.press("/")
    expect(search_box).to_be_focused()

    with page.expect_response(lambda r: "/api/search" in r.url and r.status == 200) as response:
        search_box.fill("番茄炒蛋怎么做")
    data = response.value.json()
    banner = page.locator("#oos-banner")
    if data["confident"] is False:
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("知识库中没有找到可靠答案")
        # Asked word for word in the not-covered list: the banner names the topic.
        assert data["not_covered"] == "做菜"
        expect(page.locator("#oos-topic")).to_have_text("这类问题（做菜）知识库未收录。")
        if data["hits"]:
            expect(page.locator("#low-heading")).to_be_visible()
            expect(page.locator("#low-heading")).to_contain_text("置信度低")
            expect(page.locator("#results > .card.is-low")).to_have_count(len(data["hits"]))
        page.screenshot(path=str(ARTIFACTS / "panel-oos.png"))
    else:
        expect(banner).to_be_hidden()
        expect(page.locator("#oos-topic")).to_be_hidden()

    # Esc on the list clears the search and shows the hint again.
    search_box.press("Escape")
    expect(search_box).to_have_value("")
    expect(page.locator("#hint")).to_be_visible()
    expect(page.locator("#results > .card")).to_have_count(0)

    # A paste over the limit stays in the box: its start is searched (first question only) and the
    # panel says so instead of showing only an error.
    pasted = "三者险赔什么？" + "报案" * 600
    with page.expect_response(lambda r: "/api/search" in r.url) as too_long:
        search_box.fill(pasted)
    assert too_long.value.status == 200 and "truncate=1" in too_long.value.url
    expect(search_box).to_have_value(pasted)
    expect(page.locator("#reading")).to_contain_text("只搜索了开头的第一个问题")

    # An API error is shown as a readable message, not a blank list: the whole text, without
    # truncate=1, goes to the real server, which refuses it.
    def untruncated(route) -> None:  # type: ignore[no-untyped-def]
        parts = urlsplit(route.request.url)
        query = {k: v for k, v in parse_qsl(parts.query) if k != "truncate"} | {"q": pasted + "报案"}
        route.continue_(url=urlunsplit(parts._replace(query=urlencode(query))))

    page.route("**/api/search?*", untruncated)
    with page.expect_response(lambda r: "/api/search" in r.url) as refused:
        search_box.fill(pasted + "报案")
    assert 400 <= refused.value.status < 500
    page.unroute("**/api/search?*")
    message = page.locator("#message.is-error")
    expect(message).to_be_visible()
    assert message.inner_text().strip()
    assert "[object" not in message.inner_text()

    # A relayed line asking two things, in traditional characters: the panel says how it was read
    # and labels each question's cards.
    with page.expect_response(lambda r: "/api/search" in r.url and r.status == 200) as multi:
        search_box.fill("三者險保什麼？另外玻璃險保什麼")
    data = multi.value.json()
    assert [q["question"] for q in data["questions"]] == ["三者险保什么", "玻璃险保什么"], data["reading"]
    expect(page.locator("#reading")).to_contain_text("识别出 2 个问题")
    expect(page.locator("#reading")).to_contain_text("繁体已转简体")
    expect(page.locator(".question-label")).to_have_count(2)
    expect(page.locator(".question-label").first).to_contain_text("问题 1：三者险保什么")
    page.screenshot(path=str(ARTIFACTS / "panel-multi.png"))

    # A pasted message that asks one thing and threatens the media: the complaint section the
    # editors signalled comes first, and its card says which words in the message brought it.
    with page.expect_response(lambda r: "/api/search" in r.url and r.status == 200) as told:
        search_box.fill("妹子谢谢你啊这几天帮我跑前跑后的，三者险保什么？你们要是再拖着不处理，我就去找电视台曝光，"
                        "我朋友圈里好几个做自媒体的，我这人说到做到，你们自己看着办吧")
    assert [h["article_id"] for h in told.value.json()["hits"][:2]] == ["complaint-flow", "third-party-liability"]
    expect(page.locator(".signal-label")).to_have_count(1)
    expect(page.locator("#hit-0 .signal-label")).to_contain_text("客户消息提到「电视台」")

    # Ctrl+K focuses and selects the search box from elsewhere in the panel.
    page.locator("#category").focus()
    page.keyboard.press("Control+k")
    expect(search_box).to_be_focused()

    # Passage text is shown as text; in the article the characters are a code span, never markup.
    with page.expect_response(lambda r: "/api/search" in r.url and r.status == 200) as response:
        search_box.fill("投诉记录特殊字符照原样保存")
    hits = response.value.json()["hits"]
    index = next((i for i, h in enumerate(hits) if "onerror" in h["text"]), None)
    assert index is not None, [(h["article_id"], h["heading"]) for h in hits]
    card = page.locator(f"#hit-{index}")
    card.locator(".expand-btn, .card-body").first.wait_for()
    expect(card.locator(".card-body")).to_contain_text('<img src="x" onerror=')
    assert card.locator("img").count() == 0
    card.locator(".btn-open").click()
    expect(page.locator("#article .article-title")).to_have_text(hits[index]["title"])
    assert page.locator("#article [onerror]").count() == 0
    expect(page.locator("#article code").filter(has_text='<img src="x" onerror=')).to_have_count(1)
    page.wait_for_timeout(200)
    assert page.evaluate("window.__kbInjected") is None
    page.keyboard.press("Escape")
    expect(page.locator("#list-view")).to_be_visible()


# What a server that did not sanitise (an older version, or an index built before `kb check`
# refused raw HTML) could send: script links whose scheme a tab, newline, control character or
# entity splits, as browsers still run them, next to HTML that must survive.
HOSTILE_LINKS = {
    "链接一": "java\tscript:window.__kbInjected='tab'",
    "链接二": "java\nscript:window.__kbInjected='newline'",
    "链接三": "java&#9;script:window.__kbInjected='tab-entity'",
    "链接四": "java&#10;script:window.__kbInjected='newline-entity'",
    "链接五": " &#1;javascript:window.__kbInjected='leading-control'",
    "链接六": "JaVa\r\nScRiPt&colon;window.__kbInjected='mixed'",
    "链接七": "javascript:window.__kbInjected='plain'",
}
HOSTILE_ARTICLE_HTML = (
    "<h2>三者险保什么</h2><p>"
    + " ".join(f'<a href="{href}">{text}</a>' for text, href in HOSTILE_LINKS.items())
    + ' <a href="https://example.com/terms">官网</a> <a href="mailto:kb@example.com">邮件</a>'
    ' <img src="x" onerror="window.__kbInjected=\'img\'"></p>'
    '<div class="kb-script"><p>您好，请您提供事故认定书。</p></div>'
)


def test_panel_sanitiser_drops_script_links_the_server_let_through(page, server) -> None:
    """The panel's own sanitiser, on HTML the server did not clean (the route below swaps it in)."""
    expect = sync_api.expect
    _open_panel(page, server)

    # Scheme detection ignores control characters and whitespace the way browsers do.
    urls = ["java\tscript:alert(1)", "java\nscript:alert(1)", "java\rscript:alert(1)", " javascript:alert(1)",
            "\u0001javascript:alert(1)", "JAVASCRIPT:alert(1)", "jav\u00a0ascript:alert(1)", "vbscript:msgbox(1)",
            "data:text/html,hi", "tel:10086", "https://example.com/a", "HTTP://example.com", "mailto:kb@example.com",
            "vehicle-damage.md", "#section", "/static/x", "../a", "?q=1"]
    verdicts = page.evaluate("(urls) => urls.map((u) => window.kbPanel.safeUrl(u))", urls)
    assert dict(zip(urls, verdicts, strict=True)) == {u: i >= 10 for i, u in enumerate(urls)}

    def unsanitised(route) -> None:  # type: ignore[no-untyped-def]
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "html": HOSTILE_ARTICLE_HTML})

    page.route("**/api/articles/**", unsanitised)
    with page.expect_response(lambda r: "/api/search" in r.url and r.status == 200) as response:
        page.locator("#q").fill("三者险保什么")
    hit = response.value.json()["hits"][0]
    page.locator("#hit-0 .btn-open").click()
    expect(page.locator("#article .article-title")).to_have_text(hit["title"])

    links = page.locator("#article a")
    expect(links).to_have_count(len(HOSTILE_LINKS) + 2)
    hrefs = page.evaluate("""() => [...document.querySelectorAll('#article a')].map((a) => [a.textContent,
        a.getAttribute('href'), a.hasAttribute('href') ? new URL(a.getAttribute('href'), location.href).protocol : null])""")
    assert [(text, href) for text, href, _ in hrefs if text in HOSTILE_LINKS] == [(t, None) for t in HOSTILE_LINKS]
    assert {protocol for _, _, protocol in hrefs} == {None, "https:", "mailto:"}, hrefs
    official = page.locator("#article a", has_text="官网")
    expect(official).to_have_attribute("href", "https://example.com/terms")
    expect(official).to_have_attribute("rel", "noopener noreferrer")
    assert page.locator("#article [onerror]").count() == 0
    expect(page.locator("#article .kb-script .copy-btn")).to_have_count(1)
    for text in HOSTILE_LINKS:  # what is left of them does nothing when clicked
        links.filter(has_text=text).click()
    page.wait_for_timeout(200)
    assert page.evaluate("window.__kbInjected") is None
    page.unroute("**/api/articles/**")


def test_a_corrected_typo_is_shown_and_one_click_searches_as_typed(page, server) -> None:
    expect = sync_api.expect
    _open_panel(page, server)
    search_box = page.locator("#q")
    with page.expect_response(lambda r: "/api/search" in r.url and r.status == 200) as first:
        search_box.fill("报按晚了怎么办")  # 报按 → 报案: a listed typo of the lexicon
    assert first.value.json()["spelled_as"] == "报案晚了怎么办"
    reading = page.locator("#reading")
    expect(reading).to_contain_text("已按「报案晚了怎么办」搜索")
    with page.expect_response(lambda r: "/api/search" in r.url and "as_typed=1" in r.url) as again:
        reading.locator("button[data-as-typed]").click()
    assert again.value.json()["spelled_as"] is None
    expect(reading).to_contain_text("已按原文搜索")
    expect(reading.locator("button[data-as-typed]")).to_have_count(0)
    # Typing a new text corrects again.
    with page.expect_response(lambda r: "/api/search" in r.url and r.status == 200) as third:
        search_box.fill("理陪要什么材料")
    assert "as_typed" not in third.value.url
