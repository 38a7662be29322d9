"""Mask customer personal data in text agents type into the search box.

Agents paste whole customer messages (身份证号, 手机号, 车牌, 卡号, 保单号) into the panel. The
usage log keeps queries for months and analysts read them, so the stored copy must never hold
those details in clear text. Each match is replaced by a typed placeholder (〔手机号〕 …) so
analysts can still see *what kind* of thing agents search with.

The rules run in a fixed order because the patterns overlap: an e-mail address contains digit
runs, an 18-digit 身份证号 is also a 16–19-digit run, and a phone number is also a long digit
run. The most specific rule runs first, and a placeholder contains no digits or letters, so a
later rule can never match inside an earlier replacement.

Digit patterns are anchored on "no letter or digit directly before/after" so ordinary numbers in text
(3-7个工作日, 2024年, 5-10%) are never touched: only long runs qualify.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

ID_CARD = "〔身份证号〕"
MOBILE = "〔手机号〕"
PLATE = "〔车牌号〕"
BANK_CARD = "〔银行卡号〕"
POLICY_NUMBER = "〔保单号〕"
EMAIL = "〔邮箱〕"
VIN = "〔车架号〕"

# A Chinese IME in full-width mode types １３８… and ＡＢＣ; they are folded to ASCII first so one
# set of patterns covers both (the stored text then has half-width digits, which is harmless).
_FULL_WIDTH = str.maketrans(
    {
        chr(code): chr(code - 0xFEE0)
        for code in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))
    }
    | {"＠": "@", "＋": "+", "－": "-", "．": "."}
)
_D = "[0-9]"
_NOT_ALNUM_BEFORE = "(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = "(?![0-9A-Za-z])"
# One optional separator between digit groups: what people type when reading a number aloud.
_SEP = "[ \u00a0\u3000-]?"

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

# 18-digit ID: 6-digit region, birth date yyyymmdd, 3-digit sequence, check digit (0-9 or X).
# Accepts 6-8-4 and 6-4-4-4 groupings. Requiring a plausible birth date keeps it from
# claiming arbitrary 18-digit numbers, which the bank-card rule masks anyway.
_ID18_RE = re.compile(
    _NOT_ALNUM_BEFORE
    + rf"[1-9]{_D}{{5}}{_SEP}(?:18|19|20){_D}{{2}}{_SEP}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]{_D}|3[01])"
    + rf"{_SEP}{_D}{{3}}[0-9Xx]"
    + _NOT_ALNUM_AFTER
)
# 15-digit (pre-1999) ID: region, yymmdd, 3-digit sequence.
_ID15_RE = re.compile(
    _NOT_ALNUM_BEFORE
    + rf"[1-9]{_D}{{5}}{_SEP}{_D}{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]{_D}|3[01]){_SEP}{_D}{{3}}"
    + _NOT_ALNUM_AFTER
)

# Mobile: 1[3-9]x xxxx xxxx, optionally prefixed by +86 / 0086 / 86.
_MOBILE_RE = re.compile(
    _NOT_ALNUM_BEFORE + rf"(?:(?:\+|00)?86{_SEP})?1[3-9]{_D}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}" + _NOT_ALNUM_AFTER
)

_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_DOT = "[·•・.\u00b7 \u3000]?"
_PLATE_CHAR = "[A-Za-z0-9]"
# New-energy plates (8 chars): D/F + letter-or-digit + 4 digits (small cars), or 5 digits + D/F
# (large vehicles). Checked before ordinary plates, which would otherwise take 7 of the 8 chars.
_PLATE_NEW_ENERGY_RE = re.compile(
    rf"[{_PROVINCES}][A-Za-z]{_PLATE_DOT}(?:[DFdf][A-Za-z0-9][0-9]{{4}}|[0-9]{{5}}[DFdf])" + _NOT_ALNUM_AFTER
)
# Ordinary plates (7 chars): the 5-char serial must hold at least 3 digits so words such as
# 「新Model」 are not taken for a plate; 挂/学/警/港/澳 are special-plate suffixes.
_PLATE_RE = re.compile(
    rf"[{_PROVINCES}][A-Za-z]{_PLATE_DOT}(?=(?:[A-Za-z]*[0-9]){{3}})"
    rf"{_PLATE_CHAR}{{4}}(?:{_PLATE_CHAR}|[挂学警港澳])" + _NOT_ALNUM_AFTER
)

# Bank cards: 16–19 digits, contiguous or grouped by 4 with spaces or dashes (the way they are
# printed). Only those two shapes, so two dates typed next to each other are not one "card".
_CARD_SEP = "[ \u00a0\u3000-]"
_BANK_CARD_RE = re.compile(
    _NOT_ALNUM_BEFORE
    + rf"(?:{_D}{{16,19}}|{_D}{{4}}(?:{_CARD_SEP}{_D}{{4}}){{3}}(?:{_CARD_SEP}?{_D}{{1,3}})?)"
    + _NOT_ALNUM_AFTER
)

# VIN (车架号): 17 chars without I/O/Q whose 9th char is the ISO 3779 / GB 16735 check digit.
# Validating the check digit lets it be told apart from policy numbers of the same length.
_VIN_CANDIDATE_RE = re.compile(_NOT_ALNUM_BEFORE + r"[A-HJ-NPR-Za-hj-npr-z0-9]{17}" + _NOT_ALNUM_AFTER)

# Policy / claim / report numbers: alphanumeric runs of >= 10 chars made mostly of digits,
# optionally with internal dashes (PDAA202411000123456, RC-2024-1100-1234).
_LONG_CODE_RE = re.compile(_NOT_ALNUM_BEFORE + r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*" + _NOT_ALNUM_AFTER)
_MIN_CODE_CHARS = 10
_MIN_CODE_DIGITS = 6

_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def _is_vin(candidate: str) -> bool:
    vin = candidate.upper()
    if vin.isdigit() or not any(c.isdigit() for c in vin):
        return False
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    check = total % 11
    return vin[8] == ("X" if check == 10 else str(check))


def _mask_vin(match: re.Match[str]) -> str:
    return VIN if _is_vin(match.group(0)) else match.group(0)


def _mask_long_code(match: re.Match[str]) -> str:
    token = match.group(0)
    chars = token.replace("-", "")
    digits = sum(c.isdigit() for c in chars)
    if len(chars) >= _MIN_CODE_CHARS and digits >= _MIN_CODE_DIGITS:
        return POLICY_NUMBER
    return token


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str]


_RULES: tuple[_Rule, ...] = (
    _Rule(_EMAIL_RE, EMAIL),
    _Rule(_ID18_RE, ID_CARD),
    _Rule(_ID15_RE, ID_CARD),
    _Rule(_MOBILE_RE, MOBILE),
    _Rule(_PLATE_NEW_ENERGY_RE, PLATE),
    _Rule(_PLATE_RE, PLATE),
    _Rule(_BANK_CARD_RE, BANK_CARD),
    _Rule(_VIN_CANDIDATE_RE, _mask_vin),
    _Rule(_LONG_CODE_RE, _mask_long_code),
)


def mask_personal_data(text: str) -> str:
    """Return `text` with personal data replaced by typed placeholders such as 〔手机号〕."""
    if not text:
        return text
    text = text.translate(_FULL_WIDTH)
    for rule in _RULES:
        text = rule.pattern.sub(rule.replacement, text)
    return text
