"""Questions a section answers, asked the way customers and agents ask them: `articles/section-questions.jsonl`.

The 相似问 in an article are searched; these are not. Each row is one question in a customer's or
an agent's style (a pasted chat message, a situation told in the customer's words, dictation,
Chinese mixed with English) and the section that answers it. They teach the learned re-ranker
(scripts/train_reranker.py) and show the confidence model what answered questions look like: a
query close to one of them is likely answered (confidence feature `answered_match`), whichever
words it uses. The 相似问 are written as clean questions, so a pasted message or a dictated one
sits far from all of them even when a section answers it; here the styles are the agents'.

Rows name their section by article id and `## ` heading; a row whose section has been renamed or
removed counts for nothing (a removed section no longer answers it) and `kb check` lists it.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from kb_service.content.lexicon import read_editor_file
from kb_service.models import Problem

SECTION_QUESTIONS_FILE = "section-questions.jsonl"


@dataclass(frozen=True)
class SectionQuestion:
    query: str
    article: str
    heading: str
    style: str = ""
    line: int = 0  # in the file, for `kb check`

    @property
    def section(self) -> tuple[str, str]:
        return self.article, self.heading


@dataclass(frozen=True)
class SectionQuestions:
    rows: list[SectionQuestion] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def section_questions_file(configured: Path | str | None, articles_dir: Path | str) -> Path:
    """The file: the configured path, else section-questions.jsonl beside the articles."""
    return Path(configured) if configured else Path(articles_dir) / SECTION_QUESTIONS_FILE


def row_problem(item: object) -> str | None:
    """Why a parsed line is not a usable row (None when it is)."""
    if not isinstance(item, dict):
        return "each line must be a JSON object"
    for key in ("query", "article", "heading"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            return f"'{key}' must be non-empty text"
    return None


def load_section_questions(path: Path | str) -> SectionQuestions:
    """Read and validate the file; a missing file is empty, bad lines are reported, never raised."""
    path = Path(path)
    text, unreadable = read_editor_file(path, "section questions file")
    if text is None:
        return SectionQuestions(problems=[unreadable] if unreadable else [])
    rows: list[SectionQuestion] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(path, number, f"not JSON: {exc.msg}"))
            continue
        problem = row_problem(item)
        if problem:
            problems.append(Problem(path, number, problem))
            continue
        rows.append(SectionQuestion(item["query"].strip(), item["article"].strip(), item["heading"].strip(),
                                    str(item.get("style") or ""), number))
    return SectionQuestions(rows, problems)


def unknown_sections(path: Path | str, loaded: SectionQuestions, sections: Collection[tuple[str, str]]) -> list[Problem]:
    """One note per row whose (article, heading) is none of `sections`: renamed or removed."""
    return [Problem(Path(path), row.line, f"section '{row.article} › {row.heading}' does not exist: the question "
                                          "counts for nothing until it names a current section")
            for row in loaded.rows if row.section not in sections]
