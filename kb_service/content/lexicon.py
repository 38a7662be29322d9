"""The domain lexicon editors maintain: tokenizer terms, synonyms and typos.

Agents type colloquial forms (三者险, 丢车, 水淹) and homophone typos (理陪, 定顺); articles use
canonical terms. The lexicon maps one onto the other so both indexes see the words the
articles use, and it feeds jieba the domain words it would otherwise cut apart.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kb_service.models import Problem


def match_form(text: str) -> str:
    """Full-width → half-width, lower-case: the one normal form used by both query and index."""
    return unicodedata.normalize("NFKC", text).lower()


@dataclass
class Lexicon:
    terms: set[str] = field(default_factory=set)
    synonyms: dict[str, list[str]] = field(default_factory=dict)  # canonical -> variants
    typos: dict[str, str] = field(default_factory=dict)  # wrong -> right
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._variant_to_canonical = {
            match_form(v): canonical for canonical, variants in self.synonyms.items() for v in variants
        }
        self._typos = {match_form(k): v for k, v in self.typos.items()}

    @property
    def dictionary_words(self) -> set[str]:
        """Every domain word jieba should keep whole."""
        words = set(self.terms) | set(self.synonyms) | set(self.typos.values())
        for variants in self.synonyms.values():
            words.update(variants)
        return {w for w in words if len(w) > 1}

    def correct_typos(self, text: str) -> str:
        text = match_form(text)
        for wrong in sorted(self._typos, key=len, reverse=True):
            if wrong in text:
                text = text.replace(wrong, self._typos[wrong])
        return text

    def expansions(self, text: str, enclosing: Sequence[tuple[int, int]] = ()) -> list[str]:
        """Canonical terms for the colloquial forms found in `text` (typos already corrected).

        `enclosing`: (start, end) spans of other words; a form found only inside one of them is
        part of that word, not the form (续费 in 手续费 is not about 续保).
        """
        text = match_form(text)
        found: list[str] = []
        for variant in sorted(self._variant_to_canonical, key=len, reverse=True):
            canonical = self._variant_to_canonical[variant]
            if canonical in text or canonical in found:
                continue
            if any(not _enclosed(m.start(), m.start() + len(variant), enclosing)
                   for m in re.finditer(re.escape(variant), text)):
                found.append(canonical)
        return found


def _enclosed(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(s <= start and end <= e and e - s > end - start for s, e in spans)


def line_of(lines: list[str], needle: str) -> int:
    """First line (1-based) containing `needle`: where an editor's YAML file reports a problem."""
    for number, line in enumerate(lines, start=1):
        if needle in line:
            return number
    return 1


def yaml_problem(path: Path, exc: yaml.YAMLError) -> Problem:
    """An editor's YAML file that does not parse, at the line the parser stopped."""
    mark = getattr(exc, "problem_mark", None)
    return Problem(path, (mark.line + 1) if mark else 1, f"invalid YAML: {getattr(exc, 'problem', exc)}")


def read_editor_file(path: Path, what: str) -> tuple[str | None, Problem | None]:
    """An optional editor's file as text: (None, None) when absent, (None, problem) when not UTF-8."""
    if not path.exists():
        return None, None
    try:
        return path.read_text(encoding="utf-8"), None
    except UnicodeDecodeError:
        return None, Problem(path, 1, f"{what} is not UTF-8 text")


def load_lexicon_or_empty(path: Path | str) -> Lexicon:
    """The lexicon, or an empty one when the file does not exist (a knowledge base may have none)."""
    return load_lexicon(Path(path)) if Path(path).exists() else Lexicon()


def load_lexicon(path: Path) -> Lexicon:
    """Read and validate the lexicon file; problems are kept, never raised."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
    except FileNotFoundError:
        return Lexicon(problems=[Problem(path, 1, "lexicon file not found")])
    except yaml.YAMLError as exc:
        return Lexicon(problems=[yaml_problem(path, exc)])
    lines = text.splitlines()
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return Lexicon(problems=[Problem(path, 1, "lexicon must be a mapping with terms, synonyms, typos")])
    unknown = set(data) - {"terms", "synonyms", "typos"}
    for key in sorted(unknown):
        problems.append(Problem(path, line_of(lines, f"{key}:"), f"unknown lexicon section '{key}'"))
    terms = data.get("terms") or []
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        problems.append(Problem(path, line_of(lines, "terms:"), "'terms' must be a list of words"))
        terms = []
    synonyms_raw = data.get("synonyms") or {}
    synonyms: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    if not isinstance(synonyms_raw, dict):
        problems.append(Problem(path, line_of(lines, "synonyms:"), "'synonyms' must map a canonical term to a list"))
        synonyms_raw = {}
    for canonical, variants in synonyms_raw.items():
        line = line_of(lines, f"{canonical}:")
        if not isinstance(variants, list) or not variants or not all(isinstance(v, str) and v for v in variants):
            problems.append(Problem(path, line, f"synonyms of '{canonical}' must be a non-empty list of words"))
            continue
        kept = []
        for variant in variants:
            if variant == canonical:
                problems.append(Problem(path, line, f"'{variant}' is listed as a synonym of itself"))
            elif variant in owner and owner[variant] != canonical:
                problems.append(Problem(path, line, f"'{variant}' maps to both '{owner[variant]}' and '{canonical}'"))
            else:
                owner[variant] = canonical
                kept.append(variant)
        synonyms[str(canonical)] = kept
    typos_raw = data.get("typos") or {}
    typos: dict[str, str] = {}
    if not isinstance(typos_raw, dict):
        problems.append(Problem(path, line_of(lines, "typos:"), "'typos' must map a wrong form to the right one"))
        typos_raw = {}
    for wrong, right in typos_raw.items():
        line = line_of(lines, f"{wrong}:")
        if not isinstance(right, str) or not right:
            problems.append(Problem(path, line, f"typo '{wrong}' must map to a word"))
        elif wrong == right:
            problems.append(Problem(path, line, f"typo '{wrong}' maps to itself"))
        else:
            typos[str(wrong)] = right
    return Lexicon(terms=set(terms), synonyms=synonyms, typos=typos, problems=problems)
