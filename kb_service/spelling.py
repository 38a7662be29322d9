"""Homophone correction for input-method typos (理陪 → 理赔, 到抢 → 盗抢, 头诉 → 投诉).

Agents type pinyin and pick the wrong character. Any 2–4 character stretch of a query that is not
a known word but sounds like one of the knowledge base's own words (with the usual fuzzy
initials/finals: z/zh, c/ch, s/sh, l/n, an/ang, en/eng, in/ing) is taken to mean that word.
The vocabulary comes from the articles themselves, so it follows the content without a hand-kept
typo list.

Words the agent evidently typed on purpose are never rewritten: a stretch that is, or cuts through,
a common Chinese word (出事, 晚上, 比例|是, 多少) is left alone. Without that guard, 出事 became 促使,
比例是 grew 历史 and 一晚上 grew 以往, and those words went into the query's embedding.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from pypinyin import lazy_pinyin

from .lexicon import normalise

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_FUZZY = (("zh", "z"), ("ch", "c"), ("sh", "s"))


@lru_cache(maxsize=65536)
def fuzzy_syllable(char: str) -> str:
    syllable = lazy_pinyin(char)[0]
    for long, short in _FUZZY:
        if syllable.startswith(long):
            syllable = short + syllable[len(long) :]
            break
    if syllable.startswith("n"):
        syllable = "l" + syllable[1:]
    if syllable.endswith("ng") and syllable[-3:-2] in ("a", "e", "i"):
        syllable = syllable[:-1]
    return syllable


def sound_key(word: str) -> str:
    return " ".join(fuzzy_syllable(ch) for ch in word)


def sound_table(word_counts: Counter[str] | dict[str, int], min_len: int = 2, max_len: int = 4) -> dict[str, tuple[int, str]]:
    """Sound key → (passage count, word) of the most frequent CJK word with that sound."""
    table: dict[str, tuple[int, str]] = {}
    for word, count in word_counts.items():
        if not (min_len <= len(word) <= max_len) or not _CJK_RUN.fullmatch(word):
            continue
        key = sound_key(word)
        if key not in table or count > table[key][0]:
            table[key] = (count, word)
    return table


class HomophoneCorrector:
    """Maps sound keys to the most frequent vocabulary word with that sound."""

    def __init__(self, by_sound: dict[str, str], vocabulary: Iterable[str]) -> None:
        self.by_sound = by_sound
        self.vocabulary = frozenset(vocabulary)

    @classmethod
    def build(cls, word_counts: Counter[str] | dict[str, int]) -> HomophoneCorrector:
        return cls.merged([sound_table(word_counts)], [word_counts])

    @classmethod
    def merged(cls, tables: Iterable[dict[str, tuple[int, str]]], vocabularies: Iterable[Iterable[str]]) -> HomophoneCorrector:
        """Combine per-segment tables: for each sound, the word seen in the most passages wins."""
        best: dict[str, tuple[int, str]] = {}
        for table in tables:
            for key, (count, word) in table.items():
                if key not in best or count > best[key][0]:
                    best[key] = (count, word)
        vocabulary = frozenset().union(*(frozenset(v) for v in vocabularies))
        return cls({k: w for k, (_, w) in best.items()}, vocabulary)

    def corrections(self, query: str, max_len: int = 4, intended: Sequence[tuple[int, int]] = ()) -> list[tuple[str, str]]:
        """(typed, meant) pairs: vocabulary words the query probably meant but did not type.

        `intended`: (start, end) spans of the normalised query holding words typed on purpose;
        a stretch equal to one, or cutting through one, is not a typo.
        """
        found: list[tuple[str, str]] = []
        seen: set[str] = set()
        corrected: list[tuple[int, int]] = []
        for match in _CJK_RUN.finditer(normalise(query)):
            run = match.group(0)
            keys = [fuzzy_syllable(ch) for ch in run]
            for size in range(max_len, 1, -1):
                for i in range(len(run) - size + 1):
                    window = run[i : i + size]
                    if window in self.vocabulary:
                        continue
                    start, end = match.start() + i, match.start() + i + size
                    if any(s < end and start < e and not (start <= s and e <= end and e - s < size) for s, e in intended):
                        continue  # is, or cuts through, a word typed on purpose (a larger stretch may hold one)
                    if any(s < end and start < e for s, e in corrected):
                        continue  # already inside a longer correction: 附加险 does not also yield 家乡 from 加险
                    word = self.by_sound.get(" ".join(keys[i : i + size]))
                    if word and word != window and word not in seen and word not in run:
                        seen.add(word)
                        corrected.append((start, end))
                        found.append((window, word))
        return found
