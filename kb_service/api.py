"""HTTP API for the agents' side panel, editors and analysts.

Routes are thin: they validate input, call the search engine, and put usage records on the log
store's queue. Everything the app needs lives on `app.state` (no module globals), so tests and
uvicorn workers each build an independent app with `create_app`.

Error bodies are always JSON `{"detail": "<message>"}`; messages an agent may see are in
Chinese because the panel shows them as they are.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib
import ipaddress
import json
import logging
import os
import re
import secrets
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import markdown as markdown_lib
import nh3
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from .articles import ArticleCache
from .embedding import Embedder
from .http_guards import (
    HEAD_SCOPE_KEY,
    UNAUTHORIZED_MESSAGE,
    JSONErrorH11Protocol,
    RequestGuard,
    install_access_log,
)
from .logstore import Impression, QueryLog, SQLiteLogStore, UsageLogStore
from .masking import mask_personal_data
from .models import CATEGORIES, Hit, SearchResponse
from .settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_K = 20
MAX_ID_CHARS = 128
MAX_COMMENT_CHARS = 1000
# How many clicks may wait at once for a search id another worker is still logging; more are
# answered 404 at once. The wait holds no thread (asyncio), so it never delays searches.
MAX_QUERY_ID_WAITERS = 256

Role = Literal["agent", "editor", "analyst"]
# Which key roles may use a route of a given role: editors and analysts are staff and may also
# search and read like an agent; nobody else crosses over.
ROUTE_ACCESS: dict[str, frozenset[str]] = {
    "agent": frozenset({"agent", "editor", "analyst"}),
    "editor": frozenset({"editor"}),
    "analyst": frozenset({"analyst"}),
}
LOOPBACK_NAMES = frozenset({"localhost"})


# ------------------------------------------------------------------------------ schemas


def _no_lone_surrogates(value: str) -> str:
    """JSON may spell half a UTF-16 pair ("\\ud800"); such text cannot be stored or shown."""
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("contains an invalid character (a lone UTF-16 surrogate)")
    return value


Text = Annotated[str, AfterValidator(_no_lone_surrogates)]


class ErrorOut(BaseModel):
    detail: str


class SearchOut(BaseModel):
    query_id: str = Field(description="pass back to /api/articles, /api/events and /api/feedback")
    query: str
    confident: bool = Field(description="false: show 'no confident answer' and ask for feedback")
    confidence: float
    hits: list[Hit] = Field(description="one per article, best first (kb_service.models.Hit)")
    reading: dict[str, Any] | None = Field(None, description="how the query was read: cleaned text, questions, "
                                           "traditional characters converted, kinds of personal data removed")
    questions: list[dict[str, Any]] = Field(default_factory=list, description="per question, when the query asks several")
    outside_filter: str | None = Field(None, description="the category of the best answer when the filter excluded it")
    took_ms: float


class ArticleOut(BaseModel):
    id: str
    title: str
    category: str
    category_label: str
    tags: list[str]
    aliases: list[str]
    updated: str
    version: int
    owner: str
    markdown: str
    html: str = Field(description='rendered body; ```script blocks become <div class="kb-script">')
    open_recorded: bool = Field(description="an 'open' event was logged for the given query_id")


class EventIn(BaseModel):
    query_id: Text = Field(min_length=1, max_length=MAX_ID_CHARS)
    article_id: Text = Field(min_length=1, max_length=MAX_ID_CHARS)
    type: Literal["open", "copy"]


class FeedbackIn(BaseModel):
    query_id: Text = Field(min_length=1, max_length=MAX_ID_CHARS)
    article_id: Text | None = Field(None, max_length=MAX_ID_CHARS, description="null: nothing helped")
    resolved: bool
    comment: Text | None = Field(None, max_length=MAX_COMMENT_CHARS)


class RecordedOut(BaseModel):
    status: Literal["recorded"] = "recorded"


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str
    index_version: str | None = None
    articles: int | None = None
    passages: int | None = None
    model: str | None = None
    auth_required: bool


class ReloadOut(HealthOut):
    reloaded: bool = Field(description="false: the newest built index was already serving")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or unknown API key"},
    403: {"model": ErrorOut, "description": "the key's role may not use this route"},
    422: {"model": ErrorOut, "description": "invalid input"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "unknown id"}}


# ------------------------------------------------------------------------------ access control


@dataclass(frozen=True)
class AccessPolicy:
    """API keys and their roles. No keys at all means an open, localhost-only service."""

    keys: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        roles: dict[str, set[str]] = {}
        for role, raw in (
            ("agent", settings.agent_keys),
            ("editor", settings.editor_keys),
            ("analyst", settings.analyst_keys),
        ):
            for key in (k.strip() for k in raw.split(",")):
                if key:
                    roles.setdefault(key, set()).add(role)
        return cls(tuple((key, frozenset(r)) for key, r in roles.items()))

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def roles_for(self, presented: str) -> frozenset[str] | None:
        """Roles of a presented key; constant-time comparison so keys cannot be guessed by timing."""
        found: frozenset[str] | None = None
        for key, roles in self.keys:
            if secrets.compare_digest(key.encode(), presented.encode()):
                found = roles
        return found


def require_role(role: Role) -> Callable[[Request], str | None]:
    """Dependency for a route of `role`: 401 without/with an unknown key, 403 with the wrong role.

    Returns the caller's role (None when no keys are configured). Report routes use
    `dependencies=[Depends(require_role("analyst"))]`.
    """
    allowed = ROUTE_ACCESS[role]

    def check(request: Request) -> str | None:
        policy: AccessPolicy = request.app.state.access
        if not policy.enabled:
            return None
        scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
        roles = (
            policy.roles_for(presented.strip()) if scheme.lower() == "bearer" and presented.strip() else None
        )
        if roles is None:
            raise HTTPException(401, UNAUTHORIZED_MESSAGE, headers={"WWW-Authenticate": "Bearer"})
        granted = roles & allowed
        if not granted:
            raise HTTPException(403, f"此密钥（{'/'.join(sorted(roles))}）无权使用该功能，需要 {role} 角色")
        return sorted(granted)[0]

    check.__name__ = f"require_{role}"
    return check


class UnsafeBindError(RuntimeError):
    """Refusal to expose an unauthenticated service beyond this machine."""


def check_bind_allowed(settings: Settings, host: str) -> None:
    """Without API keys anyone who can reach the port could read the log and reload the index,
    so an open service may only listen on the loopback interface."""
    if AccessPolicy.from_settings(settings).enabled:
        return
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return
    try:
        if ipaddress.ip_address(name).is_loopback:
            return
    except ValueError:
        pass
    raise UnsafeBindError(
        f"refusing to listen on {host!r} without API keys: anyone on the network could use the service. "
        "Either bind 127.0.0.1, or configure keys (KB_AGENT_KEYS, KB_EDITOR_KEYS, KB_ANALYST_KEYS)."
    )


# ------------------------------------------------------------------------------ article HTML

# Fenced code gets this class prefix instead of markdown's "language-". It is random per process,
# so an editor cannot type it: only a real ```script block (whose text `kb check` audits for
# forbidden phrases) becomes the panel's copyable <div class="kb-script">; a raw
# <div class="kb-script"> or <code class="language-script"> in an article loses its class.
_FENCE_CLASS_PREFIX = f"kb{secrets.token_hex(8)}-"
_SCRIPT_MARKER = f"{_FENCE_CLASS_PREFIX}script"
_SCRIPT_BLOCK = re.compile(rf'<pre><code class="{_SCRIPT_MARKER}">(.*?)</code></pre>', re.DOTALL)
_SCRIPT_DIV_MARKED = f'<div class="{_SCRIPT_MARKER}">'

# What the Markdown renderer (fenced_code, tables) produces, and nothing else: raw HTML in an
# article is untrusted (anyone who can edit an article could otherwise run script in every
# agent's panel), so the rendered body goes through an allow-list sanitiser before it is served.
ARTICLE_TAGS = frozenset({
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote",
    "ul", "ol", "li", "em", "strong", "code", "pre", "a",
    "table", "thead", "tbody", "tr", "th", "td", "div",
})
# Dropped with their content: what is inside them is code or widgets, never article text.
ARTICLE_DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "object", "embed", "applet", "noscript", "noembed", "noframes",
    "template", "textarea", "select", "svg", "math", "frame", "frameset",
})
ARTICLE_URL_SCHEMES = frozenset({"http", "https", "mailto"})  # relative URLs pass as well
_ALIGN = {"align": {"left", "center", "right"}}

_article_cleaner = nh3.Cleaner(
    tags=set(ARTICLE_TAGS),
    clean_content_tags=set(ARTICLE_DROPPED_WITH_CONTENT),
    attributes={"a": {"href", "title"}},
    tag_attribute_values={"div": {"class": {_SCRIPT_MARKER}}, "th": _ALIGN, "td": _ALIGN},
    url_schemes=set(ARTICLE_URL_SCHEMES),
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def _script_div(match: re.Match[str]) -> str:
    # Content is already HTML-escaped by the markdown renderer; keep paragraphs and line breaks
    # as markup so the panel's copy button reproduces them.
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", match.group(1)) if p.strip()]
    body = "".join("<p>" + p.replace("\n", "<br>\n") + "</p>" for p in paragraphs)
    return f"{_SCRIPT_DIV_MARKED}{body}</div>"


@functools.lru_cache(maxsize=512)
def render_article_html(markdown_text: str) -> str:
    """Markdown → safe HTML for the panel; cached because the same few articles are opened all day.

    Sanitised on the server (not only in the panel) so every client of /api/articles gets HTML
    without scripts, event handlers, frames, forms or javascript: links.
    """
    rendered = markdown_lib.markdown(
        markdown_text,
        extensions=["fenced_code", "tables"],
        extension_configs={
            "fenced_code": {"lang_prefix": _FENCE_CLASS_PREFIX},
            # align="…" rather than style="text-align: …": no style attribute is let through.
            "tables": {"use_align_attribute": True},
        },
        output_format="html",
    )
    cleaned = _article_cleaner.clean(_SCRIPT_BLOCK.sub(_script_div, rendered))
    return cleaned.replace(_SCRIPT_DIV_MARKED, '<div class="kb-script">')


# ------------------------------------------------------------------------------ errors


def _validation_message(exc: RequestValidationError) -> str:
    parts: list[str] = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return "请求体不是合法的 JSON"
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
        where = ".".join(loc)
        message = error.get("msg", "invalid value")
        if error.get("type") == "missing":
            message = "field required"
        elif "input" in error:
            # The echoed input is masked first (it may hold a phone or an ID), then cut.
            typed = json.dumps(error["input"], ensure_ascii=False, default=str)[:400]
            message = f"{message} (got {mask_personal_data(typed)[:80]})"
        parts.append(f"{where}: {message}" if where else message)
    return _encodable("请求参数有误：" + "; ".join(parts or ["invalid request"]))


def _encodable(text: str) -> str:
    """Text that encodes as UTF-8: a lone surrogate echoed from the input becomes `\\ud800`."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": _validation_message(exc)}, status_code=422)


