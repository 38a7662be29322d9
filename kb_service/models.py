"""Typed objects that flow through the pipeline: article → section → passage → hit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

CATEGORIES: dict[str, str] = {
    "coverage": "险种说明",
    "claims": "理赔材料与流程",
    "script": "合规话术",
    "process": "服务流程",
    "compliance": "合规与风控",
    "service": "服务技巧",
    "training": "培训与发展",
}


@dataclass(frozen=True)
class Problem:
    """One validation finding, printed as `path:line: message`."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class ScriptBlock:
    """A customer-facing script (话术) the side panel offers to copy."""

    text: str
    line: int


@dataclass(frozen=True)
class Section:
    """Text under one heading, up to the next heading: the unit an agent reads."""

    heading_path: tuple[str, ...]
    markdown: str
    line: int
    scripts: tuple[ScriptBlock, ...] = ()
    questions: tuple[str, ...] = ()  # 相似问: how agents ask for what this section answers
    signals: tuple[str, ...] = ()  # 聊天信号: words in a customer's message that call for this section

    @property
    def heading(self) -> str:
        return " > ".join(self.heading_path)


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    category: str
    tags: tuple[str, ...]
    aliases: tuple[str, ...]
    updated: str
    version: int
    owner: str
    path: Path
    markdown: str
    body_line: int
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Passage:
    """What gets indexed and shown: one section (or a piece of a long one)."""

    passage_id: str
    article_id: str
    title: str
    heading: str
    text: str
    category: str
    tags: tuple[str, ...]
    aliases: tuple[str, ...]
    version: int
    line: int
    scripts: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()  # its section's 相似问, embedded beside the passage
    signals: tuple[str, ...] = ()  # its section's chat signals (search/situations.py)

    @property
    def ordinal(self) -> int:
        """Position within its article: the chunker numbers passages `article-id#0`, `#1`, …"""
        return int(self.passage_id.rpartition("#")[2])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Passage:
        """A stored passage; fields this version does not know are ignored, so a replica not yet
        upgraded can still read a generation written by a newer indexer (signals were such a field)."""
        data = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        for key in ("tags", "aliases", "scripts", "questions", "signals"):
            data[key] = tuple(data.get(key) or ())
        return cls(**data)


@dataclass
class Hit:
    """One result: an article with its best passage."""

    article_id: str
    title: str
    heading: str
    text: str
    score: float
    category: str
    version: int
    highlights: list[str] = field(default_factory=list)
    passage_id: str = ""
    scripts: list[str] = field(default_factory=list)
    # The chat signal in the customer's message that put this section here, though the message did
    # not ask for it (「红包」 → the gifts red line); None for a hit the question found.
    signal: str | None = None
    # Shown because the section question nearest the query names this section, though the ranking
    # left its article out of the places above (search/answered.py); False for a ranked hit.
    via_section_question: bool = False

    @classmethod
    def of(cls, passage: Passage, score: float = 0.0, highlights: list[str] | None = None,
           signal: str | None = None) -> Hit:
        """A passage shown as a result."""
        return cls(passage.article_id, passage.title, passage.heading, passage.text, score, passage.category,
                   passage.version, highlights or [], passage.passage_id, list(passage.scripts), signal)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class QuestionAnswer:
    """The results for one of the questions a query asks."""

    question: str
    hits: list[Hit]
    confident: bool
    confidence: float
    features: object = None  # ConfidenceFeatures, for calibration
    outside_filter: str | None = None  # the best answer's category when a filter excluded it
    spelled_as: str | None = None  # what was searched, when typos in the question were corrected
    not_covered: str | None = None  # not confident, and nearer this not-covered topic than to its answer

    def to_dict(self) -> dict:
        return {"question": self.question, "confident": self.confident, "confidence": round(self.confidence, 4),
                "outside_filter": self.outside_filter, "spelled_as": self.spelled_as,
                "not_covered": self.not_covered, "hits": [h.to_dict() for h in self.hits]}


def first_passages(passages: Iterable[Passage]) -> dict[tuple[str, str], Passage]:
    """(article id, heading) → the section's first passage: what stands for a section when a
    section, not a passage, is chosen (a long section is cut into several passages)."""
    firsts: dict[tuple[str, str], Passage] = {}
    for passage in passages:
        key = (passage.article_id, passage.heading)
        if key not in firsts or passage.ordinal < firsts[key].ordinal:
            firsts[key] = passage
    return firsts


def place_hit(hits: list[Hit], hit: Hit, rank: int, k: int) -> list[Hit]:
    """`hit` at `rank` (1-based; last in a shorter list), its article's other hit removed: one
    result per article, whatever put this one there."""
    rest = [h for h in hits if h.article_id != hit.article_id]
    return (rest[: rank - 1] + [hit] + rest[rank - 1 :])[:k]


def merge_hits(answers: list[QuestionAnswer], k: int) -> list[Hit]:
    """One list for a query that asks several things: the first question's results first (its
    answer is what the query is judged by), then the best result of each further question."""
    if len(answers) == 1:
        return answers[0].hits[:k]
    extra = [a.hits[0] for a in answers[1:] if a.hits]
    first = answers[0].hits[: max(1, k - len(extra))]
    seen = {h.article_id for h in first}
    merged = list(first)
    for hit in extra + answers[0].hits[len(first):]:
        if hit.article_id not in seen and len(merged) < k:
            merged.append(hit)
            seen.add(hit.article_id)
    return merged


@dataclass
class SearchResponse:
    query: str
    confident: bool
    hits: list[Hit]
    confidence: float = 0.0
    reading: object = None  # query_reading.Reading: how the query was read
    questions: list[QuestionAnswer] = field(default_factory=list)  # one per question when it asks several
    outside_filter: str | None = None  # a filter excluded the best answer, which is in this category
    spelled_as: str | None = None  # the first question as searched, when its typos were corrected
    not_covered: str | None = None  # the first question's QuestionAnswer.not_covered

    def to_dict(self) -> dict:
        data = {
            "query": self.query,
            "confident": self.confident,
            "confidence": round(self.confidence, 4),
            "hits": [h.to_dict() for h in self.hits],
        }
        if self.reading is not None:
            data["reading"] = self.reading.to_dict()  # type: ignore[attr-defined]
        data["questions"] = [q.to_dict() for q in self.questions]
        data["outside_filter"] = self.outside_filter
        data["spelled_as"] = self.spelled_as
        data["not_covered"] = self.not_covered
        return data
