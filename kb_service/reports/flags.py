"""The report's section on articles agents flagged as 内容有误 / 已过时 (kb_service.assist.flags)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from kb_service.reports.data import REPORT_TZ, FlagGroup
from kb_service.reports.sqlite_reader import LogReader
from kb_service.usage_log.store import FLAG_REASONS


def _local(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, REPORT_TZ).strftime("%Y-%m-%d %H:%M:%S")


def flag_groups(reader: LogReader, catalog: Mapping[str, Mapping[str, Any]]) -> list[FlagGroup]:
    """Flags per article and reason, most flagged first (the editors' queue in the report)."""
    groups = []
    for article_id, reason, n, version, latest, comments in reader.flags():
        entry = catalog.get(article_id) or {}
        current = entry.get("version")
        groups.append(FlagGroup(article_id, str(entry.get("title") or article_id), reason,
                                FLAG_REASONS.get(reason, reason), n, version,
                                int(current) if current is not None else None, _local(latest),
                                [c for c in comments.split("\x1f") if c]))
    return groups
