"""Typed forms of what an index stores: the manifest of a generation and a segment's article records.

They travel between the builder, the store, the engine and the reports; on disk they are JSON
(`to_json` / `from_json`), in memory never untyped dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb_service.models import Article


@dataclass(frozen=True)
class ArticleRecord:
    """An article as a segment stores it: enough to show it without the Markdown file."""

    id: str
    title: str
    category: str
    tags: tuple[str, ...]
    aliases: tuple[str, ...]
    updated: str
    version: int
    owner: str
    path: str  # relative to the articles folder
    hash: str
    markdown: str
    body_line: int = 1

    @classmethod
    def of(cls, article: Article, digest: str, path: str) -> ArticleRecord:
        return cls(id=article.id, title=article.title, category=article.category, tags=tuple(article.tags),
                   aliases=tuple(article.aliases), updated=str(article.updated), version=article.version,
                   owner=article.owner, path=path, hash=digest, markdown=article.markdown,
                   body_line=article.body_line)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArticleRecord:
        return cls(**{**data, "tags": tuple(data["tags"]), "aliases": tuple(data["aliases"])})

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "tags": list(self.tags), "aliases": list(self.aliases)}

    def to_article(self, articles_dir: Path) -> Article:
        """The article as served; sections are not stored (the passages are)."""
        return Article(id=self.id, title=self.title, category=self.category, tags=self.tags, aliases=self.aliases,
                       updated=self.updated, version=self.version, owner=self.owner,
                       path=Path(articles_dir) / self.path, markdown=self.markdown, body_line=self.body_line,
                       sections=())


@dataclass(frozen=True)
class ArticleEntry:
    """The manifest's line for one live article: where its live version is and what it is."""

    path: str  # relative to the articles folder
    version: int
    hash: str
    title: str
    category: str
    segment: str
    passages: int


@dataclass
class Manifest:
    """What a generation is: its segments, the live article versions, and how it was built."""

    signature: dict[str, Any]
    segments: list[str]
    articles: dict[str, ArticleEntry]
    passages: int
    segment_rows: dict[str, int]
    lexical_stats: dict[str, Any]
    segment_checksums: dict[str, str] = field(default_factory=dict)
    embedding_model: str = ""
    embedding_dim: int = 0
    built_at: str = ""
    kb_service_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # keys a newer version wrote, kept as they are

    @property
    def format(self) -> int | None:
        return self.signature.get("format")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        fields = {k: v for k, v in data.items() if k in known}
        fields["articles"] = {aid: ArticleEntry(**e) for aid, e in data.get("articles", {}).items()}
        return cls(**fields, extra={k: v for k, v in data.items() if k not in known})

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every entry, measurable at thousands of articles.
        data = {k: v for k, v in vars(self).items() if k != "extra"}
        data["articles"] = {aid: vars(entry) for aid, entry in self.articles.items()}
        return {**self.extra, **data}
