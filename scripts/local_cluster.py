"""A throw-away multi-replica deployment on this machine: PostgreSQL, `kb serve` replicas, HAProxy.

Used by the replica tests and `scripts/bench_replicas.py`; each part is a real process:

* `PostgresServer`: Debian's PostgreSQL binaries in a temporary data directory. PostgreSQL refuses
  to run as root, so under root it runs as the `postgres` user. It listens on 127.0.0.1 only, on a
  free port, without a Unix socket; `fsync=off` because the data is thrown away.
* `Replica`: `python -m kb_service serve` with KB_* settings from the environment.
* `LoadBalancer`: HAProxy running the shipped `deploy/haproxy.cfg` (addresses from the environment).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"
SUPERUSER = "kb"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (newest Debian version first), or None."""
    versions = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
                      key=lambda p: -int(p.parent.name))
    for folder in versions:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def find_haproxy() -> str | None:
    return shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


def wait_http(url: str, process: subprocess.Popen | None, timeout: float, what: str) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s ({url})")


class PostgresServer:
    """One running cluster; `url(db)` to connect, `create_database()` for a fresh database."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="kb-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self, extra: str = "") -> PostgresServer:
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C")
        self._options = extra
        self.resume()
        return self

    def resume(self) -> None:
        """Start the server (again) on the same port and data."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                   f"{self._options}")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def pause(self) -> None:
        """Stop the server, dropping every connection (an outage or a failover)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class Replica:
    """One `kb serve` process (one worker) configured by `env` (KB_* variables)."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str, workers: int = 1) -> None:
        self.env = {**os.environ, **env}
        self.port = free_port()
        self.name = name
        self.workers = workers
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> Replica:
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kb_service", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            )
        return self

    def wait_ready(self, timeout: float = 120.0) -> Replica:
        try:
            wait_http(f"{self.url}/api/health", self.process, timeout, f"replica {self.name}")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{self.output()}") from exc
        return self

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class LoadBalancer:
    """HAProxy with the shipped configuration, in the foreground (-db), in front of `replicas`."""

    def __init__(self, replicas: list[Replica], log_dir: Path, config: Path = HAPROXY_CONFIG) -> None:
        binary = find_haproxy()
        if binary is None:
            raise RuntimeError("haproxy not found")
        self.binary = binary
        self.config = config
        self.port = free_port()
        self.env = {**os.environ, "KB_LB_BIND": f"127.0.0.1:{self.port}"}
        for i, replica in enumerate(replicas, start=1):
            self.env[f"KB_REPLICA_{i}"] = replica.address
        self.log_path = log_dir / "haproxy.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> LoadBalancer:
        subprocess.run([self.binary, "-c", "-q", "-f", str(self.config)], env=self.env, check=True, timeout=30)
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen([self.binary, "-db", "-f", str(self.config)], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/api/health", self.process, timeout, "haproxy")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
