"""Chinese abbreviations (缩略语) read back into the knowledge base's own terms.

Agents shorten long terms the way Chinese always does, by keeping a character or two of each part:
个人信息 → 个信, 群体投诉 → 群诉, 人员伤亡 → 人伤, 消费者权益保护法 → 消保法. The lexicon lists the
common ones by hand; this reads the long tail from the vocabulary itself, so a new article's terms
are covered without an editor thinking of every shortening.

A typed word is read as an abbreviation only when nobody could have meant it literally: it is not a
word of the articles, not a lexicon form and not common Chinese. The long term must start with the
same character, contain the rest in order, and be at most a few characters longer (保险管 is not
保险销售行为管理办法).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

_CJK_WORD = re.compile(r"[\u4e00-\u9fff]+")


def is_abbreviation_of(short: str, term: str, max_growth: int = 2) -> bool:
    """`short` keeps `term`'s first character and the rest in order, and `term` is not much longer."""
    if not (len(short) < len(term) <= max_growth * len(short) + 2) or short[0] != term[0]:
        return False
    rest = iter(term[1:])
    return all(char in rest for char in short[1:])


class AbbreviationReader:
    """Long terms indexed by first character; the shortest term an abbreviation fits wins."""

    def __init__(self, terms: Iterable[str]) -> None:
        by_first: dict[str, list[str]] = defaultdict(list)
        for term in set(terms):
            if len(term) >= 3 and _CJK_WORD.fullmatch(term):
                by_first[term[0]].append(term)
        self._by_first = {first: sorted(group, key=lambda t: (len(t), t)) for first, group in by_first.items()}

    def expand(self, short: str) -> str | None:
        if not (2 <= len(short) <= 4) or not _CJK_WORD.fullmatch(short):
            return None
        return next((term for term in self._by_first.get(short[0], ()) if is_abbreviation_of(short, term)), None)
