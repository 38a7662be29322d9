"""Server memory while many clients send oversized request bodies.

    python scripts/bench_oversized_bodies.py [--clients 20] [--requests 20] [--body-mb 50]
                                             [--duration 60] [--index-dir indexes] [--workers 1]
                                             [--ignore-answers]

Target: the server's resident memory stays within 50 MB of its idle figure while 20 clients each
send oversized POST bodies to /api/events (the cap is KB_MAX_BODY_BYTES, 64 KB by default).

Starts `python -m kb_service serve` on a free 127.0.0.1 port, on a tiny knowledge base built into a
temporary folder (the 4 articles of tests/_service_fixtures.py, fast embedder), or on a built
index folder given with --index-dir (with the project's articles and default settings). Idle RSS
is VmRSS from /proc/<pid>/status summed over the server and its children, after a few warm-up
requests. Then every client sends its requests one after another over raw sockets, alternating
a declared Content-Length (answered 413 before the body is read) and a chunked body without one
(answered 413 as soon as the streamed bytes pass the cap); a client stops sending a body as soon
as the server answered or closed. RSS is sampled every 100 ms throughout. Everything is bounded:
--duration seconds for the load phase, --request-timeout seconds per request.

Prints idle RSS, peak RSS, peak − idle, the status codes seen and the time taken; exits 1 when
peak − idle is over --max-growth-mb.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 64 * 1024
MB = 1024 * 1024


# --- memory ----------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                found += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return found


def _vm_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_bytes(pid: int) -> int:
    """VmRSS of `pid` and all its descendants."""
    total, todo, seen = 0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        total += _vm_rss_kb(current)
        todo += _children(current)
    return total * 1024


class Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.monotonic(), tree_rss_bytes(self.pid)))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# --- the server ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(args: argparse.Namespace, tmp: Path, port: int) -> dict[str, str]:
    env = {**os.environ, "KB_HOST": "127.0.0.1", "KB_PORT": str(port), "KB_LOG_DB": str(tmp / "usage.sqlite3"),
           "KB_AGENT_KEYS": "", "KB_EDITOR_KEYS": "", "KB_ANALYST_KEYS": ""}
    if args.index_dir:
        env["KB_INDEX_DIR"] = str(Path(args.index_dir).resolve())
        return env
    sys.path.insert(0, str(ROOT / "tests"))
    from _service_fixtures import build_corpus_index, corpus_settings, settings_env

    print("building a tiny index …", flush=True)
    settings = corpus_settings(build_corpus_index(tmp / "kb"), tmp / "usage.sqlite3")
    return {**env, **settings_env(settings)}


def start_server(args: argparse.Namespace, tmp: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = _server_env(args, tmp, port)
    log = open(tmp / "server.log", "w", encoding="utf-8")  # noqa: SIM115 - closed with the process
    cmd = [sys.executable, "-m", "kb_service", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + args.startup_timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}:\n{(tmp / 'server.log').read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return process, port
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"server not ready after {args.startup_timeout}s:\n{(tmp / 'server.log').read_text()}")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- the clients -----------------------------------------------------------------------------------


def _read_status(sock: socket.socket, deadline: float) -> str:
    data = b""
    while b"\r\n" not in data and time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            break
        except OSError as exc:
            return data.split(b" ")[1].decode() if data.count(b" ") >= 2 else type(exc).__name__
        if not chunk:
            break
        data += chunk
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/"):
        return parts[1].decode("ascii", "replace")
    return "timeout" if time.monotonic() >= deadline else "closed-without-answer"


def send_oversized(port: int, body_bytes: int, declared: bool, timeout: float,
                   ignore_answers: bool = False) -> tuple[str, int]:
    """One POST /api/events of `body_bytes`; returns (status or error, bytes of body sent).
    `ignore_answers`: keep sending after the server answered, until it closes (a hostile client)."""
    deadline = time.monotonic() + timeout
    head = [b"POST /api/events HTTP/1.1", b"Host: 127.0.0.1", b"Content-Type: application/json"]
    head.append(b"Content-Length: %d" % body_bytes if declared else b"Transfer-Encoding: chunked")
    payload = b"x" * CHUNK
    prefix = b'{"query_id": "'
    sent = 0
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as exc:
        return f"connect-{type(exc).__name__}", 0
    with sock:
        try:
            sock.sendall(b"\r\n".join(head) + b"\r\n\r\n")
            while sent < body_bytes and time.monotonic() < deadline:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable and not ignore_answers:  # the server answered (413) or closed: stop sending
                    break
                piece = (prefix + payload[len(prefix):]) if sent == 0 else payload
                piece = piece[: body_bytes - sent]
                _, writable, _ = select.select([], [sock], [], max(0.0, deadline - time.monotonic()))
                if not writable:
                    break
                sock.sendall(piece if declared else b"%x\r\n" % len(piece) + piece + b"\r\n")
                sent += len(piece)
            if sent >= body_bytes and not declared:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # reset / broken pipe after the server refused: read what it answered, if anything
        return _read_status(sock, deadline), sent


def run_client(port: int, args: argparse.Namespace, client: int, stop_at: float) -> list[tuple[str, bool, int]]:
    results = []
    for i in range(args.requests):
        if time.monotonic() > stop_at:
            results.append(("not-sent (time budget)", False, 0))
            continue
        declared = (client + i) % 2 == 0
        status, sent = send_oversized(port, args.body_mb * MB, declared, args.request_timeout, args.ignore_answers)
        results.append((status, declared, sent))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=20, help="oversized POSTs per client")
    parser.add_argument("--body-mb", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="no new request after this many seconds")
    parser.add_argument("--request-timeout", type=float, default=15.0)
    parser.add_argument("--index-dir", help="serve this built index (with the project's articles) instead of a tiny one")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    parser.add_argument("--max-growth-mb", type=float, default=50.0)
    parser.add_argument("--ignore-answers", action="store_true",
                        help="clients keep sending after the 413 until the server closes the connection")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kb-bench-bodies-") as tmp_name:
        tmp = Path(tmp_name)
        process, port = start_server(args, tmp)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:  # warm every path once
                qid = http.get("/api/search", params={"q": "三者险赔多少"}).json()["query_id"]
                http.post("/api/events", json={"query_id": qid, "article_id": "x", "type": "open"})
                http.post("/api/events", content=b"x" * 100_000)
            send_oversized(port, 2 * MB, True, 5)
            send_oversized(port, 2 * MB, False, 5)
            time.sleep(1.0)
            idle_samples = []
            for _ in range(10):
                idle_samples.append(tree_rss_bytes(process.pid))
                time.sleep(0.1)
            idle = max(idle_samples)

            sampler = Sampler(process.pid)
            sampler.start()
            started = time.monotonic()
            with ThreadPoolExecutor(args.clients) as pool:
                futures = [pool.submit(run_client, port, args, c, started + args.duration)
                           for c in range(args.clients)]
                results = [r for f in futures for r in f.result()]
            took = time.monotonic() - started
            time.sleep(0.5)
            sampler.stop()
            after = tree_rss_bytes(process.pid)
            alive = process.poll() is None
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                health = http.get("/api/health").status_code if alive else None
        finally:
            stop_server(process)

    peak = max([rss for _, rss in sampler.samples] + [idle])
    statuses = Counter(status for status, _, _ in results)
    by_kind = {
        label: Counter(status for status, declared, _ in results if declared == flag)
        for label, flag in (("with Content-Length", True), ("chunked, no Content-Length", False))
    }
    sent_total = sum(sent for _, _, sent in results)
    growth = peak - idle
    print(f"server: python -m kb_service serve, workers={args.workers}, "
          f"index={'tiny test corpus' if not args.index_dir else args.index_dir}")
    print(f"load: {args.clients} clients x {args.requests} POST /api/events of {args.body_mb} MB"
          f"{' (answers ignored)' if args.ignore_answers else ''} "
          f"({len(results)} requests), bodies actually sent {sent_total / MB:.1f} MB in total")
    print(f"idle RSS:        {idle / MB:8.1f} MB")
    print(f"peak RSS:        {peak / MB:8.1f} MB   ({len(sampler.samples)} samples, every 100 ms)")
    print(f"peak - idle:     {growth / MB:8.1f} MB   (target <= {args.max_growth_mb:.0f} MB)")
    print(f"RSS after load:  {after / MB:8.1f} MB")
    print(f"statuses:        {dict(sorted(statuses.items()))}")
    for label, counter in by_kind.items():
        print(f"  {label}: {dict(sorted(counter.items()))}")
    print(f"time taken:      {took:8.1f} s")
    print(f"server alive after load: {alive}, /api/health {health}")
    ok = growth <= args.max_growth_mb * MB and alive and health == 200
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
