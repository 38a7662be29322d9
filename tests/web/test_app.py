import dataclasses
import re
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _service_fixtures import (
    BuiltCorpus,
    build_corpus_index,
    copy_corpus,
    corpus_settings,
    point_current_at,
    sqlite_rows,
)
from fastapi.testclient import TestClient

from kb_service.settings import Settings
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.web.app import create_app
from kb_service.web.auth import UnsafeBindError, check_bind_allowed
from kb_service.web.rendering import render_article_html
from kb_service.web.serve import ArticleWatcher


@pytest.fixture(scope="session")
def svc_corpus(tmp_path_factory: pytest.TempPathFactory) -> BuiltCorpus:
    return build_corpus_index(tmp_path_factory.mktemp("svc-corpus"))


@pytest.fixture(scope="session")
def svc_embedder(svc_corpus: BuiltCorpus):  # type: ignore[no-untyped-def]
    from kb_service.index.embedding import load_embedder

    return load_embedder("use-multilingual", "onnx-int8", svc_corpus.index_dir / "models", 1)


@pytest.fixture(scope="session")
def svc_engine(svc_corpus: BuiltCorpus, svc_embedder, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from kb_service.search.engine import SearchEngine

    settings = corpus_settings(svc_corpus, tmp_path_factory.mktemp("unused") / "u.sqlite3")
    return SearchEngine.open(settings, embedder=svc_embedder)


_rows = sqlite_rows


class Service:
    """One app over the shared engine with a private usage log."""

    def __init__(self, settings: Settings, engine) -> None:  # type: ignore[no-untyped-def]
        self.settings = settings
        self.store = SQLiteLogStore(settings.log_db)
        self.app = create_app(settings, engine=engine, store=self.store)

    def rows(self, sql: str, *args: object) -> list[tuple]:
        return _rows(self.settings.log_db, sql, *args)


@pytest.fixture
def svc(svc_corpus: BuiltCorpus, svc_engine, tmp_path: Path) -> Iterator[tuple[TestClient, Service]]:  # type: ignore[no-untyped-def]
    service = Service(corpus_settings(svc_corpus, tmp_path / "usage.sqlite3"), svc_engine)
    with TestClient(service.app) as client:
        yield client, service


def _search(client: TestClient, q: str = "三者险赔多少", **params: object) -> dict:
    response = client.get("/api/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return response.json()


# ------------------------------------------------------------------------------ search


def test_search_shape_and_logging(svc_corpus: BuiltCorpus, svc_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service = Service(corpus_settings(svc_corpus, tmp_path / "usage.sqlite3"), svc_engine)
    with TestClient(service.app) as client:
        response = client.get(
            "/api/search",
            params={"q": "客户手机13812345678 三者险赔多少", "k": 3},
            headers={"X-Agent-Id": "agent-42", "X-Session-Id": "chat-9"},
        )
        assert response.status_code == 200, response.text
        data = response.json()
        assert set(data) == {"query_id", "query", "confident", "confidence", "hits", "took_ms", "reading", "questions",
                             "outside_filter", "spelled_as", "not_covered"}
        assert data["hits"][0]["article_id"] == "third-party"
        assert 1 <= len(data["hits"]) <= 3
        assert {
            "article_id",
            "title",
            "heading",
            "text",
            "score",
            "highlights",
            "passage_id",
            "scripts",
        } <= set(data["hits"][0])
    # The client has shut the app down: the store was closed and drained.
    ((query_id, masked, agent, session, n_hits, index_version),) = service.rows(
        "SELECT query_id, query_masked, agent_id, session_id, n_hits, index_version FROM queries"
    )
    assert query_id == data["query_id"]
    assert masked == "客户手机〔手机号〕 三者险赔多少"
    assert (agent, session) == ("agent-42", "chat-9")
    assert n_hits == len(data["hits"])
    assert index_version == svc_engine.info()["index_version"]
    impressions = service.rows("SELECT rank, article_id, passage_id FROM impressions ORDER BY rank")
    assert [(r, a) for r, a, _ in impressions] == [
        (i, h["article_id"]) for i, h in enumerate(data["hits"], start=1)
    ]


def test_search_filters_by_category(svc) -> None:  # type: ignore[no-untyped-def]
    client, _ = svc
    data = _search(client, "理赔要交什么材料", category="claims")
    assert data["hits"] and all(h["category"] == "claims" for h in data["hits"])


def test_search_says_when_it_corrected_a_typo_and_searches_as_typed_on_request(svc) -> None:  # type: ignore[no-untyped-def]
    client, _ = svc
    corrected = _search(client, "理陪要交什么材料")  # 理陪 → 理赔 is a listed typo
    assert corrected["spelled_as"] == "理赔要交什么材料"
    as_typed = _search(client, "理陪要交什么材料", as_typed=1)
    assert as_typed["spelled_as"] is None
    assert _search(client, "理赔要交什么材料")["spelled_as"] is None  # nothing to correct, nothing said


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "为空"),
        ({"q": ""}, "为空"),
        ({"q": "   \u3000 "}, "为空"),
        ({"q": "三" * 1001}, "过长"),
        ({"q": "三者险", "k": 0}, "k"),
        ({"q": "三者险", "k": 999}, "k"),
        ({"q": "三者险", "k": "abc"}, "k"),
        ({"q": "三者险", "category": "weather"}, "未知分类"),
    ],
)
def test_search_rejects_bad_input(svc, params: dict, fragment: str) -> None:  # type: ignore[no-untyped-def]
    client, service = svc
    response = client.get("/api/search", params=params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and fragment in detail
    assert service.store.has_query("anything") is False


def test_query_at_limit_is_accepted(svc) -> None:  # type: ignore[no-untyped-def]
    client, service = svc
    assert service.settings.max_query_chars == 1000
    _search(client, "三者险" + "赔" * 997)


def test_a_longer_paste_with_truncate_searches_its_first_question(svc) -> None:  # type: ignore[no-untyped-def]
    client, _ = svc
    text = "三者险赔什么？" + "我的车昨天在路口被撞了，" * 120
    assert client.get("/api/search", params={"q": text}).status_code == 422
    response = client.get("/api/search", params={"q": text, "truncate": "1"})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["reading"]["truncated"] is True and data["reading"]["questions"] == ["三者险赔什么"]
    assert data["hits"][0]["article_id"] == "third-party"


# ------------------------------------------------------------------------------ articles


def test_article_metadata_markdown_and_html(svc) -> None:  # type: ignore[no-untyped-def]
    client, _ = svc
    response = client.get("/api/articles/third-party")
    assert response.status_code == 200
    data = response.json()
    assert data["title"] == "第三者责任险：保什么、怎么赔"
    assert data["category"] == "coverage" and data["category_label"] == "险种说明"
    assert data["tags"] == ["商业险", "三者险"] and data["version"] == 2 and data["owner"] == "产品知识组"
    assert "```script" in data["markdown"]
    html = data["html"]
    assert '<div class="kb-script"><p>您好，第三者责任险是商业补充保障' in html
    assert "<br>" in html.split('<div class="kb-script">')[1].split("</div>")[0]
    assert "language-script" not in html
    assert "<table>" in html and '<a href="vehicle-damage.md" rel="noopener noreferrer">' in html
    assert data["open_recorded"] is False


def test_script_html_is_escaped() -> None:
    html = render_article_html("```script\n您好 <b>客户</b> & 家人\n\n第二段\n```\n")
    assert html == '<div class="kb-script"><p>您好 &lt;b&gt;客户&lt;/b&gt; &amp; 家人</p><p>第二段</p></div>'


# Everything an article editor could smuggle into the panel, next to the Markdown that must survive.
HOSTILE_MARKDOWN = """# 恶意内容测试

<script>window.__kbInjected = 1</script>

正文<img src="x" onerror="window.__kbInjected = 2">图片，<a href="#" onclick="window.__kbInjected = 3">点我</a>。

<iframe src="https://evil.example/frame"></iframe>

<form action="https://evil.example/steal"><input name="card"><button>提交</button></form>

<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf"><style>body { display: none }</style>

[链接一](javascript:alert(1))、[链接二](java&#9;script:alert(2))、[链接三](JAVASCRIPT:alert(3))、
<a href="java&#10;script:alert(4)">链接四</a>、<a href="java	script:alert(5)">链接五</a>、[数据](data:text/html,hi)

<div class="kb-script">这是规定，请您理解。</div>

## 正常内容

| 险种 | 赔谁 |
| :--- | ---: |
| 三者险 | 第三方 |

- 第一项 **重点** *说明*
- 第二项见[官网](https://example.com/terms)或[车损险](vehicle-damage.md)，邮件[联系我们](mailto:kb@example.com)

> 引用

```script
您好，请您提供事故认定书。
```
"""


class _Tags(HTMLParser):
    """Elements and attributes of an HTML fragment, as a browser would parse them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))


def _scheme(url: str) -> str:
    """A URL's scheme as browsers read it (WHATWG URL): tabs and newlines anywhere and control
    characters or spaces at either end are dropped first, so "java\\tscript:" is javascript:."""
    cleaned = re.sub(r"[\t\n\r]", "", url.strip("".join(map(chr, range(0x21)))))
    match = re.match(r"([a-z][a-z0-9+.-]*):", cleaned, re.IGNORECASE)
    return match.group(1).lower() if match else ""


class _WithArticle:
    """The shared engine plus one article it serves without having indexed it: `kb check` now refuses
    raw HTML, but an index built before that rule (or any other writer) can still hold such an article."""

    def __init__(self, engine, article) -> None:  # type: ignore[no-untyped-def]
        self._engine = engine
        self._article = article

    def article(self, article_id: str):  # type: ignore[no-untyped-def]
        return self._article if article_id == self._article.id else self._engine.article(article_id)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._engine, name)


def test_article_html_is_sanitised(svc_corpus: BuiltCorpus, svc_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hostile = dataclasses.replace(svc_engine.article("third-party"), id="hostile", markdown=HOSTILE_MARKDOWN)
    service = Service(corpus_settings(svc_corpus, tmp_path / "usage.sqlite3"), _WithArticle(svc_engine, hostile))
    with TestClient(service.app) as client:
        response = client.get("/api/articles/hostile")
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["markdown"] == HOSTILE_MARKDOWN  # editors still see what was written
    html = data["html"]
    elements = _Tags(html).elements
    tags = {tag for tag, _ in elements}
    assert not tags & {"script", "img", "iframe", "form", "input", "button", "object", "embed", "style"}, tags
    assert not [(tag, name) for tag, attrs in elements for name in attrs if name.startswith("on")]
    assert "window.__kbInjected" not in html and "display: none" not in html
    hrefs = [attrs["href"] for tag, attrs in elements if tag == "a" and "href" in attrs]
    assert {_scheme(h) for h in hrefs} <= {"", "http", "https", "mailto"}, hrefs
    assert all(attrs.get("rel") == "noopener noreferrer" for tag, attrs in elements if tag == "a" and "href" in attrs)
    # Only the fenced ```script block is a copyable script; the raw <div class="kb-script"> is not.
    scripts = [attrs for tag, attrs in elements if attrs.get("class") == "kb-script"]
    assert len(scripts) == 1 and [tag for tag, attrs in elements if "class" in attrs] == ["div"]
    assert '<div class="kb-script"><p>您好，请您提供事故认定书。</p></div>' in html
    assert "<div>这是规定，请您理解。</div>" in html
    # Ordinary Markdown survives.
    assert '<th align="left">险种</th>' in html and "<td>" not in html and '<td align="right">第三方</td>' in html
    assert "<li>第一项 <strong>重点</strong> <em>说明</em></li>" in html
    assert '<a href="https://example.com/terms" rel="noopener noreferrer">官网</a>' in html
    assert '<a href="vehicle-damage.md" rel="noopener noreferrer">车损险</a>' in html
    assert '<a href="mailto:kb@example.com" rel="noopener noreferrer">联系我们</a>' in html
    assert "<blockquote>" in html and "<h2>正常内容</h2>" in html


@pytest.mark.parametrize(
    "href",
    ["javascript:alert(1)", "java&#9;script:alert(1)", "java&#10;script:alert(1)", "java&#13;script:alert(1)",
     " javascript:alert(1)", "&#x6A;avascript:alert(1)", "javascript&colon;alert(1)", "vbscript:msgbox(1)",
     "data:text/html;base64,PHNjcmlwdD4=", "JaVaScRiPt:alert(1)"],
)
def test_script_links_lose_their_href(href: str) -> None:
    html = render_article_html(f'<a href="{href}">点我</a> 和 [另一个]({href})\n')
    hrefs = [attrs.get("href") for tag, attrs in _Tags(html).elements if tag == "a"]
    assert len(hrefs) == 2 and {_scheme(h or "") for h in hrefs} <= {""}, html


def test_unknown_article_is_404(svc) -> None:  # type: ignore[no-untyped-def]
    client, _ = svc
    response = client.get("/api/articles/no-such-article")
    assert response.status_code == 404
    assert "no-such-article" in response.json()["detail"]


def test_opening_article_with_query_id_records_open(svc) -> None:  # type: ignore[no-untyped-def]
    client, service = svc
    query_id = _search(client)["query_id"]
    assert (
        client.get("/api/articles/third-party", params={"query_id": query_id}).json()["open_recorded"] is True
    )
    # A stale query id never stops an agent from reading; it just is not logged.
    assert (
        client.get("/api/articles/third-party", params={"query_id": "stale"}).json()["open_recorded"] is False
    )
    service.store.flush()
    assert service.rows("SELECT query_id, type, article_id FROM events") == [
        (query_id, "open", "third-party")
    ]


# ------------------------------------------------------------------------------ events and feedback


def test_events_and_feedback_land_in_sqlite(svc) -> None:  # type: ignore[no-untyped-def]
    client, service = svc
    query_id = _search(client)["query_id"]
    for kind in ("open", "copy"):
        response = client.post(
            "/api/events", json={"query_id": query_id, "article_id": "third-party", "type": kind}
        )
        assert response.status_code == 200 and response.json() == {"status": "recorded"}
    response = client.post(
        "/api/feedback",
        json={
            "query_id": query_id,
            "article_id": "third-party",
            "resolved": True,
            "comment": "客户电话13912345678已回访",
        },
    )
    assert response.status_code == 200
    response = client.post(
        "/api/feedback", json={"query_id": query_id, "article_id": None, "resolved": False}
    )
    assert response.status_code == 200
    service.store.flush()
    assert service.rows("SELECT type, article_id FROM events ORDER BY id") == [
        ("open", "third-party"),
        ("copy", "third-party"),
    ]
    assert service.rows("SELECT article_id, resolved, comment FROM feedback ORDER BY id") == [
        ("third-party", 1, "客户电话〔手机号〕已回访"),
        (None, 0, None),
    ]


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/api/events", {"query_id": "nope", "article_id": "third-party", "type": "open"}, 404, "query_id"),
        ("/api/events", {"query_id": "$QID", "article_id": "ghost", "type": "open"}, 404, "ghost"),
        ("/api/events", {"query_id": "$QID", "article_id": "third-party", "type": "print"}, 422, "type"),
        ("/api/events", {"query_id": "$QID", "article_id": "third-party"}, 422, "type"),
        ("/api/events", {"query_id": "", "article_id": "third-party", "type": "copy"}, 422, "query_id"),
        ("/api/feedback", {"query_id": "nope", "article_id": None, "resolved": True}, 404, "query_id"),
        ("/api/feedback", {"query_id": "$QID", "article_id": "ghost", "resolved": True}, 404, "ghost"),
        ("/api/feedback", {"query_id": "$QID", "article_id": None}, 422, "resolved"),
        ("/api/feedback", {"query_id": "$QID", "resolved": "maybe"}, 422, "resolved"),
        ("/api/feedback", {"query_id": "$QID", "resolved": True, "comment": "长" * 1001}, 422, "comment"),
        ("/api/feedback", [1, 2], 422, "请求参数有误"),
    ],
)
def test_event_and_feedback_errors(svc, path: str, body: object, status: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    client, service = svc
    query_id = _search(client)["query_id"]
    if isinstance(body, dict):
        body = {k: (query_id if v == "$QID" else v) for k, v in body.items()}
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and fragment in detail
    service.store.flush()
    assert service.rows("SELECT COUNT(*) FROM events") == [(0,)]
    assert service.rows("SELECT COUNT(*) FROM feedback") == [(0,)]


@pytest.mark.parametrize("path", ["/api/events", "/api/feedback"])
def test_malformed_json_is_422(svc, path: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = svc
    response = client.post(path, content=b'{"query_id": "x", ', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {"detail": "请求体不是合法的 JSON"}


def test_unknown_route_is_json_404(svc) -> None:  # type: ignore[no-untyped-def]
    client, _ = svc
    response = client.get("/api/nothing-here")
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


# ------------------------------------------------------------------------------ health, panel, schema


def test_health(svc, svc_engine) -> None:  # type: ignore[no-untyped-def]
    client, _ = svc
    data = client.get("/api/health").json()
    assert data["status"] == "ok" and data["auth_required"] is False
    assert data["index_version"] == svc_engine.info()["index_version"]
    assert data["articles"] == 4 and data["passages"] >= 8 and data["model"]


def test_panel_and_static_files(svc) -> None:  # type: ignore[no-untyped-def]
    client, _ = svc
    response = client.get("/")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    static = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "kb_service" / "web" / "static").iterdir())
    assert client.get(f"/static/{static[0]}").status_code == 200


def test_openapi_schema_is_complete(svc) -> None:  # type: ignore[no-untyped-def]
    client, _ = svc
    schema = client.get("/openapi.json").json()
    assert {
        "/api/search",
        "/api/articles/{article_id}",
        "/api/events",
        "/api/feedback",
        "/api/health",
    } <= set(schema["paths"])
    assert "/api/admin/reload" in schema["paths"]
    components = schema["components"]["schemas"]
    assert {
        "SearchOut",
        "Hit",
        "ArticleOut",
        "EventIn",
        "FeedbackIn",
        "RecordedOut",
        "HealthOut",
        "ErrorOut",
    } <= set(components)
    search_responses = schema["paths"]["/api/search"]["get"]["responses"]
    assert search_responses["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SearchOut")
    assert {"401", "403", "422"} <= set(search_responses)


# ------------------------------------------------------------------------------ roles

KEYS = {"agent_keys": "agent-key,agent-key-2", "editor_keys": "editor-key", "analyst_keys": "analyst-key"}


@pytest.fixture
def svc_secured(svc_corpus: BuiltCorpus, svc_engine, tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    service = Service(
        corpus_settings(svc_corpus, tmp_path / "usage.sqlite3", **KEYS), svc_engine
    )
    with TestClient(service.app) as client:
        yield client


def _as(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.mark.parametrize(
    ("method", "path", "key", "status"),
    [
        ("GET", "/api/search?q=三者险", None, 401),
        ("GET", "/api/search?q=三者险", "wrong-key", 401),
        ("GET", "/api/search?q=三者险", "agent-key", 200),
        ("GET", "/api/search?q=三者险", "agent-key-2", 200),
        ("GET", "/api/search?q=三者险", "editor-key", 200),
        ("GET", "/api/search?q=三者险", "analyst-key", 200),
        ("GET", "/api/articles/third-party", None, 401),
        ("GET", "/api/articles/third-party", "agent-key", 200),
        ("POST", "/api/admin/reload", None, 401),
        ("POST", "/api/admin/reload", "agent-key", 403),
        ("POST", "/api/admin/reload", "analyst-key", 403),
        ("POST", "/api/admin/reload", "editor-key", 200),
        ("GET", "/api/reports/frequency", None, 401),
        ("GET", "/api/reports/frequency", "agent-key", 403),
        ("GET", "/api/reports/frequency", "editor-key", 403),
        ("GET", "/api/reports/frequency", "analyst-key", 200),
        ("GET", "/api/health", None, 200),
    ],
)
def test_role_checks(svc_secured: TestClient, method: str, path: str, key: str | None, status: int) -> None:
    response = svc_secured.request(method, path, headers=_as(key))
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if status >= 400:
        assert isinstance(response.json()["detail"], str)


def test_events_and_feedback_need_agent_role(svc_secured: TestClient) -> None:
    query_id = svc_secured.get("/api/search", params={"q": "三者险"}, headers=_as("agent-key")).json()[
        "query_id"
    ]
    event = {"query_id": query_id, "article_id": "third-party", "type": "copy"}
    assert svc_secured.post("/api/events", json=event).status_code == 401
    assert svc_secured.post("/api/events", json=event, headers=_as("agent-key")).status_code == 200
    vote = {"query_id": query_id, "article_id": None, "resolved": True}
    assert (
        svc_secured.post("/api/feedback", json=vote, headers={"Authorization": "Basic agent-key"}).status_code
        == 401
    )
    assert svc_secured.post("/api/feedback", json=vote, headers=_as("editor-key")).status_code == 200
    assert svc_secured.get("/api/health").json()["auth_required"] is True


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_open_service_may_bind_loopback(host: str) -> None:
    check_bind_allowed(Settings(agent_keys="", editor_keys="", analyst_keys=""), host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "kb.example.internal"])
def test_open_service_refuses_other_hosts(host: str) -> None:
    with pytest.raises(UnsafeBindError, match="without API keys"):
        check_bind_allowed(Settings(agent_keys="", editor_keys="", analyst_keys=""), host)


def test_keys_allow_any_host() -> None:
    check_bind_allowed(Settings(agent_keys="k", editor_keys="", analyst_keys=""), "0.0.0.0")


# ------------------------------------------------------------------------------ reload


def test_reload_under_concurrent_searches(svc_corpus: BuiltCorpus, svc_embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kb_service.index.builder import build_index
    from kb_service.search.engine import SearchEngine

    corpus = copy_corpus(svc_corpus, tmp_path / "kb")
    settings = corpus_settings(corpus, tmp_path / "usage.sqlite3")
    first = SearchEngine.open(settings, embedder=svc_embedder).info()["index_version"]
    article = corpus.articles_dir / "vehicle-damage.md"
    article.write_text(
        article.read_text(encoding="utf-8")
        .replace("version: 1", "version: 2")
        .replace("施救费用", "合理施救费用"),
        encoding="utf-8",
    )
    second = build_index(settings, embedder=svc_embedder).generation
    assert second != first

    engine = SearchEngine.open(settings, embedder=svc_embedder)
    service = Service(settings, engine)
    queries = ("三者险赔多少", "车被水淹了能赔吗", "理赔材料", "核实身份")
    done = [0] * len(queries)  # searches completed per thread
    failures: list[str] = []
    stop = threading.Event()

    def wait_for_every_thread(since: list[int]) -> None:
        deadline = time.monotonic() + 60
        while any(d <= s for d, s in zip(done, since, strict=True)) and time.monotonic() < deadline:
            time.sleep(0.01)

    def damage_version(client: TestClient) -> int:
        hits = _search(client, "车损险水淹")["hits"]
        return next(h["version"] for h in hits if h["article_id"] == "vehicle-damage")

    with TestClient(service.app) as client:

        def hammer(slot: int) -> None:
            while not stop.is_set():
                response = client.get("/api/search", params={"q": queries[slot]})
                if response.status_code != 200 or not response.json()["hits"]:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                done[slot] += 1

        threads = [threading.Thread(target=hammer, args=(slot,)) for slot in range(len(queries))]
        for thread in threads:
            thread.start()
        versions: list[str] = []
        try:
            wait_for_every_thread([0] * len(queries))
            for generation, article_version in ((first, 1), (second, 2), (first, 1)):
                point_current_at(corpus.index_dir, generation)
                before = list(done)
                response = client.post("/api/admin/reload")  # while four threads are searching
                assert response.status_code == 200, response.text
                assert response.json()["reloaded"] is True
                versions.append(response.json()["index_version"])
                wait_for_every_thread(before)  # every thread searched across the swap
                assert damage_version(client) == article_version
            assert client.post("/api/admin/reload").json()["reloaded"] is False
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert failures == []
    assert versions == [first, second, first]
    # Every search was logged: the hammering threads' plus the three version checks.
    assert service.rows("SELECT COUNT(*) FROM queries") == [(sum(done) + 3,)]
    assert {v for (v,) in service.rows("SELECT DISTINCT index_version FROM queries")} <= {first, second}


def test_watcher_notices_article_changes(tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "a.md").write_text("x", encoding="utf-8")
    changed = threading.Event()
    watcher = ArticleWatcher(
        Settings(articles_dir=articles, lexicon_path=tmp_path / "lexicon.yaml"), changed.set, interval=0.05
    )
    watcher.start()
    try:
        time.sleep(0.15)
        assert not changed.is_set()
        (articles / "b.md").write_text("new article", encoding="utf-8")
        assert changed.wait(2.0)
    finally:
        watcher.stop()
        watcher.join()


def test_event_waits_for_a_search_another_worker_is_still_logging(svc_corpus: BuiltCorpus, svc_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two workers share one log file; worker A's writer commits the search after B sees the click."""
    from kb_service.usage_log.store import QueryLog

    db = tmp_path / "usage.sqlite3"
    worker_a = Service(corpus_settings(svc_corpus, db), svc_engine)
    worker_b = Service(corpus_settings(svc_corpus, db, query_id_wait_seconds=2.0), svc_engine)
    search = QueryLog(query_id="q-from-a", ts=time.time(), agent_id=None, session_id=None, query_text="三者险赔多少",
                      confident=True, n_hits=1, latency_ms=5.0, index_version="test")
    late_commit = threading.Timer(0.3, worker_a.store.record_query, args=(search,))
    with TestClient(worker_b.app) as client:
        late_commit.start()
        response = client.post("/api/events", json={"query_id": "q-from-a", "article_id": "third-party", "type": "copy"})
        late_commit.join()
        assert response.status_code == 200, response.text
        assert client.post("/api/events", json={"query_id": "never-searched", "article_id": "third-party",
                                                "type": "copy"}).status_code == 404
    worker_b.store.close()
    worker_a.store.close()
    assert worker_b.rows("SELECT type, article_id FROM events WHERE query_id = ?", "q-from-a") == [("copy", "third-party")]


def test_a_click_when_the_log_cannot_be_asked_is_a_clear_503(svc) -> None:  # type: ignore[no-untyped-def]
    """A log that cannot answer (here: closed, as a PostgreSQL log that is down) must not turn an
    agent's click into a 500; searching still works."""
    client, service = svc
    query_id = _search(client)["query_id"]
    service.store.close()
    response = client.post("/api/events", json={"query_id": query_id, "article_id": "third-party", "type": "open"})
    assert response.status_code == 503, response.text
    assert "使用日志暂时无法访问" in response.json()["detail"]
    assert client.get("/api/search", params={"q": "三者险赔多少"}).status_code == 200
