"""Questions agents are asked that the knowledge base does not answer: `articles/not-covered.yaml`.

An out-of-scope question worded in car-insurance terms (退保手续费, 车船税, 年检) lands on a passage
about the same topic and looks answered: the confidence features measure how alike the two are,
not whether the passage answers. Editors (fed by the analysts' gap report) list such questions
by topic; a query closer to one of them than to the passage it found is less likely marked
confident (confidence feature `not_covered`), and the panel names the topic. A topic leaves the
list when an article comes to answer it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kb_service.content.lexicon import line_of, read_editor_file, yaml_problem
from kb_service.models import Problem


@dataclass(frozen=True)
class NotCovered:
    """Topic → the questions of it the knowledge base does not answer, in file order."""

    topics: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def questions(self) -> list[tuple[str, str]]:
        """(topic, question) pairs, one per listed question."""
        return [(topic, question) for topic, questions in self.topics.items() for question in questions]


NOT_COVERED_FILE = "not-covered.yaml"


def not_covered_file(configured: Path | str | None, articles_dir: Path | str) -> Path:
    """The list's file: the configured path, else not-covered.yaml beside the articles."""
    return Path(configured) if configured else Path(articles_dir) / NOT_COVERED_FILE


def load_not_covered(path: Path | str) -> NotCovered:
    """Read and validate the list; a missing file is an empty list, problems are kept, never raised."""
    path = Path(path)
    text, unreadable = read_editor_file(path, "not-covered list")
    if text is None:
        return NotCovered(problems=[unreadable] if unreadable else [])
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        return NotCovered(problems=[yaml_problem(path, exc)])
    if not isinstance(data, dict):
        return NotCovered(problems=[Problem(path, 1, "not-covered list must map a topic to a list of questions")])
    lines = text.splitlines()
    topics: dict[str, list[str]] = {}
    problems: list[Problem] = []
    for topic, questions in data.items():
        line = line_of(lines, f"{topic}:")
        if not isinstance(questions, list) or not questions:
            problems.append(Problem(path, line, f"topic '{topic}' must list at least one question"))
            continue
        kept = [q.strip() for q in questions if isinstance(q, str) and q.strip()]
        if len(kept) != len(questions):
            problems.append(Problem(path, line, f"topic '{topic}': every question must be non-empty text"))
        if kept:
            topics[str(topic)] = kept
    return NotCovered(topics, problems)
