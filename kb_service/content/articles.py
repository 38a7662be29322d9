"""Load Markdown articles with YAML front matter into typed objects.

Parsing keeps file line numbers so every problem can be reported as `file:line`, and a
malformed article is reported and skipped without stopping the others from loading.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kb_service.models import CATEGORIES, Article, Problem, ScriptBlock, Section

REQUIRED_FIELDS = ("id", "title", "category", "tags", "aliases", "updated", "version", "owner")
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w-]*)\s*$")
SCRIPT_INFO = "script"
SKIPPED_FILES = {"readme.md"}
T = TypeVar("T")


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# libyaml's loader parses front matter ~10x faster than the pure-Python one (large knowledge bases).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def is_article_file(name: str) -> bool:
    """The one rule for which files of the articles folder are articles (a README is not)."""
    return name.endswith(".md") and name.lower() not in SKIPPED_FILES


def article_files(articles_dir: Path) -> list[Path]:
    return sorted((p for p in Path(articles_dir).glob("*.md") if is_article_file(p.name)), key=lambda p: p.name)


def _split_front_matter(text: str, path: Path) -> tuple[dict | None, str, int, list[Problem]]:
    """Return (metadata, body, first body line, problems)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None, text, 1, [Problem(path, 1, "missing YAML front matter (file must start with '---')")]
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            break
    else:
        return None, text, 1, [Problem(path, 1, "front matter is not closed by a '---' line")]
    raw = "\n".join(lines[1:end])
    try:
        meta = yaml.load(raw, Loader=_YAML_LOADER) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, text, 1, [Problem(path, line, f"invalid YAML in front matter: {reason}")]
    if not isinstance(meta, dict):
        return None, text, 1, [Problem(path, 2, "front matter must be a mapping of fields")]
    body = "\n".join(lines[end + 1 :])
    return meta, body, end + 2, []