def _log_failure(message: str, exc: BaseException, *args: object) -> None:
    """Log where an error happened, not what it says: exception messages may quote a query or a
    feedback comment (personal data), so only the exception type and the stack are logged."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    log.error(message + ": %s\n%s", *args, type(exc).__name__, stack.rstrip())


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    _log_failure("unhandled error on %s %s", exc, request.method, request.url.path)
    return JSONResponse({"detail": "服务内部错误，请稍后重试；如持续出现请联系知识库管理员"}, status_code=500)


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(422, message)


# ------------------------------------------------------------------------------ app


def _engine(request: Request) -> Any:
    return request.app.state.engine


def _store(request: Request) -> UsageLogStore:
    return request.app.state.store


def _short_header(value: str | None) -> str | None:
    """An agent or session id as it may be stored: any client can set these headers, so one
    that holds personal data (a phone typed as an agent id) is stored masked, with a short
    digest of the original so that distinct ids still count apart in the reports."""
    value = (value or "").strip()[:MAX_ID_CHARS]
    if not value:
        return None
    masked = mask_personal_data(value)
    if masked == value:
        return value
    return f"{masked}#{hashlib.sha256(value.encode('utf-8', 'replace')).hexdigest()[:8]}"


def _split_tags(tags: list[str] | None) -> list[str] | None:
    found = [t.strip() for raw in tags or () for t in raw.split(",") if t.strip()]
    return found or None


async def _query_logged(request: Request, query_id: str) -> bool:
    """Whether the search `query_id` is in the log, waiting a little for another worker's.

    Ids this process issued are known at once (the store counts queued ones). With several
    workers the search may have been answered by another process whose background writer has not
    committed it yet; an agent's click must not be refused for that, so such an id is waited for
    up to `query_id_wait_seconds` — with asyncio.sleep, holding no worker thread, so bogus ids
    cannot starve searches. A single-worker `kb serve` (the only writer) does not wait at all.
    """
    store = _store(request)
    if await run_in_threadpool(store.has_query, query_id):
        return True
    state = request.app.state
    wait = float(state.settings.query_id_wait_seconds) if state.shared_log else 0.0
    if wait <= 0 or state.query_id_waiters >= MAX_QUERY_ID_WAITERS:
        return False
    state.query_id_waiters += 1
    try:
        deadline = time.monotonic() + wait
        delay = 0.05
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(delay, left))
            if await run_in_threadpool(store.has_query, query_id):
                return True
            delay = min(delay * 2, 0.25)
        return False
    finally:
        state.query_id_waiters -= 1


async def _known_query(request: Request, query_id: str) -> None:
    if not await _query_logged(request, query_id):
        raise HTTPException(404, f"未知的 query_id：{mask_personal_data(query_id)}（请先搜索，再记录打开、复制或反馈）")


_ABSOLUTE_PATH = re.compile(r"(?:[A-Za-z]:)?[\\/](?:[^\s'\"\\/:]+[\\/])*([^\s'\"\\/:]*)")


def _without_paths(text: str) -> str:
    """An error message for a caller: absolute file paths shortened to their last part."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "…", text)


