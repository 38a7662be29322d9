"""Flags: an agent says an article is wrong (内容有误) or outdated (已过时) → the editors' queue.

A flag names the article version the agent was reading, so editors can tell a flag that a later
edit already answered (current version higher) from one that still stands. Plain functions: the
web route, the `kb flags` command and the analyst report share them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kb_service.usage_log.store import FLAG_REASONS, FlagLog, StoredFlag


class FlagError(ValueError):
    """A flag that cannot be recorded; the message is shown to the agent."""


def new_flag(  # noqa: PLR0913 - one flag's fields
    article_id: str, current_version: int, reason: str, *, article_version: int | None = None,
    comment: str | None = None, query_id: str | None = None, agent_id: str | None = None,
    session_id: str | None = None,
) -> FlagLog:
    """A checked flag record (the store masks the comment when it writes it)."""
    code = (reason or "").strip().lower()
    if code not in FLAG_REASONS:
        choices = "、".join(f"{k}（{v}）" for k, v in FLAG_REASONS.items())
        raise FlagError(f"未知的反馈原因：reason 只能是 {choices}")
    version = current_version if article_version is None else int(article_version)
    if version > current_version:
        raise FlagError(f"文章版本 v{version} 不存在：当前最新为 v{current_version}")
    text = (comment or "").strip() or None
    return FlagLog(article_id, version, code, text, time.time(), query_id or None, agent_id, session_id)


def flag_dict(flag: StoredFlag, article: Callable[[str], Any]) -> dict[str, Any]:
    """A stored flag for an editor, with the article's title and version now (None when deleted)."""
    current = article(flag.article_id)
    return {
        "id": flag.id, "ts": flag.ts, "article_id": flag.article_id,
        "article_title": getattr(current, "title", None),
        "article_version": flag.article_version,
        "current_version": getattr(current, "version", None),
        "reason": flag.reason, "reason_label": FLAG_REASONS.get(flag.reason, flag.reason),
        "comment": flag.comment, "query_id": flag.query_id,
        "agent_id": flag.agent_id, "session_id": flag.session_id,
    }


def still_open(flag: dict[str, Any]) -> bool:
    """Not yet answered by an edit: the article still exists at the version the flag was raised on."""
    return flag["current_version"] is not None and flag["current_version"] <= flag["article_version"]
