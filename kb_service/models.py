"""Typed objects that flow through the pipeline: article → section → passage → hit."""

from __future__ import annotations

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

    @property
    def ordinal(self) -> int:
        """Position within its article: the chunker numbers passages `article-id#0`, `#1`, …"""
        return int(self.passage_id.rpartition("#")[2])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Passage:
        data = dict(data)
        for key in ("tags", "aliases", "scripts", "questions"):
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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResponse:
    query: str
    confident: bool
    hits: list[Hit]
    confidence: float = 0.0

    def to_dict(self) -> dict:
        return {
            "query": self.query,
            "confident": self.confident,
            "confidence": round(self.confidence, 4),
            "hits": [h.to_dict() for h in self.hits],
        }