def _known_article(engine: Any, article_id: str) -> Any:
    article = engine.article(article_id)
    if article is None:
        raise HTTPException(404, f"没有找到文章：{mask_personal_data(article_id)}（可能已被删除或更名）")
    return article


def _info(engine: Any, policy: AccessPolicy) -> dict[str, Any]:
    # worker_pid: which `kb serve` worker answered (operators and tests tell workers apart by it)
    return {"status": "ok", **engine.info(), "auth_required": policy.enabled, "worker_pid": os.getpid()}


def _register_report_routes(app: FastAPI) -> None:
    """Analyst report routes (/api/reports/*) live in the `kb_service.reports` package.

    It provides `register_report_routes(app)` and guards its routes with
    `Depends(require_role("analyst"))`. Until it exists the API simply has no report routes;
    a reports module with a real import error still fails loudly.
    """
    try:
        reports = importlib.import_module(f"{__package__}.reports")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.reports":
            raise
        return
    register = getattr(reports, "register_report_routes", None)
    if register is None:
        log.warning("kb_service.reports has no register_report_routes(app): no /api/reports routes")
        return
    register(app)


WARM_UP_QUERY = "交强险理赔材料"


def _warm_up(engine: Any) -> None:
    """One untimed, unlogged search before serving: the first search loads the tokenizer
    dictionary and the embedding model (seconds), which must not land on an agent — nor on
    the first requests after a rolling worker restart."""
    started = time.perf_counter()
    try:
        engine.search(WARM_UP_QUERY, k=1)
    except Exception:
        log.warning("warm-up search failed; the first real search will be slow", exc_info=True)
        return
    log.info("search engine warm in %.0f ms", (time.perf_counter() - started) * 1000)


