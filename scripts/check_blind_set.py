"""Check a blind labelled query file before it joins the evaluation sets.

Writers of a blind set read only the courseware, so this is the one check that can be run
without showing them the knowledge base: the schema and styles are right, every regex compiles,
every answerable query quotes its evidence verbatim from the courseware, and every fact group
matches that evidence (a group that cannot match its own evidence can never match a passage).

    python scripts/check_blind_set.py eval/blind/selection.jsonl [--courseware ../shared/seed/courseware.txt]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

STYLES = {"short", "colloquial", "scenario", "pasted", "multi", "voice", "trad", "mixed"}
SCOPES = {"out-insurance", "out-near"}
FIELDS = ("id", "query", "kind", "topic", "facts", "evidence")


def flat(text: str) -> str:
    """The judging form: NFKC, no whitespace."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def problems_in(row: dict, courseware: str) -> list[str]:
    found = [f"missing {key}" for key in FIELDS if key not in row]
    if row.get("kind") not in STYLES:
        found.append(f"kind {row.get('kind')!r} is not one of {sorted(STYLES)}")
    facts = row.get("facts") or []
    if not facts:
        if row.get("scope") not in SCOPES:
            found.append("an out-of-scope query needs scope out-insurance or out-near")
        return found
    evidence = flat(row.get("evidence", ""))
    if not evidence or evidence not in courseware:
        found.append("evidence is not a verbatim excerpt of the courseware")
    for number, group in enumerate(facts):
        matched = False
        for pattern in group:
            try:
                matched = matched or bool(re.search(pattern, evidence))
            except re.error as exc:
                found.append(f"regex {pattern!r} does not compile: {exc}")
        if not matched:
            found.append(f"fact group {number} matches nothing in its evidence")
    if row.get("kind") == "pasted" and not 60 <= len(row.get("query", "")) <= 800:
        found.append(f"pasted query of {len(row.get('query', ''))} characters (60–800 expected)")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--courseware", type=Path, default=Path("../shared/seed/courseware.txt"))
    args = parser.parse_args()
    courseware = flat(args.courseware.read_text(encoding="utf-8"))
    styles: Counter[str] = Counter()
    scopes: Counter[str] = Counter()
    ids: set[str] = set()
    failures = 0
    lines = [line for line in args.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            print(f"{args.path}:{number}: bad JSON: {exc}")
            failures += 1
            continue
        found = problems_in(row, courseware)
        if row.get("id") in ids:
            found.append(f"duplicate id {row.get('id')}")
        ids.add(row.get("id"))
        styles[row.get("kind")] += 1
        if not row.get("facts"):
            scopes[row.get("scope")] += 1
        for problem in found:
            print(f"{args.path}:{number}: {row.get('id')}: {problem}")
        failures += bool(found)
    share = sum(scopes.values()) / max(1, len(lines))
    print(f"{len(lines)} queries; styles {dict(styles)}; out-of-scope {dict(scopes)} ({share:.0%}); "
          f"{failures} with problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
