"""The not-covered questions (content/not_covered.py) embedded, and how close a query comes to them.

The questions are embedded the way a query is (the reading's first question, analysed), so a
query and a listed question are compared like for like. Vectors come from the index's embedding
cache when it has them: the list is re-read whenever its file changes (checked at most once a
second by the engine), and an edit re-embeds only the questions it adds.

The words of the topics' names are kept too. m3e puts every car-insurance question near every
other (cosines of 0.8 and more), so a query about 年检 or 车船税 often sits no nearer the listed
question than its passage; its words say it plainly. A query word the articles never use is
unknown either way; one that names a listed topic (年检预约, 车船税减免) is a topic known to be
missing (confidence.py). The names, not the questions: questions written as customers type them
carry everyday words (上个月, 保险杠, 4S店) that answerable questions use as much; and of the names'
words, only those the list's own questions use mostly under that name (`topic_words`).

A name jieba cuts into everyday words (电子发票 into 电子 + 发票, both in the articles) says nothing
word by word; written out whole in a question, and used by no article, it names the topic
(`AbsentNames`, `NotCoveredIndex.named_in`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Collection, KeysView
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from kb_service.content.lexicon import match_form
from kb_service.content.not_covered import load_not_covered
from kb_service.index.embedding import Embedder
from kb_service.index.embedding_cache import EmbeddingCache
from kb_service.index.lexical import LexicalRetriever
from kb_service.models import Passage
from kb_service.query.tokenizer import bigrams
from kb_service.search.passages import passage_text

log = logging.getLogger(__name__)

FileState = tuple[int, int] | None  # (mtime_ns, size) of the list's file; None when it is absent
ReadQuestion = tuple[str, tuple[str, ...]]  # the text embedded for a question, and its content words


def file_state(path: Path) -> FileState:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@dataclass(frozen=True)
class NotCoveredIndex:
    """One embedded version of the list: row i is `topics[i]`'s question `questions[i]`."""

    topics: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    state: FileState = None
    searched: dict[str, ReadQuestion] = field(default_factory=dict)  # question or topic name → how it was read
    # Each word of the topics' names that counts (topic_words) → the rows whose topic it names.
    rows_naming: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def words(self) -> KeysView[str]:
        """The topics' names' words that count (the feature `not_covered_words` reads them)."""
        return self.rows_naming.keys()

    @cached_property
    def names(self) -> dict[str, str]:
        """Each topic's name of two characters or more, in the match form → the topic."""
        return {match_form(topic): topic for topic in dict.fromkeys(self.topics) if len(topic) >= 2}

    def named_in(self, text: str, absent: Collection[str]) -> list[str]:
        """The topics whose name, used by no article (`absent`), `text` writes out (电子发票 in
        「车险电子发票在哪下载」)."""
        text = match_form(text)
        return [topic for name, topic in self.names.items() if name in absent and name in text]

    def nearest(self, vector: np.ndarray, words: Collection[str] = (),
                named: Collection[str] = ()) -> tuple[float, str | None]:
        """Cosine of the closest listed question, and the topic to name; (0, None) for an empty list.

        The topic is the closest question's, unless the query holds a word that names topics
        (`words`: its content words) or writes out a topic's name (`named`: those topics): then
        the closest of those topics' questions. 「年检要带哪些证件」 sits nearest 驾照换证 by cosine,
        and belongs under a 年检 topic."""
        if self.vectors is None or not len(self.questions):
            return 0.0, None
        scores = self.vectors @ vector
        best = int(np.argmax(scores))
        rows = {row for word in words for row in self.rows_naming.get(word, ())}
        if named:
            rows.update(row for row, topic in enumerate(self.topics) if topic in named)
        chosen = max(rows, key=lambda row: scores[row]) if rows else best
        return float(scores[best]), self.topics[chosen]


class AbsentNames:
    """The list's topic names that no passage of the served index uses, worked out once per index
    and list version (a name an article uses, like 私了 or 误工费, is no sign a question is out of
    scope). Thread-safe by replacement: two searches may both work it out, once."""

    def __init__(self) -> None:
        self._worked_out: tuple[object, object, frozenset[str]] = (None, None, frozenset())

    def of(self, passages: dict[str, Passage], lexical: LexicalRetriever, listed: NotCoveredIndex) -> frozenset[str]:
        """`passages` and `lexical`: the served index's. Each name is looked for only in the
        passages indexed with all its bigrams (10k passages: a few milliseconds, not the second
        reading them all takes)."""
        for_passages, for_list, names = self._worked_out
        if for_passages is passages and for_list is listed:
            return names
        absent = []
        for name in listed.names:
            holding = (passages.get(pid) for pid in lexical.holding(bigrams(name)))
            if not any(p is not None and name in passage_text(p) for p in holding):
                absent.append(name)
        names = frozenset(absent)
        self._worked_out = (passages, listed, names)
        return names


def topic_words(pairs: list[tuple[str, str]], read: dict[str, ReadQuestion]) -> frozenset[str]:
    """Words of the topics' names that say what is missing, not where it happened.

    A word counts when at least half of the listed questions using it belong to topics named with
    it: 年检 is used by the 年检 topics' questions, while 4S店 or 全责 (in 「4S店保管」, 「行人全责」) are
    used by the questions of many other topics too, as the scene of a story, and answerable
    questions tell such scenes as often."""
    named: dict[str, set[str]] = {}
    for topic in dict.fromkeys(topic for topic, _ in pairs):
        for word in read[topic][1]:
            named.setdefault(word, set()).add(topic)
    in_own, in_any = dict.fromkeys(named, 0), dict.fromkeys(named, 0)
    for topic, question in pairs:
        for word in set(read[question][1]) & named.keys():
            in_any[word] += 1
            in_own[word] += topic in named[word]
    return frozenset(word for word in named if 2 * in_own[word] >= in_any[word])


def embed_cached(texts: list[str], embedder: Embedder, cache_path: Path | None) -> np.ndarray:
    """Vectors of `texts`, through the index's embedding cache when it can be opened."""
    if cache_path is not None:
        try:
            cache = EmbeddingCache(cache_path)
            try:
                vectors, _ = cache.embed(texts, embedder)
                return np.asarray(vectors, dtype=np.float32)
            finally:
                cache.close()
        except (OSError, sqlite3.Error):
            log.warning("embedding cache %s unusable; embedding directly", cache_path)
    return np.asarray(embedder.encode(texts), dtype=np.float32)


def embed_not_covered(path: Path, read: Callable[[str], ReadQuestion], embedder: Embedder,
                      cache_path: Path | None) -> NotCoveredIndex:
    """Read the list and embed each question as the engine would embed it as a query.

    `read` maps a question (or a topic's name) to the text the engine embeds for it and its content
    words. A list with problems keeps its valid topics (`kb check` reports the rest); a cache that
    cannot be opened is skipped."""
    state = file_state(path)
    listed = load_not_covered(path)
    pairs = listed.questions()
    if not pairs:
        return NotCoveredIndex(state=state)
    searched = {text: read(text) for text in dict.fromkeys(text for pair in pairs for text in pair)}
    vectors = embed_cached([searched[question][0] for _, question in pairs], embedder, cache_path)
    words = topic_words(pairs, searched)
    rows_naming: dict[str, list[int]] = {}
    for row, (topic, _) in enumerate(pairs):
        for word in words.intersection(searched[topic][1]):
            rows_naming.setdefault(word, []).append(row)
    return NotCoveredIndex([t for t, _ in pairs], [q for _, q in pairs], vectors, state,
                           searched, {word: tuple(rows) for word, rows in rows_naming.items()})