def create_app(
    settings: Settings, engine: Any = None, store: UsageLogStore | None = None, *, shared_log: bool = True
) -> FastAPI:
    """Build the app; opens the engine and the SQLite log unless given (tests pass their own).

    `shared_log`: other processes (uvicorn workers) may write the same usage log, so a click with a
    search id this process did not issue waits up to `query_id_wait_seconds` for it. False when
    this process is the only writer: unknown ids are answered 404 at once.
    """
    if engine is None:
        from .engine import SearchEngine

        engine = SearchEngine.open(settings)
    if store is None:
        store = SQLiteLogStore(settings.log_db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_access_log()  # after uvicorn configured logging: our path-only access lines
        await run_in_threadpool(_warm_up, app.state.engine)
        yield
        # Drain the usage log: a clean shutdown (SIGINT/SIGTERM) loses no record.
        await run_in_threadpool(app.state.store.close)
        close = getattr(app.state.engine, "close", None)
        if callable(close):
            await run_in_threadpool(close)

    app = FastAPI(
        title="kb_service",
        summary="车险客服知识库检索 API",
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.store = store
    app.state.access = AccessPolicy.from_settings(settings)
    app.state.shared_log = shared_log
    app.state.query_id_waiters = 0
    # Outermost of the app's own middleware: key presence and body size before anything reads the body.
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes, policy=app.state.access)
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected_error)

    agent = [Depends(require_role("agent"))]
    editor = [Depends(require_role("editor"))]

    @app.get(
        "/api/search", response_model=SearchOut, dependencies=agent, responses=ERROR_RESPONSES, tags=["agent"]
    )
    def search(
        request: Request,
        q: Annotated[str, Query(description="what the agent typed")] = "",
        k: Annotated[int, Query(ge=1, le=MAX_K, description="number of articles")] = 5,
        category: Annotated[str | None, Query(description=f"one of {', '.join(CATEGORIES)}")] = None,
        tags: Annotated[
            list[str] | None, Query(description="repeat or comma-separate; all must match")
        ] = None,
        truncate: Annotated[bool, Query(description="text over the limit (or cut by the caller): search its first question")] = False,
        x_agent_id: Annotated[str | None, Header()] = None,
        x_session_id: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Search the knowledge base; the query and what was shown are logged under `query_id`.

        The query is read first (query_reading): a pasted message is cut to its question, several
        questions are searched one by one; `reading` says how, `questions` lists each one's hits."""
        text = q.strip()
        category = (category or "").strip() or None
        if category is not None and category not in CATEGORIES:
            raise _unprocessable(f"未知分类 {category!r}，可选：{', '.join(CATEGORIES)}")
        eng = _engine(request)
        index_version = str(eng.info().get("index_version", ""))
        started = time.perf_counter()
        try:
            response: SearchResponse = eng.search(text, k=k, category=category, tags=_split_tags(tags),
                                                  truncate=truncate)
        except ValueError as exc:  # engine.QueryError: the engine's own query rules
            raise _unprocessable(str(exc)) from exc
        took_ms = (time.perf_counter() - started) * 1000
        query_id = uuid.uuid4().hex
        if request.scope.get(HEAD_SCOPE_KEY):  # HEAD: same status and headers, nothing logged
            return {"query_id": query_id, **response.to_dict(), "took_ms": round(took_ms, 2)}
        try:
            _store(request).record_query(
                QueryLog(
                    query_id=query_id,
                    ts=time.time(),
                    agent_id=_short_header(x_agent_id),
                    session_id=_short_header(x_session_id),
                    query_text=text,
                    confident=response.confident,
                    n_hits=len(response.hits),
                    latency_ms=took_ms,
                    index_version=index_version,
                    impressions=[
                        Impression(rank, h.article_id, h.version, h.passage_id, float(h.score))
                        for rank, h in enumerate(response.hits, start=1)
                    ],
                )
            )
        except Exception as exc:  # the agent still gets the answer if the log is broken
            _log_failure("could not log query %s", exc, query_id)
        return {"query_id": query_id, **response.to_dict(), "took_ms": round(took_ms, 2)}

    @app.get(
        "/api/articles/{article_id}",
        response_model=ArticleOut,
        dependencies=agent,
        responses={**ERROR_RESPONSES, **NOT_FOUND},
        tags=["agent"],
    )
    async def article(
        request: Request,
        article_id: str,
        query_id: Annotated[
            str | None, Query(max_length=MAX_ID_CHARS, description="logs an 'open' event")
        ] = None,
    ) -> dict[str, Any]:
        """Full article. An unknown `query_id` does not block reading: the event is just not logged."""
        art = await run_in_threadpool(_known_article, _engine(request), article_id)
        store = _store(request)
        recorded = False
        if query_id and not request.scope.get(HEAD_SCOPE_KEY) and await _query_logged(request, query_id):
            await run_in_threadpool(store.record_event, query_id, art.id, "open")
            recorded = True
        html = await run_in_threadpool(render_article_html, art.markdown)
        return {
            "id": art.id,
            "title": art.title,
            "category": art.category,
            "category_label": CATEGORIES.get(art.category, art.category),
            "tags": list(art.tags),
            "aliases": list(art.aliases),
            "updated": str(art.updated),
            "version": art.version,
            "owner": art.owner,
            "markdown": art.markdown,
            "html": html,
            "open_recorded": recorded,
        }

    @app.post(
        "/api/events",
        response_model=RecordedOut,
        dependencies=agent,
        responses={**ERROR_RESPONSES, **NOT_FOUND},
        tags=["agent"],
    )
    async def event(request: Request, body: EventIn) -> RecordedOut:
        """An agent opened an article or copied a script from it."""
        await _known_query(request, body.query_id)

        def record() -> None:
            _known_article(_engine(request), body.article_id)
            _store(request).record_event(body.query_id, body.article_id, body.type)

        await run_in_threadpool(record)
        return RecordedOut()

    @app.post(
        "/api/feedback",
        response_model=RecordedOut,
        dependencies=agent,
        responses={**ERROR_RESPONSES, **NOT_FOUND},
        tags=["agent"],
    )
    async def feedback(request: Request, body: FeedbackIn) -> RecordedOut:
        """Did an article (or, with article_id null, the search as a whole) resolve the customer's question?"""
        await _known_query(request, body.query_id)

        def record() -> None:
            if body.article_id is not None:
                _known_article(_engine(request), body.article_id)
            comment = (body.comment or "").strip() or None  # never logged, only stored (masked)
            _store(request).record_feedback(body.query_id, body.article_id, body.resolved, comment)

        await run_in_threadpool(record)
        return RecordedOut()

    @app.get("/api/health", response_model=HealthOut, tags=["ops"])
    def health(request: Request) -> dict[str, Any]:
        """Open to everyone (load balancers, the panel's status line)."""
        return _info(_engine(request), request.app.state.access)

    @app.post(
        "/api/admin/reload",
        response_model=ReloadOut,
        dependencies=editor,
        responses=ERROR_RESPONSES,
        tags=["editor"],
    )
    def reload(request: Request) -> dict[str, Any]:
        """Switch to the newest built index; searches in flight finish on the old one."""
        eng = _engine(request)
        try:
            changed = bool(eng.reload())
        except Exception as exc:
            log.exception("index reload failed")  # the server log keeps the full story, paths included
            problem = _encodable(_without_paths(str(exc)))[:300] or type(exc).__name__
            raise HTTPException(503, f"重新加载索引失败，仍在使用原索引：{problem}") from exc
        return {"reloaded": changed, **_info(eng, request.app.state.access)}

    # --- analyst reports: /api/reports/* ----------------------------------------------
    _register_report_routes(app)

    # --- the side panel ------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def panel() -> FileResponse:
        index = STATIC_DIR / "index.html"
        if not index.is_file():
            raise HTTPException(404, "panel not installed (kb_service/static/index.html is missing)")
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory (`--factory`): settings from KB_* environment variables."""
    return create_app(Settings())


# ------------------------------------------------------------------------------ serving


def _article_state(settings: Settings) -> dict[str, tuple[int, int]]:
    files = list(Path(settings.articles_dir).glob("*.md")) + [Path(settings.lexicon_path)]
    state: dict[str, tuple[int, int]] = {}
    for path in files:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        state[str(path)] = (st.st_mtime_ns, st.st_size)
    return state


class ArticleWatcher(threading.Thread):
    """Polls the articles folder and calls `on_change` after an edit, add or delete.

    Polling (not inotify) because articles often live on network shares where events are lost.
    A failing rebuild is logged and the old index keeps serving; the next edit tries again.
    """

    def __init__(
        self, settings: Settings, on_change: Callable[[], None], interval: float | None = None
    ):
        super().__init__(name="kb-article-watcher", daemon=True)
        self.settings = settings
        self.on_change = on_change
        self.interval = settings.watch_interval_seconds if interval is None else interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        last = _article_state(self.settings)
        while not self._stop_event.wait(self.interval):
            current = _article_state(self.settings)
            if current == last:
                continue
            last = current
            try:
                self.on_change()
            except Exception:
                log.exception(
                    "rebuilding the index after an article change failed; the old index keeps serving"
                )

    def stop(self) -> None:
        self._stop_event.set()


def rebuild_index(
    settings: Settings,
    cache: ArticleCache | None = None,
    on_switch: Callable[[], None] | None = None,
    embedder: Embedder | None = None,
) -> bool:
    """Build after an article edit; True when a new index generation was written.

    `on_switch` runs as soon as the edit is in the index (so it can be served), before a full
    merge that the update may have made due.
    """
    from .indexing import build_index

    report = build_index(settings, cache=cache, embedder=embedder)
    if report.full_merge_due:
        if on_switch is not None:
            on_switch()
        log.info("merging index segments: many outdated rows")
        report = build_index(settings, full=True, cache=cache, embedder=embedder)
    for problem in report.problems:
        log.warning("article problem: %s", problem)
    log.info(
        "index %s: added %s changed %s removed %s",
        report.generation,
        report.added,
        report.changed,
        report.removed,
    )
    return not report.unchanged


def _export_settings(settings: Settings) -> None:
    """Worker processes build their app from the environment, so CLI overrides must go there."""
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        os.environ[f"KB_{name.upper()}"] = (
            value
            if isinstance(value, str)
            else (json.dumps(value) if isinstance(value, list | dict) else str(value))
        )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn settings of `kb serve`: h11 with a request head limit large enough for long
    URL-encoded Chinese queries, and JSON (not plain text) for the 400s uvicorn sends itself."""
    options: dict[str, Any] = {"h11_max_incomplete_event_size": settings.max_request_head_bytes}
    if JSONErrorH11Protocol is not None:
        options["http"] = JSONErrorH11Protocol
    return options


WORKER_HEALTHCHECK_SECONDS = 30


class SupervisorEmbedder:
    """The `--watch` supervisor's query embedder, loaded once on first use (thread-safe).

    A failed load is not kept: the next rebuild tries again (and build_index loads its own)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None

    def get(self) -> Embedder | None:
        with self._lock:
            if self._embedder is None:
                from .embedding import load_embedder

                try:
                    embedder = load_embedder(
                        self.settings.embedding_model,
                        self.settings.embedding_runtime,
                        Path(self.settings.index_dir) / "models",
                        self.settings.threads,
                    )
                    embedder.encode([WARM_UP_QUERY])  # models load on first use: pay it here
                    self._embedder = embedder
                except Exception:
                    log.warning("loading the embedder for re-indexing failed", exc_info=True)
            return self._embedder


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    watch: bool = False,
) -> None:
    """Run the API with uvicorn; `watch` rebuilds the index when articles change.

    Every worker follows `indexes/CURRENT` (`kb_service.workers.IndexPoller`) and reloads its
    engine in place when a new generation is named, so an edit (or a `kb index` run) is served
    without restarting anything. One worker: the app is built here and the watcher also reloads
    it directly. Several workers: uvicorn's supervisor (this process) runs the watcher and only
    rebuilds; the spawned workers pick the new generation up, and die with the supervisor.
    """
    import uvicorn

    from .workers import SUPERVISOR_PID_ENV, attach_index_poller

    host = settings.host if host is None else host
    port = settings.port if port is None else port
    check_bind_allowed(settings, host)
    watcher: ArticleWatcher | None = None
    try:
        if workers <= 1:
            app = create_app(settings, shared_log=False)  # the only writer of its log: no waiting for ids
            attach_index_poller(app, settings)
            if watch:

                parsed = ArticleCache()  # the watcher re-parses only the files an editor touched

                def rebuild_and_reload() -> None:
                    engine = app.state.engine
                    if rebuild_index(settings, parsed, on_switch=engine.reload, embedder=engine.embedder):
                        app.state.engine.reload()

                watcher = ArticleWatcher(settings, rebuild_and_reload)
                watcher.start()
            uvicorn.Server(uvicorn.Config(app, host=host, port=port, **uvicorn_options(settings))).run()
        else:
            _export_settings(settings)
            os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
            if watch:
                parsed = ArticleCache()
                # Load the embedder once, in the background: an edit then re-indexes in about a second
                # instead of paying the model load (seconds) each time.
                embedder = SupervisorEmbedder(settings)
                threading.Thread(target=embedder.get, name="kb-embedder-preload", daemon=True).start()

                def rebuild_for_workers() -> None:
                    rebuild_index(settings, parsed, embedder=embedder.get())  # workers' pollers switch to it

                watcher = ArticleWatcher(settings, rebuild_for_workers)
                watcher.start()
            uvicorn.run(
                "kb_service.workers:create_worker_app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                # A worker loading its model can miss uvicorn's 5 s ping on a busy host and be killed.
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
                **uvicorn_options(settings),
            )
    finally:
        if watcher is not None:
            watcher.stop()

__all__ = [
    "AccessPolicy",
    "ArticleWatcher",
    "UnsafeBindError",
    "check_bind_allowed",
    "create_app",
    "create_app_from_env",
    "render_article_html",
    "require_role",
    "serve",
]