def _field_lines(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for number, line in enumerate(text.splitlines()[:80], start=1):
        match = re.match(r"^([A-Za-z_]+)\s*:", line)
        if match and match.group(1) not in found:
            found[match.group(1)] = number
    return found


def _string_list(value: object) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return None


def _validate_meta(meta: dict, path: Path, lines: dict[str, int]) -> list[Problem]:
    problems: list[Problem] = []

    def at(name: str) -> int:
        return lines.get(name, 1)

    for name in REQUIRED_FIELDS:
        if name not in meta or meta[name] in (None, ""):
            if name in ("tags", "aliases") and name in meta:
                continue
            problems.append(Problem(path, 1, f"front matter field '{name}' is missing"))
    if "id" in meta and meta["id"] and not ID_PATTERN.match(str(meta["id"])):
        problems.append(Problem(path, at("id"), f"invalid id '{meta['id']}': use lowercase letters, digits and '-'"))
    if meta.get("category") and meta["category"] not in CATEGORIES:
        allowed = ", ".join(CATEGORIES)
        problems.append(Problem(path, at("category"), f"unknown category '{meta['category']}' (allowed: {allowed})"))
    for name in ("tags", "aliases"):
        if name in meta and _string_list(meta[name]) is None:
            problems.append(Problem(path, at(name), f"'{name}' must be a list of strings"))
    if meta.get("version") is not None and (
        isinstance(meta["version"], bool) or not isinstance(meta["version"], int) or meta["version"] < 1
    ):
        problems.append(Problem(path, at("version"), f"'version' must be a positive integer, got {meta['version']!r}"))
    updated = meta.get("updated")
    if updated is not None and not isinstance(updated, dt.date):
        try:
            dt.date.fromisoformat(str(updated))
        except ValueError:
            problems.append(Problem(path, at("updated"), f"'updated' must be a date YYYY-MM-DD, got {updated!r}"))
    if meta.get("title") is not None and not isinstance(meta["title"], str):
        problems.append(Problem(path, at("title"), "'title' must be text"))
    return problems


def parse_sections(body: str, body_line: int, title: str) -> tuple[list[Section], list[Problem], str | None]:
    """Split the body at headings (outside code fences).

    One line-by-line state machine (fence open or not, heading path, current buffer) kept in one
    function on purpose, over 60 lines: split up, its state would travel through every helper.
    Returns sections, structural problems (as (line, message) with a dummy path filled in by
    the caller) and the H1 text if any.
    """
    sections: list[Section] = []
    problems: list[Problem] = []
    h1: str | None = None
    path_stack: list[tuple[int, str]] = []
    current_heading: tuple[str, ...] = ()
    current_line = body_line
    buffer: list[str] = []
    scripts: list[ScriptBlock] = []
    fence: str | None = None
    fence_info = ""
    fence_line = 0
    script_lines: list[str] = []

    def flush() -> None:
        text = "\n".join(buffer).strip()
        if text or current_heading:
            sections.append(Section(current_heading, text, current_line, tuple(scripts)))

    for offset, line in enumerate(body.splitlines()):
        number = body_line + offset
        fence_match = FENCE.match(line)
        if fence is not None:
            if fence_match and fence_match.group(1).startswith(fence) and not fence_match.group(2):
                if fence_info == SCRIPT_INFO:
                    scripts.append(ScriptBlock("\n".join(x.rstrip() for x in script_lines).strip(), fence_line))
                fence = None
            elif fence_info == SCRIPT_INFO:
                script_lines.append(line)
            buffer.append(line)
            continue
        if fence_match:
            fence, fence_info, fence_line, script_lines = fence_match.group(1), fence_match.group(2), number, []
            buffer.append(line)
            continue
        heading = HEADING.match(line)
        if heading:
            level, text = len(heading.group(1)), heading.group(2).strip()
            if level == 1:
                if h1 is None:
                    h1 = text
                    if sections or "\n".join(buffer).strip():
                        problems.append(Problem(Path(), number, "text before the H1 title"))
                    buffer, scripts = [], []
                    current_line = number
                    continue
                problems.append(Problem(Path(), number, "more than one H1 heading"))
            flush()
            while path_stack and path_stack[-1][0] >= level:
                path_stack.pop()
            path_stack.append((level, text))
            current_heading = tuple(t for _, t in path_stack)
            current_line = number
            buffer, scripts = [], []
            continue
        buffer.append(line)
    if fence is not None:
        problems.append(Problem(Path(), fence_line, f"code block opened here is never closed ({fence})"))
        if fence_info == SCRIPT_INFO:
            scripts.append(ScriptBlock("\n".join(x.rstrip() for x in script_lines).strip(), fence_line))
    flush()
    # The intro under the H1 (no sub-heading) is a section only when it has text.
    sections = [s for s in sections if s.heading_path or s.markdown]
    return sections, problems, h1


# Per-section lists in the front matter: `questions:` (相似问, how agents ask for a section) and
# `signals:` (聊天信号, words in a customer's message that call for a section whatever it asks).
SECTION_LISTS = ("questions", "signals")  # front matter keys, named as the Section fields they fill
MIN_SIGNAL_CHARS = 2  # a one-character signal would fire on almost every message
SIGNAL_PART = "+"  # a signal of several parts fires only when the message says every part
SIGNAL_ALTERNATIVE = "|"  # one part, said in any of these words


def signal_parts(signal: str) -> tuple[tuple[str, ...], ...]:
    """A signal's parts, each as its alternative wordings: 「红包」 is one part of one word;
    「刚投保|刚买的保险 + 现金|不想修」 fires only when a message says a word of each part. Some
    situations show in no single word: one fraud warning sign (a policy bought last week, a customer
    who wants cash) proves little, two together call for the fraud section."""
    return tuple(tuple(word.strip() for word in part.split(SIGNAL_ALTERNATIVE))
                 for part in signal.split(SIGNAL_PART))


def _attach_section_lists(meta: dict, sections: list[Section], path: Path,
                          lines: dict[str, int]) -> tuple[list[Section], list[Problem]]:
    """Give each section the 相似问 and chat signals listed under its heading; a key that names no
    section (a heading renamed after its lists were written) is reported, never guessed."""
    problems: list[Problem] = []
    headings = {s.heading_path[-1] for s in sections if s.heading_path}
    for key in SECTION_LISTS:
        value, line = meta.get(key), lines.get(key, 1)
        if value is None:
            continue
        if not isinstance(value, dict):
            problems.append(Problem(path, line, f"'{key}' must map section headings to lists of strings"))
            continue
        listed: dict[str, tuple[str, ...]] = {}
        for heading, entries in value.items():
            name = str(heading).strip()
            found = _string_list(entries)
            if found is None:
                problems.append(Problem(path, line, f"{key} for '{name}' must be a list of strings"))
            elif name not in headings:
                problems.append(Problem(path, line, f"{key} name a section '{name}' that this article does not have"))
            elif key == "signals" and any(len(word) < MIN_SIGNAL_CHARS
                                          for f in found for part in signal_parts(f) for word in part):
                problems.append(Problem(path, line, f"signals for '{name}' need at least {MIN_SIGNAL_CHARS} characters in each word"))
            else:
                listed[name] = tuple(dict.fromkeys(f.strip() for f in found))
        sections = [replace(s, **{key: listed.get(s.heading_path[-1], ())}) if s.heading_path else s
                    for s in sections]
    return sections, problems


def content_digest(raw: bytes) -> str:
    """The content hash the index manifest records per article file."""
    return hashlib.sha256(raw).hexdigest()


def parse_article(path: Path, raw: bytes | None = None) -> tuple[Article | None, list[Problem]]:
    """Parse one file (or its already-read bytes); return (None, problems) when it cannot be used at all."""
    path = Path(path)
    try:
        if raw is None:
            raw = path.read_bytes()
        # As read_text would: UTF-8, universal newlines.
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        return None, [Problem(path, 1, f"file is not valid UTF-8 ({exc.reason})")]
    except OSError as exc:
        return None, [Problem(path, 1, f"cannot read file: {exc.strerror}")]
    meta, body, body_line, problems = _split_front_matter(text, path)
    if meta is None:
        return None, problems
    lines = _field_lines(text)
    problems = _validate_meta(meta, path, lines)
    if problems:
        return None, problems
    title = str(meta["title"]).strip()
    sections, structural, h1 = parse_sections(body, body_line, title)
    problems = [Problem(path, p.line, p.message) for p in structural]
    sections, list_problems = _attach_section_lists(meta, sections, path, lines)
    problems.extend(list_problems)
    if h1 is None:
        problems.append(Problem(path, body_line, "missing H1 title ('# ' line)"))
    elif h1 != title:
        problems.append(Problem(path, body_line, f"H1 '{h1}' differs from front matter title '{title}'"))
    updated = meta["updated"]
    article = Article(
        id=str(meta["id"]),
        title=title,
        category=str(meta["category"]),
        tags=_string_list(meta.get("tags")) or (),
        aliases=_string_list(meta.get("aliases")) or (),
        updated=updated.isoformat() if isinstance(updated, dt.date) else str(updated),
        version=int(meta["version"]),
        owner=str(meta["owner"]),
        path=path,
        markdown=body,
        body_line=body_line,
        sections=tuple(sections),
    )
    return article, problems


class ArticleCache:
    """Parsed files keyed by path, reused while (mtime, size) is unchanged.

    A long-running watcher (`kb serve --watch`) re-parses only the files an editor touched;
    parsing every file costs ~0.5 ms each, seconds at tens of thousands of articles, which would
    otherwise sit between an edit and the moment it is searchable.
    """

    def __init__(self) -> None:
        # Keyed by path string: at tens of thousands of files, Path hashing alone is measurable.
        self._entries: dict[str, tuple[tuple[int, int], Article | None, list[Problem], str]] = {}
        self._derived: dict[int, tuple[Article, dict[str, Any]]] = {}  # id(article) → values

    def load(self, articles_dir: Path) -> LoadResult:
        """Like load_articles, with one stat per file and a parse only for changed files."""
        result = LoadResult()
        with os.scandir(articles_dir) as found:
            entries = sorted((e for e in found if is_article_file(e.name) and e.is_file()), key=lambda e: e.name)
        present = {e.path for e in entries}
        for gone in [p for p in self._entries if p not in present]:
            self._drop(gone)
        for entry in entries:
            try:
                st = entry.stat()
                key = (st.st_mtime_ns, st.st_size)
            except OSError:
                key = (-1, -1)
            _, article, problems, _ = self._entry(entry.path, key)
            result.problems.extend(problems)
            if article is not None:
                result.articles.append(article)
        return result

    def _entry(self, name: str, key: tuple[int, int]) -> tuple[tuple[int, int], Article | None, list[Problem], str]:
        entry = self._entries.get(name)
        if entry is None or entry[0] != key or key == (-1, -1):
            self._drop(name)
            path = Path(name)  # only on a miss: building 25k Paths per check costs ~0.2 s
            try:
                raw = path.read_bytes()  # read once: parsed and hashed from the same bytes
            except OSError as exc:
                entry = (key, None, [Problem(path, 1, f"cannot read file: {exc.strerror}")], "")
            else:
                article, problems = parse_article(path, raw)
                entry = (key, article, problems, content_digest(raw))
            self._entries[name] = entry
        return entry

    def _drop(self, name: str) -> None:
        old = self._entries.pop(name, None)
        if old is not None and old[1] is not None:
            self._derived.pop(id(old[1]), None)

    def digest(self, path: Path) -> str:
        """The content hash recorded when `path` was last parsed."""
        entry = self._entries.get(str(path))
        if entry is None:
            st = path.stat()
            entry = self._entry(str(path), (st.st_mtime_ns, st.st_size))
        return entry[3]

    def memo(self, article: Article, name: str, compute: Callable[[], T]) -> T:
        """A value derived from one parsed version of an article (its passages, its problems)."""
        slot = self._derived.get(id(article))
        if slot is None or slot[0] is not article:
            slot = (article, {})
            self._derived[id(article)] = slot
        values = slot[1]
        if name not in values:
            values[name] = compute()
        return values[name]


def load_articles(articles_dir: Path, cache: ArticleCache | None = None) -> LoadResult:
    """Parse every article; unusable files are reported and skipped."""
    if cache is not None:
        return cache.load(articles_dir)
    result = LoadResult()
    for path in article_files(articles_dir):
        article, problems = parse_article(path)
        result.problems.extend(problems)
        if article is not None:
            result.articles.append(article)
    return result
