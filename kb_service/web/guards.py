"""HTTP hardening in front of the API: what must happen before a route reads anything.

* `RequestGuard`, a pure ASGI middleware:
  - POST/PUT/PATCH/DELETE under /api/ need a known API key (when keys are configured) *before*
    the body is read; the route still checks the key's role (403);
  - request bodies are capped at `KB_MAX_BODY_BYTES`: 413 as soon as Content-Length says so, or
    as soon as the streamed body passes the cap (nothing is buffered beyond it);
  - HEAD works on every GET route (answered as GET without a body; HEAD never logs a search);
  - one access-log line per request: method, path *without* the query string, status, duration.
* `install_access_log()`: drops uvicorn's own access lines (they carry the query string, i.e.
  what the agent typed) and sends ours where uvicorn's went.
* `JSONErrorH11Protocol`: uvicorn's h11 protocol answering its own 400s (malformed request line,
  invalid bytes, oversized head) with a JSON body instead of plain text.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException

from kb_service.masking import mask_personal_data

access_log = logging.getLogger("kb_service.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNAUTHORIZED_MESSAGE = "缺少或无效的 API 密钥：请在请求头中提供 Authorization: Bearer <key>"
HEAD_SCOPE_KEY = "kb_service.head"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def too_large_message(limit: int) -> str:
    return f"请求体过大：最多 {limit:,} 字节"


class BodyTooLarge(HTTPException):
    """Raised from `receive` when the streamed body passes the cap; FastAPI re-raises HTTPExceptions
    from body parsing, so the app's handler answers 413 JSON."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit), headers={"Connection": "close"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value
    return None


async def send_json(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """See the module docstring. `policy` is the app's AccessPolicy (duck-typed: enabled, roles_for)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, policy: Any) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_seen: list[int] = []
        method = scope["method"]
        path = scope.get("path", "")

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(int(message["status"]))
            await send(message)

        try:
            await self._handle(scope, receive, send_logged)
        finally:
            status = status_seen[0] if status_seen else 0
            # Never the query string, never the client address: what the agent typed is personal data.
            # The path can carry typed data too (/api/articles/<whatever was typed>): masked like a query.
            access_log.info("%s %s %s %.1fms", method, mask_personal_data(path), status or "-",
                            (time.perf_counter() - started) * 1000)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        path = scope.get("path", "")
        limit = self.max_body_bytes

        if method in _WRITE_METHODS and path.startswith("/api/") and self.policy.enabled:
            scheme, _, presented = (_header(scope, b"authorization") or b"").decode("latin-1").partition(" ")
            presented = presented.strip()
            if scheme.lower() != "bearer" or not presented or self.policy.roles_for(presented) is None:
                await send_json(send, 401, UNAUTHORIZED_MESSAGE,
                                {"WWW-Authenticate": "Bearer", "Connection": "close"})
                return

        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await send_json(send, 400, "Content-Length 无效", {"Connection": "close"})
                return
            if length > limit:
                await send_json(send, 413, too_large_message(limit), {"Connection": "close"})
                return

        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        if method == "HEAD":
            scope = dict(scope, method="GET")
            scope[HEAD_SCOPE_KEY] = True

            async def send_without_body(message: Message) -> None:
                if message["type"] == "http.response.body":
                    if message.get("more_body", False):
                        return
                    message = {"type": "http.response.body", "body": b""}
                await send(message)

            await self._call_app(scope, capped_receive, send_without_body, limit)
            return
        await self._call_app(scope, capped_receive, send, limit)

    async def _call_app(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except BodyTooLarge:
            # A route that read the body outside FastAPI's parsing (none today): answer here.
            if not started:
                await send_json(send, 413, too_large_message(limit), {"Connection": "close"})


class _DropUvicornAccess(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def install_access_log() -> None:
    """Replace uvicorn's access lines (full URL with the query string) with ours (path only).

    Runs at app startup, after uvicorn configured logging. When uvicorn's access log is off
    (`--no-access-log`) ours stays off too, unless the operator configured kb_service.access.
    """
    uvicorn_access = logging.getLogger("uvicorn.access")
    wanted = bool(uvicorn_access.handlers)
    if not any(isinstance(f, _DropUvicornAccess) for f in uvicorn_access.filters):
        uvicorn_access.addFilter(_DropUvicornAccess())
    if wanted and not access_log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


# --- uvicorn's own 400s as JSON ------------------------------------------------------------------

try:  # uvicorn is a runtime dependency of `kb serve`, not of the library
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol
except ImportError:  # pragma: no cover
    H11Protocol = None  # type: ignore[assignment,misc]


if H11Protocol is not None:

    class JSONErrorH11Protocol(H11Protocol):  # type: ignore[misc,valid-type]
        """uvicorn's h11 protocol; requests it refuses before the app (bad request line, invalid
        bytes, a head over h11_max_incomplete_event_size) get `{"detail": ...}` instead of text."""

        def send_400_response(self, msg: str) -> None:
            body = json.dumps({"detail": f"无效的 HTTP 请求：{msg}"}, ensure_ascii=False).encode("utf-8")
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            try:
                output = self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request"))
                self.transport.write(output)
                self.transport.write(self.conn.send(h11.Data(data=body)))
                self.transport.write(self.conn.send(h11.EndOfMessage()))
            except h11.LocalProtocolError:  # the connection is past the point of answering
                pass
            self.transport.close()

else:  # pragma: no cover
    JSONErrorH11Protocol = None  # type: ignore[assignment,misc]


__all__ = [
    "BodyTooLarge",
    "HEAD_SCOPE_KEY",
    "JSONErrorH11Protocol",
    "RequestGuard",
    "UNAUTHORIZED_MESSAGE",
    "install_access_log",
]
