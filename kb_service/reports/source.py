"""Which log a report reads: a SQLite file or a `postgresql://` URL, behind one reader interface.

`build.py` only ever calls the reader's methods (`sqlite_reader.LogReader` and `postgres_reader.PgLogReader`
return the same rows), so the choice is made here and nowhere else.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kb_service.reports.postgres_reader import PgLogReader
from kb_service.reports.sqlite_daily import open_daily_reader
from kb_service.reports.sqlite_reader import LogReader
from kb_service.usage_log.postgres import is_postgres_url, redact_url


class LogUnavailable(Exception):
    """The log cannot be read; the message (Chinese, shown in the report) says why."""


def open_log_reader(log: Path | str, low: float, high: float) -> LogReader | PgLogReader:
    """A reader over [low, high) of `log`, or LogUnavailable (no such file, not a log, no server)."""
    if is_postgres_url(log):
        import psycopg

        try:
            return PgLogReader(str(log), low, high)
        except psycopg.Error as exc:  # no server, no such database, no tables yet
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LogUnavailable(f"无法读取日志 {redact_url(str(log))}：{reason}") from exc
    if not Path(log).exists():
        raise LogUnavailable(f"日志文件 {log} 不存在")
    try:
        # Whole days from a log with day roll-ups (schema v3) are sums over days; anything else scans.
        return open_daily_reader(log, low, high) or LogReader(log, low, high)
    except sqlite3.OperationalError as exc:  # a file that is not (yet) a usage log
        raise LogUnavailable(f"无法读取日志 {log}：{exc}") from exc
