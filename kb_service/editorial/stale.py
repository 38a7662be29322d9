"""Articles due for review: front matter `review_by: YYYY-MM-DD` in the past.

Optional and advisory: an article past its date still serves (the facts may well be right), so
`kb check` lists it as a warning, never a failure, and the workbench lists it for the owner. The
field is read here from the front matter directly, so the content loader needs no change; a value
that is not a date is itself a warning (the reminder would otherwise silently never fire).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class ReviewDue:
    article_id: str
    title: str
    owner: str
    path: Path
    review_by: str  # as written
    days_overdue: int | None  # None: the value is not a date


def _front_matter(path: Path) -> dict | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return None
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            try:
                meta = yaml.load("\n".join(lines[1:end]), Loader=_LOADER)
            except yaml.YAMLError:
                return None  # kb check reports the broken YAML itself
            return meta if isinstance(meta, dict) else None
    return None


def review_due(articles_dir: Path, today: dt.date | None = None) -> list[ReviewDue]:
    """Articles whose review_by date has passed (or is not a date), most overdue first."""
    from kb_service.content.articles import article_files

    today = today or dt.date.today()
    due: list[ReviewDue] = []
    for path in article_files(Path(articles_dir)):
        meta = _front_matter(path)
        if not meta or meta.get("review_by") in (None, ""):
            continue
        value = meta["review_by"]
        try:
            when = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        except ValueError:
            when = None
        if when is not None and when >= today:
            continue
        due.append(ReviewDue(str(meta.get("id", path.stem)), str(meta.get("title", "")), str(meta.get("owner", "")),
                             path, str(value), None if when is None else (today - when).days))
    due.sort(key=lambda d: (d.days_overdue is None, -(d.days_overdue or 0), d.article_id))
    return due


def warning_line(item: ReviewDue) -> str:
    if item.days_overdue is None:
        return f"warning: {item.path}: 'review_by' must be a date YYYY-MM-DD, got {item.review_by!r}"
    return (f"warning: {item.path}: review overdue since {item.review_by} ({item.days_overdue} days; "
            f"owner {item.owner or '?'})")
