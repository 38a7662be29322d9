"""Adopt a 相似问: write it into the article's front matter as an ordinary, reviewable edit.

The article file is the source of truth and editors review changes as diffs, so adoption edits the
text in place (one line changed or added under `questions:`, `version` bumped, `updated` set to
today) instead of re-dumping the YAML, which would reorder keys and reflow every list. The result
is parsed again before it is kept: if the new file would not load, or would not attach the question
to the section, the original is put back and the edit is refused.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from kb_service.masking import mask_personal_data
from kb_service.usage_log.grouping import grouping_form

MAX_QUESTION_CHARS = 100
# Plain YAML scalars inside a flow list cannot hold these; such a text is written JSON-quoted.
_NEEDS_QUOTES = re.compile(r"""[,\[\]{}:#&*!|>'"%@`]|^[\s\-?]|\s$""")


class AdoptError(ValueError):
    """The question cannot be adopted (unknown article or section, personal data, bad text)."""


@dataclass
class AdoptResult:
    path: Path
    article_id: str
    section: str
    question: str
    added: bool  # False: the section already had it (nothing written)
    version: int
    diff: str


def _scalar(text: str) -> str:
    return json.dumps(text, ensure_ascii=False) if _NEEDS_QUOTES.search(text) or text.lower() in {
        "yes", "no", "true", "false", "null", "on", "off", "~"} or text.replace(".", "", 1).isdigit() else text


def clean_question(text: str) -> str:
    """The text as it will be stored: masked, one line, trimmed; refused if it held personal data."""
    flat = " ".join(str(text).split())
    masked = mask_personal_data(flat)
    if masked != flat or "〔" in flat:
        raise AdoptError("这条问法含个人信息（已脱敏的占位符），不能作为相似问")
    if not flat:
        raise AdoptError("相似问不能为空")
    if len(flat) > MAX_QUESTION_CHARS:
        raise AdoptError(f"相似问过长（{len(flat)} 字，最多 {MAX_QUESTION_CHARS} 字）")
    return flat


def _front_matter_end(lines: list[str]) -> int:
    if not lines or lines[0].strip() != "---":
        raise AdoptError("文章缺少 YAML front matter")
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            return end
    raise AdoptError("文章的 front matter 没有结束行 ---")


def _insert_question(lines: list[str], end: int, heading: str, question: str) -> None:
    """Edit `lines` (front matter ends at index `end`) so `heading` lists `question`."""
    start = next((i for i in range(1, end) if re.match(r"^questions\s*:", lines[i])), None)
    item = _scalar(question)
    if start is None:
        lines[end:end] = ["questions:", f"  {_scalar(heading)}: [{item}]"]
        return
    block_end = start + 1
    while block_end < end and (lines[block_end].startswith((" ", "\t")) or not lines[block_end].strip()):
        block_end += 1
    key = re.compile(rf"^(\s+)(?:{re.escape(heading)}|\"{re.escape(heading)}\"|'{re.escape(heading)}')\s*:(.*)$")
    for i in range(start + 1, block_end):
        match = key.match(lines[i])
        if not match:
            continue
        value = match.group(2).rstrip()
        if value.strip().startswith("[") and value.endswith("]"):
            inner = value.strip()[1:-1].strip()
            lines[i] = f"{lines[i][: match.start(2)]} [{inner + ', ' if inner else ''}{item}]"
            return
        # Block style: "  heading:" then "    - item" lines.
        last = i
        while last + 1 < block_end and lines[last + 1].lstrip().startswith("- "):
            last += 1
        indent = (lines[last][: len(lines[last]) - len(lines[last].lstrip())] if last > i
                  else match.group(1) + "  ")
        lines.insert(last + 1, f"{indent}- {item}")
        return
    indent = next((lines[i][: len(lines[i]) - len(lines[i].lstrip())] for i in range(start + 1, block_end)
                   if lines[i].strip()), "  ")
    lines.insert(block_end, f"{indent}{_scalar(heading)}: [{item}]")


def _bump(lines: list[str], end: int, today: dt.date) -> int:
    version = None
    for i in range(1, end):
        match = re.match(r"^version\s*:\s*(\d+)\s*$", lines[i])
        if match:
            version = int(match.group(1)) + 1
            lines[i] = f"version: {version}"
        elif re.match(r"^updated\s*:", lines[i]):
            lines[i] = f"updated: {today.isoformat()}"
    if version is None:
        raise AdoptError("文章的 version 字段不是整数，无法递增")
    return version


def find_article_file(articles_dir: Path, article_id: str) -> tuple[Path, object]:
    from kb_service.content.articles import load_articles

    for article in load_articles(Path(articles_dir)).articles:
        if article.id == article_id:
            return article.path, article
    raise AdoptError(f"没有这篇文章：{mask_personal_data(article_id)}")


def adopt_question(articles_dir: Path, article_id: str, section: str, question: str,
                   today: dt.date | None = None) -> AdoptResult:
    """Add `question` to the 相似问 of `section` (its heading, last level) in article `article_id`."""
    from kb_service.content.articles import parse_article

    question = clean_question(question)
    path, article = find_article_file(articles_dir, article_id)
    headings = [s.heading_path[-1] for s in article.sections if s.heading_path]  # type: ignore[attr-defined]
    if section not in headings:
        raise AdoptError(f"文章 {article_id} 没有小节「{mask_personal_data(section)}」（可选：{'、'.join(headings)}）")
    existing = next(s.questions for s in article.sections if s.heading_path and s.heading_path[-1] == section)  # type: ignore[attr-defined]
    if grouping_form(question) in {grouping_form(q) for q in existing}:
        return AdoptResult(path, article_id, section, question, False, article.version, "")  # type: ignore[attr-defined]
    original = path.read_text(encoding="utf-8")
    lines = original.split("\n")
    end = _front_matter_end(lines)
    _insert_question(lines, end, section, question)
    end = _front_matter_end(lines)
    version = _bump(lines, end, today or dt.date.today())
    updated = "\n".join(lines)
    parsed, problems = parse_article(path, updated.encode("utf-8"))
    attached = parsed is not None and any(
        s.heading_path and s.heading_path[-1] == section and question in s.questions for s in parsed.sections)
    if not attached or problems:
        raise AdoptError(f"写入后文章无法正确解析，未修改：{'; '.join(p.message for p in problems) or '相似问未挂到小节上'}")
    tmp = path.with_name(f".{path.name}.adopt.tmp")
    tmp.write_text(updated, encoding="utf-8")
    os.replace(tmp, path)
    diff = "".join(difflib.unified_diff(original.splitlines(keepends=True), updated.splitlines(keepends=True),
                                        f"a/{path.name}", f"b/{path.name}"))
    return AdoptResult(path, article_id, section, question, True, version, diff)
