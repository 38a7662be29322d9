"""Fuzzing a real server: `python -m kb_service serve` (uvicorn, as operators run it) on 127.0.0.1.

Thousands of malformed requests from a seeded generator over every route: bad JSON, wrong types,
huge strings, lone surrogates, control characters, unknown fields, bad dates, wrong methods,
oversized bodies, raw bytes in the request line. Nothing may answer 5xx, every error must be
`{"detail": "<str>"}` JSON, and the server's output must not contain the personal data planted in
query strings and feedback comments.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from _service_fixtures import build_corpus_index, corpus_settings, free_port, settings_env, stop_server

SEED = 20261206
REQUESTS = 2400
RAW_REQUESTS = 300  # of REQUESTS, sent over a plain socket (bytes httpx would not send)
STARTUP_SECONDS = 90
MAX_BODY = 64 * 1024

PLANTED = ["13912345678", "18600001111", "110101199003074258", "44030519851231002X", "6222021234567890123"]
ROUTES_GET = ["/api/search", "/api/articles/third-party", "/api/articles/ghost", "/api/health",
              "/api/reports/frequency", "/api/reports/articles", "/api/reports/gaps", "/api/reports/nope", "/"]
ROUTES_POST = ["/api/events", "/api/feedback", "/api/admin/reload"]
ARTICLE_IDS = ["third-party", "vehicle-damage", "claim-materials", "privacy-check", "ghost", ""]



@dataclass
class FuzzServer:
    process: subprocess.Popen
    url: str
    port: int
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    root = tmp_path_factory.mktemp("fuzz")
    settings = corpus_settings(build_corpus_index(root), root / "var" / "usage.sqlite3")
    port = free_port()
    log_path = root / "server.log"
    env = {**os.environ, **settings_env(settings), "KB_HOST": "127.0.0.1", "KB_PORT": str(port)}
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen([sys.executable, "-m", "kb_service", "serve", "--port", str(port)], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
    server = FuzzServer(process, f"http://127.0.0.1:{port}", port, log_path)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{server.output()}")
            try:
                if httpx.get(f"{server.url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready:\n{server.output()}")
            time.sleep(0.2)
        yield server
    finally:
        stop_server(process)


# --- generators -------------------------------------------------------------------------------------


def _text(rng: random.Random) -> str:
    kind = rng.randrange(10)
    if kind == 0:
        return "".join(chr(rng.randrange(0, 0x20)) for _ in range(rng.randrange(1, 20)))  # control chars
    if kind == 1:
        return rng.choice(["三者险", "理赔", "水淹车"]) * rng.randrange(300, 3000)  # over the query limit
    if kind == 2:
        return "客户电话" + rng.choice(PLANTED) + " 三者险赔多少"
    if kind == 3:
        # any code point but surrogates (those are sent as JSON escapes, see SURROGATE_SNIPPETS)
        return "".join(chr(c if not 0xD800 <= c <= 0xDFFF else 0xFFFD)
                       for c in (rng.randrange(0x20, 0x2FFFF) for _ in range(rng.randrange(1, 40))))
    if kind == 4:
        return rng.choice(["", " ", "\u3000", "\u200b", "\ufeff", "%", "%zz", "\\", "'\"<script>"])
    if kind == 5:
        return "x" * rng.choice([129, 1001, 5000, 20000])
    return rng.choice(["三者险", "车被水淹了能赔吗", "理赔材料", "身份证 " + rng.choice(PLANTED), "abc", "1"])


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, 1e308, -0.0, 3.5])
    if kind in (3, 4, 5):
        return _text(rng)
    if kind == 6:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_text(rng)[:20]: _json_value(rng, depth + 1) for _ in range(rng.randrange(4))}


SURROGATE_SNIPPETS = ['"\\ud800"', '"a\\udfffb"', '"\\ud83d"', '"\\u0000"', '"\\x41"', "NaN", "Infinity", "1e99999"]


def _body(rng: random.Random, path: str, qid: str) -> tuple[bytes, dict[str, str]]:
    headers = {"Content-Type": rng.choice(["application/json"] * 6 + ["text/plain", "application/x-www-form-urlencoded",
                                                                       "application/json; charset=latin-1", ""])}
    kind = rng.randrange(12)
    base: dict[str, Any] = (
        {"query_id": qid, "article_id": rng.choice(ARTICLE_IDS), "type": rng.choice(["open", "copy", "print", 1])}
        if path == "/api/events"
        else {"query_id": qid, "article_id": rng.choice(ARTICLE_IDS + [None]), "resolved": rng.choice([True, False]),
              "comment": "回访客户 " + rng.choice(PLANTED)}
    )
    if kind == 0:  # valid shape, sometimes a real search id
        return json.dumps(base, ensure_ascii=False).encode(), headers
    if kind == 1:  # a field of the wrong type or value
        key = rng.choice(list(base))
        base[key] = _json_value(rng)
        return json.dumps(base, ensure_ascii=False).encode(), headers
    if kind == 2:  # unknown fields, missing fields
        base.pop(rng.choice(list(base)))
        base[_text(rng)[:30] or "x"] = _json_value(rng)
        return json.dumps(base, ensure_ascii=False).encode(), headers
    if kind == 3:  # lone surrogates and friends spelled in the JSON text itself
        key = rng.choice(list(base))
        raw = json.dumps({k: v for k, v in base.items() if k != key}, ensure_ascii=False)
        snippet = rng.choice(SURROGATE_SNIPPETS)
        return (raw[:-1] + f', "{key}": {snippet}}}').encode(), headers
    if kind == 4:  # not JSON at all
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))), headers
    if kind == 5:  # truncated JSON
        raw = json.dumps(base, ensure_ascii=False).encode()
        return raw[: rng.randrange(len(raw))], headers
    if kind == 6:  # huge strings within and beyond the body cap
        base["comment" if path == "/api/feedback" else "article_id"] = "长" * rng.choice([999, 1001, 20000])
        return json.dumps(base, ensure_ascii=False).encode(), headers
    if kind == 7:  # oversized bodies, up to a few MB
        return b'{"query_id": "' + b"x" * rng.choice([MAX_BODY, 300_000, 3_000_000]) + b'"}', headers
    if kind == 8:  # deep nesting
        depth = rng.choice([50, 5000])
        return (b"[" * depth + b"]" * depth), headers
    if kind == 9:  # invalid UTF-8 inside a JSON string
        return b'{"query_id": "\xff\xfe\xed\xa0\x80", "resolved": true}', headers
    return json.dumps(_json_value(rng), ensure_ascii=False).encode(), headers


BAD_DATES = ["9999-12-31", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "0000-00-00", "2026-13-45",
             "2026-02-30", "yesterday", "", "2026-11-25T25:61", "2026-11-25T10:00:00+99:00", "1" * 40,
             "2026-11-25", "2026-11-01T08:00", "0001-01-02", "9999-12-30", "-1", "２０２６-１１-２５"]


def _params(rng: random.Random, path: str, qid: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if path == "/api/search":
        params["q"] = _text(rng)[:6000]  # httpx refuses URLs over 64 KB; longer ones go raw
        if rng.random() < 0.5:
            params["k"] = rng.choice(["0", "1", "20", "21", "-5", "abc", "1e3", "99999999999999999999", ""])
        if rng.random() < 0.3:
            params["category"] = rng.choice(["coverage", "claims", "nope", "", _text(rng)[:50]])
        if rng.random() < 0.3:
            params["tags"] = [_text(rng)[:50] for _ in range(rng.randrange(1, 4))]
        if rng.random() < 0.3:
            params["truncate"] = rng.choice(["1", "true", "maybe", ""])
    elif path.startswith("/api/articles/"):
        if rng.random() < 0.7:
            params["query_id"] = rng.choice([qid, "x" * 200, _text(rng)[:100]])
    elif path.startswith("/api/reports/"):
        for key in ("since", "until"):
            if rng.random() < 0.7:
                params[key] = rng.choice(BAD_DATES)
    if rng.random() < 0.2:
        params[_text(rng)[:20] or "x"] = _text(rng)[:200]  # unknown parameter
    return params


def _raw_request(rng: random.Random) -> bytes:
    path = rng.choice(ROUTES_GET + ROUTES_POST)
    junk = bytes(rng.choice([rng.randrange(0x80, 0x100), rng.randrange(0, 0x20), rng.randrange(0x21, 0x7F)])
                 for _ in range(rng.randrange(1, 60)))
    phone = rng.choice(PLANTED).encode()
    kind = rng.randrange(5)
    if kind == 0:
        target = path.encode() + b"?q=" + junk + phone
    elif kind == 1:
        target = path.encode() + b"?q=" + "客户".encode() + phone + b"%ED%A0%80" + junk
    elif kind == 2:  # realistic long Chinese query, URL-encoded (about 9 KB): must reach the app
        target = b"/api/search?q=" + ("%E9%99%A9" * 1000).encode() + b"&x=" + phone
    elif kind == 3:  # a request line over uvicorn's head limit
        target = b"/api/search?q=" + phone + b"a" * 300_000
    else:
        target = b"/api/articles/" + junk + b"?query_id=" + phone
    method = rng.choice([b"GET", b"GET", b"HEAD", b"POST", b"BREW", b"G\xc3\xa9T"])
    return method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


# --- the run ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    transport_errors: Counter = field(default_factory=Counter)


def _check(outcome: Outcome, label: str, method: str, status: int, content_type: str, body: bytes) -> None:
    outcome.statuses[status] += 1
    if status >= 500:
        outcome.problems.append(f"{label}: {status} {body[:200]!r}")
    elif status >= 400 and method != "HEAD":
        try:
            detail = json.loads(body.decode("utf-8"))["detail"]
            ok = content_type.startswith("application/json") and isinstance(detail, str) and detail
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            outcome.problems.append(f"{label}: {status} {content_type} {body[:200]!r}")


def _send_raw(port: int, request: bytes) -> tuple[int, str, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before taking it all
            sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.decode("latin-1").lower().split(": ", 1) for line in lines[1:] if b": " in line)
    return status, headers.get("content-type", ""), body


def test_fuzz_real_server(fuzz_server: FuzzServer) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    outcome = Outcome()
    with httpx.Client(base_url=fuzz_server.url, timeout=20) as http:
        real_qid = http.get("/api/search", params={"q": "三者险"}).json()["query_id"]

        plan: list[tuple[str, Any]] = []
        for i in range(REQUESTS - RAW_REQUESTS):
            r = random.Random(rng.random())
            roll = r.random()
            qid = r.choice([real_qid, real_qid, "", "f" * 32, _text(r)[:200]])
            if roll < 0.35:
                path = r.choice(ROUTES_GET)
                method = "HEAD" if r.random() < 0.1 else "GET"
                plan.append(("http", (f"#{i}", method, path, _params(r, path, qid), None, {})))
            elif roll < 0.85:
                path = r.choice(ROUTES_POST[:2] * 10 + ROUTES_POST[2:])
                body, headers = _body(r, path, qid)
                plan.append(("http", (f"#{i}", "POST", path, {}, body, headers)))
            else:  # wrong methods, unknown routes
                method = r.choice(["PUT", "DELETE", "PATCH", "OPTIONS", "POST", "GET"])
                path = r.choice(ROUTES_GET + ROUTES_POST + ["/api/nothing", "/static/../api/health", "/api/"])
                plan.append(("http", (f"#{i}", method, path, {"q": _text(r)[:100]}, b"{}", {})))
        for i in range(RAW_REQUESTS):
            plan.append(("raw", (f"raw#{i}", _raw_request(random.Random(rng.random())))))
        random.Random(SEED).shuffle(plan)

        def run(item: tuple[str, Any]) -> None:
            kind, args = item
            if kind == "raw":
                label, request = args
                try:
                    status, ctype, body = _send_raw(fuzz_server.port, request)
                except (OSError, IndexError, ValueError) as exc:
                    outcome.transport_errors[type(exc).__name__] += 1
                    return
                _check(outcome, f"{label} {request[:80]!r}", request.split(b" ", 1)[0].decode("latin-1"),
                       status, ctype, body)
                return
            label, method, path, params, body, headers = args
            try:
                response = http.request(method, path, params=params, content=body, headers=headers)
            except httpx.TransportError as exc:
                # Only a body the server refused before reading may cut the connection short.
                if body is None or len(body) <= MAX_BODY:
                    outcome.problems.append(f"{label}: {method} {path}: {type(exc).__name__}")
                outcome.transport_errors[type(exc).__name__] += 1
                return
            _check(outcome, f"{label} {method} {path}", method, response.status_code,
                   response.headers.get("content-type", ""), response.content)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(run, plan))

    elapsed = time.monotonic() - started
    total = sum(outcome.statuses.values())
    print(f"fuzz: {len(plan)} requests in {elapsed:.1f}s; statuses {dict(sorted(outcome.statuses.items()))}; "
          f"transport errors {dict(outcome.transport_errors)}")
    assert len(plan) >= 2000
    assert not outcome.problems, "\n".join(outcome.problems[:30])
    assert total >= 0.95 * len(plan), (total, dict(outcome.transport_errors))
    assert outcome.statuses[413] > 0 and outcome.statuses[422] > 0 and outcome.statuses[200] > 0
    assert elapsed < 60

    # The server's own output: one path-only access line per request, and no planted personal data.
    fuzz_server.process.send_signal(signal.SIGTERM)
    fuzz_server.process.wait(timeout=30)
    output = fuzz_server.output()
    assert "GET /api/search 200 " in output, output[-2000:]
    assert "?q=" not in output
    leaked = [value for value in PLANTED if value in output]
    assert not leaked, leaked
