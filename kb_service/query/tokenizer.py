"""Text analysis shared by indexing and querying.

Two views of the same text are indexed: jieba words (precise, and the domain dictionary keeps
terms like 第三者责任险 whole) and CJK character bigrams (robust to paraphrase and typos that
jieba cuts differently). Both run on our own `jieba.Tokenizer` instance so the domain
dictionary never leaks into, or depends on, jieba's global state.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import jieba

from kb_service.content.lexicon import match_form
from kb_service.models import Passage

# Field → boost: an agent's words matching a title, alias or heading say more than a body match.
TEXT_FIELDS: dict[str, float] = {"title": 3.0, "alias": 3.0, "heading": 2.0, "body": 1.0}


@dataclass(frozen=True)
class QueryTerms:
    """Weighted index terms for one query: jieba words and bigrams."""

    words: tuple[tuple[str, float], ...]
    bigrams: tuple[tuple[str, float], ...]


def passage_fields(passage: Passage) -> dict[str, str]:
    """The text of each indexed field (aliases and tags are searched as one field)."""
    return {
        "title": passage.title,
        "alias": " ".join(passage.aliases + passage.tags),
        "heading": passage.heading,
        "body": passage.text,
    }

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SEGMENT = re.compile(rf"[{_CJK}]+|[a-z0-9]+(?:[.\-][a-z0-9]+)*")
_WORDLIKE = re.compile(rf"[{_CJK}a-z0-9]")

# Function and question words carry no topic: agents wrap every question in them.
STOP_WORDS = frozenset(
    ["的", "了", "吗", "呢", "啊", "吧", "呀", "么", "嘛", "哦", "是", "在", "有", "和", "与", "及", "或", "就", "都", "也", "还", "要", "会", "能", "可", "可以", "怎么", "怎么办", "怎样", "如何", "什么", "啥", "哪些", "哪个", "哪", "多少", "几", "为什么", "为啥", "咋", "咋办", "咋整", "我", "你", "您", "他", "她", "它", "我们", "你们", "他们", "这", "那", "这个", "那个", "这些", "那些", "一个", "一下", "请问", "请", "吗", "得", "地", "着", "过", "被", "把", "给", "让", "对", "从", "到", "很", "太", "又", "再", "该", "应该", "需要", "是否", "不", "没", "没有", "一些", "有没有", "能不能", "可不可以", "要不要", "是不是", "多久", "哪里", "怎么样", "时候", "的话", "一般"]
)
STOP_CHARS = frozenset("的了吗呢啊吧呀么嘛哦是在有和与就都也还要会能可怎样什啥咋哪些多少几我你您他她它这那个一下请问得地着过被把给让对从到很太又再该不没久里候话般")


# Bounded: under `kb serve --watch` every lexicon edit makes a new dictionary; old ones are dropped.
JIEBA_CACHE_SIZE = 4
_JIEBA_BY_FINGERPRINT: OrderedDict[str, jieba.Tokenizer] = OrderedDict()
_JIEBA_LOCK = threading.Lock()


def _loaded_jieba(words: tuple[str, ...], fingerprint: str) -> jieba.Tokenizer:
    """One loaded jieba per dictionary per process: loading costs ~1 s, and an index update
    followed by a reload would otherwise pay it twice while the edited article waits."""
    with _JIEBA_LOCK:
        tk = _JIEBA_BY_FINGERPRINT.get(fingerprint)
        if tk is not None:
            _JIEBA_BY_FINGERPRINT.move_to_end(fingerprint)
        else:
            jieba.setLogLevel(logging.WARNING)  # its load messages are noise in a server log
            tk = jieba.Tokenizer()
            tk.initialize()
            for word in words:
                tk.add_word(word, freq=max(tk.suggest_freq(word, tune=False), 2000))
            _JIEBA_BY_FINGERPRINT[fingerprint] = tk
            while len(_JIEBA_BY_FINGERPRINT) > JIEBA_CACHE_SIZE:
                _JIEBA_BY_FINGERPRINT.popitem(last=False)
        return tk


class DomainTokenizer:
    """A dedicated jieba instance loaded with the domain dictionary; thread-safe, lazily built."""

    def __init__(self, words: Iterable[str] = ()) -> None:
        self.words = tuple(sorted(set(words)))
        self._jieba: jieba.Tokenizer | None = None
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        return hashlib.sha1("\n".join(self.words).encode()).hexdigest()[:12]

    def _instance(self) -> jieba.Tokenizer:
        if self._jieba is None:
            with self._lock:
                if self._jieba is None:
                    self._jieba = _loaded_jieba(self.words, self.fingerprint)
        return self._jieba

    def spans(self, text: str) -> Iterator[tuple[str, int, int]]:
        """(word, start, end) in search mode: whole words plus their dictionary sub-words."""
        yield from self._instance().tokenize(text, mode="search")

    def dictionary_count(self, word: str) -> int:
        """How often jieba's general dictionary (plus the domain words) has seen `word`; 0 if never."""
        return int(self._instance().FREQ.get(word) or 0)

    def specificity(self, word: str) -> float:
        """-log P(word) in general Chinese (jieba's dictionary): rare words say more about a query."""
        return -math.log((self.dictionary_count(word) + 1) / self._instance().total)

    def __getstate__(self) -> dict:
        return {"words": self.words}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["words"])


def word_spans(text: str, tokenizer: DomainTokenizer) -> Iterator[tuple[str, int, int]]:
    yield from index_words(tokenizer.spans(match_form(text)))


def index_words(spans: Iterable[tuple[str, int, int]]) -> Iterator[tuple[str, int, int]]:
    """The tokenizer's spans that are indexed as words: no punctuation, no stop words."""
    for word, start, end in spans:
        word = word.strip()
        if word and _WORDLIKE.search(word) and word not in STOP_WORDS:
            yield word, start, end


def bigram_spans(text: str) -> Iterator[tuple[str, int, int]]:
    """CJK character bigrams (a lone character stays a unigram) and whole ASCII words."""
    text = match_form(text)
    for match in _SEGMENT.finditer(text):
        segment, offset = match.group(0), match.start()
        if not ("\u3400" <= segment[0] <= "\ufaff"):
            yield segment, offset, offset + len(segment)
            continue
        if len(segment) == 1:
            if segment not in STOP_CHARS:
                yield segment, offset, offset + 1
            continue
        for i in range(len(segment) - 1):
            gram = segment[i : i + 2]
            if gram[0] in STOP_CHARS and gram[1] in STOP_CHARS:
                continue
            yield gram, offset + i, offset + i + 2


def words(text: str, tokenizer: DomainTokenizer) -> list[str]:
    return [w for w, _, _ in word_spans(text, tokenizer)]


def bigrams(text: str) -> list[str]:
    return [g for g, _, _ in bigram_spans(text)]
