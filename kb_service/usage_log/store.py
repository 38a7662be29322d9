"""Usage log records and the protocol every log backend implements.

What agents searched, what they were shown, opened, copied and whether it helped. The routes code
against `UsageLogStore`, so a backend (SQLite by default, `sqlite.py`) can be replaced without
touching them. Query text and feedback comments are masked before they reach any backend:
`scrub_query` is what every backend stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from kb_service.masking import mask_personal_data
from kb_service.usage_log.grouping import grouping_form

EventType = Literal["open", "copy"]
EVENT_TYPES: frozenset[str] = frozenset({"open", "copy"})
# Where a logged query came from: typed into the panel, or read from a live conversation (/api/suggest).
QuerySource = Literal["search", "conversation"]
QUERY_SOURCES: frozenset[str] = frozenset({"search", "conversation"})
# Why an agent flags an article; the labels are what editors and the report show.
FLAG_REASONS: dict[str, str] = {"wrong": "内容有误", "outdated": "已过时", "other": "其他问题"}


@dataclass(frozen=True)
class Impression:
    """One hit shown to the agent, at its 1-based rank."""

    rank: int
    article_id: str
    article_version: int
    passage_id: str
    score: float


@dataclass(frozen=True)
class QueryLog:
    query_id: str
    ts: float
    agent_id: str | None
    session_id: str | None
    query_text: str
    confident: bool
    n_hits: int
    latency_ms: float
    index_version: str
    impressions: list[Impression] = field(default_factory=list)
    source: QuerySource = "search"


@dataclass(frozen=True)
class EventLog:
    query_id: str
    article_id: str
    type: EventType
    ts: float


@dataclass(frozen=True)
class FeedbackLog:
    query_id: str
    article_id: str | None
    resolved: bool
    comment: str | None
    ts: float


@dataclass(frozen=True)
class FlagLog:
    """An agent says an article is wrong or outdated: the editors' queue.

    `article_version` is the version the agent was reading, so an editor can tell a flag that a
    later edit already answered from one that still stands. The comment is masked when stored."""

    article_id: str
    article_version: int
    reason: str
    comment: str | None
    ts: float
    query_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class StoredFlag:
    """A flag as read back from the log (comment already masked)."""

    id: int
    ts: float
    article_id: str
    article_version: int
    reason: str
    comment: str | None
    query_id: str | None
    agent_id: str | None
    session_id: str | None


LogRecord = QueryLog | EventLog | FeedbackLog | FlagLog


@runtime_checkable
class UsageLogStore(Protocol):
    def record_query(self, entry: QueryLog) -> None: ...

    def record_event(
        self, query_id: str, article_id: str, type: EventType, ts: float | None = None
    ) -> None: ...

    def record_feedback(
        self,
        query_id: str,
        article_id: str | None,
        resolved: bool,
        comment: str | None = None,
        ts: float | None = None,
    ) -> None: ...

    def record_flag(self, flag: FlagLog) -> None: ...

    def list_flags(self, article_id: str | None = None, limit: int = 100) -> list[StoredFlag]: ...

    def has_query(self, query_id: str) -> bool: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def flags_query(article_id: str | None, limit: int, placeholder: str) -> tuple[str, list[object]]:
    """The editors' queue as SQL and its arguments, newest first; `placeholder`: '?' (SQLite) or '%s'."""
    sql = "SELECT id, ts, article_id, article_version, reason, comment, query_id, agent_id, session_id FROM flags"
    args: list[object] = []
    if article_id:
        sql += f" WHERE article_id = {placeholder}"
        args.append(article_id)
    args.append(max(1, int(limit)))
    return f"{sql} ORDER BY ts DESC, id DESC LIMIT {placeholder}", args


def scrub_query(text: str) -> tuple[str, str]:
    """(masked, normalised) query text. Mask first and normalise the masked text (placeholders
    survive normalising); then mask again, because normalising drops all spaces and punctuation
    and can join digit groups the first pass left apart (a card typed 6222，0212，… or a number
    split by a longer run of punctuation than the masker accepts) into clear digits."""
    masked = mask_personal_data(text)
    return masked, mask_personal_data(grouping_form(masked))


def log_exists(log_db: str | object) -> bool:
    """Whether there is a log to read: a SQLite file that has been written, or a PostgreSQL URL
    (its tables are created by the first replica; a reader of an empty one finds no rows)."""
    from pathlib import Path

    from kb_service.usage_log.postgres import is_postgres_url

    return is_postgres_url(log_db) or Path(str(log_db)).exists()


def open_log_store(log_db: str | object) -> UsageLogStore:
    """The usage-log backend for a `KB_LOG_DB` value: a `postgresql://` URL (a log shared by
    several replicas, `postgres.py`) or else a SQLite file path (the embedded default).

    The one place a backend is chosen; psycopg is imported only when PostgreSQL is asked for.
    """
    from pathlib import Path

    from kb_service.usage_log.postgres import PostgresLogStore, is_postgres_url

    if is_postgres_url(log_db):
        return PostgresLogStore(str(log_db))
    from kb_service.usage_log.sqlite import SQLiteLogStore

    return SQLiteLogStore(Path(str(log_db)))
