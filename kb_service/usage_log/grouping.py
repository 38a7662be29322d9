"""Canonical form of a query so analysts can group 「三者险 赔多少？」 with 「三者险赔多少」.

Only surface differences are removed (width, case, spaces, punctuation); words are never
changed, so two queries share a normalised form only if an agent would call them the same text.
"""

from __future__ import annotations

import re
import unicodedata

from kb_service.masking import PLACEHOLDER

# Unicode general categories: P* = punctuation, S* = symbols (＋, ～, ￥, emoji), Z* = separators,
# C* = control/format characters (zero-width spaces pasted from chat tools).
_DROPPED_CATEGORIES = ("P", "S", "Z", "C")
# Placeholders written by masking (〔手机号〕) are kept whole: stripping their brackets would make
# 「〔手机号〕怎么改」 (an agent pasted a number) group with 「手机号怎么改」 (a real question).
_PLACEHOLDER = re.compile(f"({PLACEHOLDER.pattern})")  # one group: re.split keeps them


def _strip(part: str) -> str:
    folded = unicodedata.normalize("NFKC", part).lower()
    return "".join(
        ch for ch in folded if not ch.isspace() and unicodedata.category(ch)[0] not in _DROPPED_CATEGORIES
    )


def grouping_form(text: str) -> str:
    """NFKC, lower-case, drop whitespace, punctuation and symbols (masking placeholders kept)."""
    parts = _PLACEHOLDER.split(text or "")
    # re.split with one capturing group alternates text, placeholder, text, ...
    return "".join(part if i % 2 else _strip(part) for i, part in enumerate(parts))
