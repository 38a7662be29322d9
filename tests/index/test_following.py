"""The PostgreSQL side of following published generations: the record, NOTIFY, and a LISTEN
connection that survives a server restart. A real PostgreSQL server (skipped, saying why, without)."""

from __future__ import annotations

import threading
import time

from _pg_fixtures import PostgresServer, pg_server, pg_url  # noqa: F401 - fixtures

from kb_service.index.following import GenerationListener, announce, recorded_generation


def _wait(predicate, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_announce_records_the_generation_and_notifies_listeners(pg_url: str) -> None:  # noqa: F811
    assert recorded_generation(pg_url) is None  # no table yet: nothing published
    heard: list[str] = []
    listener = GenerationListener(pg_url, heard.append, check_seconds=0.2)
    listener.start()
    try:
        assert listener.listening.wait(10)
        assert _wait(lambda: heard == [""])  # the sync asked for on (re)connecting
        announce(pg_url, "gen-20260101T000000-aaaaaa", "/shared/store")
        announce(pg_url, "gen-20260101T000001-bbbbbb", "/shared/store")
        assert _wait(lambda: heard[1:] == ["gen-20260101T000000-aaaaaa", "gen-20260101T000001-bbbbbb"]), heard
        assert recorded_generation(pg_url) == "gen-20260101T000001-bbbbbb"
        announce(pg_url, "gen-20260101T000000-aaaaaa", "/shared/store")  # a rollback: published again
        assert recorded_generation(pg_url) == "gen-20260101T000000-aaaaaa"
    finally:
        listener.stop()
        listener.join(timeout=10)
    assert not listener.is_alive()


def test_the_listener_reconnects_after_the_server_restarts(pg_server: PostgresServer, pg_url: str) -> None:  # noqa: F811
    """What was published while the connection was down is caught: reconnecting asks for a sync."""
    heard: list[str] = []
    reconnected = threading.Event()

    def on_notice(name: str) -> None:
        heard.append(name)
        if heard.count("") == 2:
            reconnected.set()

    listener = GenerationListener(pg_url, on_notice, check_seconds=0.2)
    listener.start()
    try:
        assert listener.listening.wait(10)
        pg_server.pause()
        try:
            assert _wait(lambda: not listener.listening.is_set())
        finally:
            pg_server.resume()
        assert reconnected.wait(30), heard
        announce(pg_url, "gen-20260101T000002-cccccc", "/shared/store")
        assert _wait(lambda: heard[-1] == "gen-20260101T000002-cccccc"), heard
    finally:
        listener.stop()
        listener.join(timeout=40)
