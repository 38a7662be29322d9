"""Turn articles into the passages that are indexed and shown to agents.

One passage per section keeps each hit a self-contained answer; a section longer than the
limit is split at paragraph, then sentence boundaries, so no passage ends mid-sentence.
"""

from __future__ import annotations

import re

from kb_service.models import Article, Passage, Section

_FENCE_LINE = re.compile(r"^\s*(```+|~~~+)[\w-]*\s*$")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")
_CLAUSE_END = re.compile(r"(?<=[，、,：:])")


def display_text(markdown: str) -> str:
    """Markdown of one section as the plain text an agent reads."""
    lines = [line.rstrip() for line in markdown.splitlines() if not _FENCE_LINE.match(line)]
    text = "\n".join(lines)
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _pieces(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [p for p in pattern.split(text) if p]


def _pack(units: list[str], max_chars: int, joiner: str) -> list[str]:
    """Greedily join units into chunks of at most max_chars characters."""
    chunks: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}{joiner}{unit}" if current else unit
        if len(candidate) <= max_chars:
            current = candidate
            continue
        if current:
            chunks.append(current)
        current = unit
    if current:
        chunks.append(current)
    return chunks


def split_text(text: str, max_chars: int) -> list[str]:
    """Split at paragraphs, then sentences, then clauses; never inside a sentence if avoidable."""
    if len(text) <= max_chars:
        return [text]
    units: list[str] = []
    for paragraph in [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]:
        if len(paragraph) <= max_chars:
            units.append(paragraph)
            continue
        for line in [x for x in paragraph.split("\n") if x.strip()]:
            if len(line) <= max_chars:
                units.append(line)
                continue
            for sentence in _pieces(line, _SENTENCE_END):
                if len(sentence) <= max_chars:
                    units.append(sentence)
                    continue
                for clause in _pack(_pieces(sentence, _CLAUSE_END), max_chars, ""):
                    units.extend(clause[i : i + max_chars] for i in range(0, len(clause), max_chars))
    # Re-pack: paragraphs joined by blank lines, but fragments of one line stay together.
    return _pack(units, max_chars, "\n")


def chunk_section(article: Article, section: Section, max_chars: int, start_index: int) -> list[Passage]:
    text = display_text(section.markdown)
    if not text:
        return []
    heading = " > ".join(section.heading_path)
    scripts = tuple(display_text(s.text) for s in section.scripts if s.text)
    passages = []
    for offset, piece in enumerate(split_text(text, max_chars)):
        passages.append(
            Passage(
                passage_id=f"{article.id}#{start_index + offset}",
                article_id=article.id,
                title=article.title,
                heading=heading,
                text=piece,
                category=article.category,
                tags=article.tags,
                aliases=article.aliases,
                version=article.version,
                line=section.line,
                scripts=tuple(s for s in scripts if s in piece) or (),
                questions=section.questions,
                signals=section.signals,
            )
        )
    return passages


def chunk_article(article: Article, max_chars: int = 600) -> list[Passage]:
    passages: list[Passage] = []
    for section in article.sections:
        passages.extend(chunk_section(article, section, max_chars, len(passages)))
    return passages
