"""A real, throw-away PostgreSQL server for the tests (`scripts/local_cluster.PostgresServer`).

Debian's binaries in a temporary data directory, run as the `postgres` user under root, listening
on 127.0.0.1 only. `scripts/test.sh` installs the `postgresql` package when it is missing; without
it (or without psycopg) these tests skip and say so.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_cluster() -> ModuleType:
    if "local_cluster" in sys.modules:
        return sys.modules["local_cluster"]
    spec = importlib.util.spec_from_file_location("local_cluster", ROOT / "scripts" / "local_cluster.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["local_cluster"] = module
    spec.loader.exec_module(module)
    return module


cluster = _load_cluster()
PostgresServer = cluster.PostgresServer


def require_postgres() -> Path:
    bin_dir = cluster.find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's `postgresql` "
                    "package (scripts/test.sh does when run as root)")
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        pytest.skip("psycopg / psycopg-pool not installed: pip install -e '.[postgres]'")
    return bin_dir


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer(require_postgres()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def pg_url(pg_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return pg_server.create_database()
