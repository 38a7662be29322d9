"""Lexical backends behind one interface: BM25F over in-memory segments (the default) or Whoosh.

A backend answers `search(terms, limit, category, tags)` with (passage id, score) best first,
over live passages only. `search/snapshot.py` picks one per loaded generation
(`Settings.lexical_backend`); a new backend implements `LexicalRetriever` and is added there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from kb_service.query.tokenizer import QueryTerms


@runtime_checkable
class LexicalRetriever(Protocol):
    def search(self, terms: QueryTerms, limit: int, category: str | None = None,
               tags: Sequence[str] | None = None) -> list[tuple[str, float]]: ...

    def holding(self, grams: Sequence[str]) -> list[str]:
        """Live passage ids whose text may hold a phrase with these bigrams (`tokenizer.bigrams`):
        a superset of those that do, for checking a phrase without reading every passage."""
        ...

    def close(self) -> None: ...
