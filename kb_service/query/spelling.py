"""Homophone correction for input-method typos (理陪 → 理赔, 到抢 → 盗抢, 头诉 → 投诉).

Agents type pinyin and pick the wrong character. Any 2–4 character stretch of a query that is not
a known word but sounds like one of the knowledge base's own words is taken to mean that word; the
usual fuzzy initials/finals (z/zh, c/ch, s/sh, l/n, an/ang, en/eng, in/ing) count only towards the
lexicon's domain terms.
The vocabulary comes from the articles themselves, so it follows the content without a hand-kept
typo list.

Words the agent evidently typed on purpose are never rewritten: a stretch that is, or cuts through,
a common Chinese word (出事, 晚上, 比例|是, 多少) is left alone. Without that guard, 出事 became 促使,
比例是 grew 历史 and 一晚上 grew 以往, and those words went into the query's embedding. A slip also
keeps at least one character of the word: a stretch sharing none (做违 → 作为, 税是 → 随时) is
other words that happen to sound alike.

Agents also type whole words as pinyin when the input method is off (lipei, bao an): a run of
letters that reads entirely as vocabulary words becomes those words. Domain terms are also typed by
their initials (jqx → 交强险, csx → 车损险): a run of three to six consonants, which no pinyin or
English word is, that spells the initials of exactly one lexicon term becomes that term.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Container, Iterable, Sequence
from functools import lru_cache

from pypinyin import lazy_pinyin

from kb_service.content.lexicon import match_form

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_LATIN_RUN = re.compile(r"[a-z]+(?: +[a-z]+)*")
_FUZZY = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_INITIALS_RUN = re.compile(r"[b-df-hj-np-tv-z]{3,6}")  # consonants only: not pinyin, not an English word


@lru_cache(maxsize=65536)
def plain_syllable(char: str) -> str:
    return lazy_pinyin(char)[0]


@lru_cache(maxsize=65536)
def fuzzy_syllable(char: str) -> str:
    return fuzzy(plain_syllable(char))


def fuzzy(syllable: str) -> str:
    """A toneless pinyin syllable with the usual input-method confusions folded together."""
    for long, short in _FUZZY:
        if syllable.startswith(long):
            syllable = short + syllable[len(long) :]
            break
    if syllable.startswith("n"):
        syllable = "l" + syllable[1:]
    if syllable.endswith("ng") and syllable[-3:-2] in ("a", "e", "i"):
        syllable = syllable[:-1]
    return syllable


@lru_cache(maxsize=1)
def pinyin_syllables() -> frozenset[str]:
    """Every toneless syllable of the common CJK block (about 400); built on the first pinyin query."""
    syllables = {lazy_pinyin(chr(code))[0] for code in range(0x4E00, 0x9FA6)}
    return frozenset(s for s in syllables if (s.isascii() and s.isalpha() and len(s) > 1) or s in ("a", "e", "o"))


def syllable_splits(letters: str, limit: int = 16, syllables: Container[str] | None = None) -> list[list[str]]:
    """Ways to read a run of letters as pinyin syllables (xian → [xian], [xi, an]); longest first.

    Only positions from which the rest still reads as syllables are entered, so a run that cannot
    be read (xianxian…q) costs one pass instead of every segmentation of its prefix."""
    syllables = pinyin_syllables() if syllables is None else syllables
    n = len(letters)
    completes = [False] * n + [True]  # completes[i]: letters[i:] reads entirely as syllables
    for i in range(n - 1, -1, -1):
        completes[i] = any(completes[j] and letters[i:j] in syllables for j in range(i + 1, min(n, i + 6) + 1))
    splits: list[list[str]] = []

    def walk(i: int, path: list[str]) -> None:
        if len(splits) >= limit:
            return
        if i == n:
            splits.append(list(path))
            return
        for j in range(min(n, i + 6), i, -1):
            if completes[j] and letters[i:j] in syllables:
                path.append(letters[i:j])
                walk(j, path)
                path.pop()

    if completes[0]:
        walk(0, [])
    return splits


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


def initials(word: str) -> str:
    """The first letter of each syllable (交强险 → jqx), as agents abbreviate terms in pinyin."""
    return "".join(syllable[0] for syllable in lazy_pinyin(word))


def initials_table(terms: Iterable[str], preferred: Container[str]) -> dict[str, str]:
    """Initials → the one term of three or more characters they spell. When several terms share
    initials (三者险, 三责险), the one in `preferred` (the words pinyin spells: the articles') wins,
    if only one is."""
    by_initials: dict[str, set[str]] = {}
    for term in terms:
        if len(term) >= 3 and _CJK_RUN.fullmatch(term):
            by_initials.setdefault(initials(term), set()).add(term)
    table = {}
    for key, group in by_initials.items():
        chosen = group if len(group) == 1 else {term for term in group if term in preferred}
        if len(chosen) == 1 and _INITIALS_RUN.fullmatch(key):
            table[key] = chosen.pop()
    return table


def _most_frequent(tables: Iterable[dict[str, tuple[int, str]]]) -> dict[str, str]:
    best: dict[str, tuple[int, str]] = {}
    for table in tables:
        for key, (count, word) in table.items():
            if key not in best or count > best[key][0]:
                best[key] = (count, word)
    return {key: word for key, (_, word) in best.items()}


class HomophoneCorrector:
    """Maps sound keys to the most frequent vocabulary word with that sound."""

    def __init__(self, by_sound: dict[str, str], vocabulary: Iterable[str],
                 spelled_by_sound: dict[str, str] | None = None, fuzzy_words: Iterable[str] | None = None,
                 by_initials: dict[str, str] | None = None) -> None:
        self.by_sound = by_sound
        self.vocabulary = frozenset(vocabulary)
        # Fuzzy sounds (z/zh, l/n, in/ing …) widen the net tenfold; over everyday words the catch is
        # mostly other words (说要 → 索要, 个信 → 个性, 五辆 → 五年), so only the domain's own terms
        # (定顺 → 定损) may be reached by a fuzzy sound. None: every word may.
        self.fuzzy_words = None if fuzzy_words is None else frozenset(fuzzy_words)
        # Typed pinyin names the word exactly, so the articles' own most frequent word wins
        # (baoxian → 保险), not a lexicon variant with the same sound (报险).
        self.spelled_by_sound = by_sound if spelled_by_sound is None else spelled_by_sound
        self.by_initials = by_initials or {}

    @classmethod
    def build(cls, word_counts: Counter[str] | dict[str, int]) -> HomophoneCorrector:
        return cls.merged([sound_table(word_counts)], [word_counts])

    @classmethod
    def merged(cls, tables: Iterable[dict[str, tuple[int, str]]], vocabularies: Iterable[Iterable[str]],
               spelling_tables: Iterable[dict[str, tuple[int, str]]] | None = None,
               fuzzy_words: Iterable[str] | None = None) -> HomophoneCorrector:
        """Combine per-segment tables: for each sound, the word seen in the most passages wins.

        `spelling_tables` (default: `tables`) serve words typed as pinyin; `fuzzy_words` (default:
        all) are the words a typo may reach by a fuzzy sound rather than the exact one, and the
        terms that may be typed by their initials (none by default)."""
        vocabulary = frozenset().union(*(frozenset(v) for v in vocabularies))
        spelled = None if spelling_tables is None else _most_frequent(spelling_tables)
        terms = None if fuzzy_words is None else list(fuzzy_words)
        by_sound = _most_frequent(tables)
        articles_words = set((by_sound if spelled is None else spelled).values())
        return cls(by_sound, vocabulary, spelled, terms, initials_table(terms or [], articles_words))

    def spelled_words(self, query: str) -> list[tuple[str, str]]:
        """(typed, meant) pairs for knowledge-base words typed as pinyin (lipei → 理赔, bao an → 报案).

        A run of letters counts only when all of it reads as whole vocabulary words of two or more
        syllables, or is a domain term's initials (jqx → 交强险), so English (call, list, emoji) and
        acronyms (KPI, VIP) stay as they are.
        """
        found: list[tuple[str, str]] = []
        for match in _LATIN_RUN.finditer(match_form(query)):
            run = match.group(0)
            chunks = run.split()
            candidates = [run, *chunks] if len(chunks) > 1 else [run]
            for typed in candidates:
                meant = self._spelled(typed)
                if meant:
                    found.append((typed, meant))
                    if typed == run:
                        break
        return found

    def _spelled(self, typed: str) -> str | None:
        """The fewest vocabulary words whose sounds spell `typed`, joined, or the domain term whose
        initials it is; None if neither."""
        if _INITIALS_RUN.fullmatch(typed):
            return self.by_initials.get(typed)
        best: list[str] | None = None
        for split in self._typed_splits(typed):
            cover = self._cover(split)
            if cover is not None and (best is None or len(cover) < len(best)):
                best = cover
        return "".join(best) if best else None

    @staticmethod
    def _typed_splits(typed: str) -> list[list[str]]:
        """Syllable readings of the run; typed spaces are syllable boundaries."""
        splits: list[list[str]] = [[]]
        for chunk in typed.split():
            readings = syllable_splits(chunk)
            splits = [head + reading for head in splits for reading in readings][:16]
        return splits

    def _cover(self, syllables: list[str]) -> list[str] | None:
        """Words of 2–4 syllables covering all of `syllables`, fewest words first (None if impossible)."""
        keys = [fuzzy(s) for s in syllables]
        best: list[list[str] | None] = [None] * (len(keys) + 1)
        best[0] = []
        for end in range(2, len(keys) + 1):
            for size in range(2, 5):
                start = end - size
                if start < 0 or best[start] is None:
                    continue
                word = self.spelled_by_sound.get(" ".join(keys[start:end]))
                if word and not self._fuzzy_allowed(word) and [plain_syllable(c) for c in word] != syllables[start:end]:
                    word = None  # a fuzzy sound reaches only domain terms, as in corrections()
                if word and (best[end] is None or len(best[start]) + 1 < len(best[end])):  # type: ignore[arg-type]
                    best[end] = [*best[start], word]  # type: ignore[misc]
        return best[len(keys)]

    def corrections(self, query: str, max_len: int = 4, intended: Sequence[tuple[int, int]] = ()) -> list[tuple[str, str]]:
        """(typed, meant) pairs: vocabulary words the query probably meant but did not type.

        `intended`: (start, end) spans of the normalised query holding words typed on purpose;
        a stretch equal to one, or cutting through one, is not a typo.
        """
        found: list[tuple[str, str]] = []
        seen: set[str] = set()
        corrected: list[tuple[int, int]] = []
        for match in _CJK_RUN.finditer(match_form(query)):
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
                    # An input-method slip swaps a character or two and keeps the rest: a
                    # stretch sharing no character with the word is other words (做违 ≠ 作为).
                    if word and word != window and word not in seen and word not in run and set(word) & set(window) \
                            and self._sounds_close_enough(window, word):
                        seen.add(word)
                        corrected.append((start, end))
                        found.append((window, word))
        return found

    def _fuzzy_allowed(self, word: str) -> bool:
        return self.fuzzy_words is None or word in self.fuzzy_words

    def _sounds_close_enough(self, typed: str, word: str) -> bool:
        return self._fuzzy_allowed(word) or all(plain_syllable(a) == plain_syllable(b) for a, b in zip(typed, word, strict=True))
