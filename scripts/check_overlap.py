"""Flag article text copied from the courseware.

Articles must state the courseware's facts in their own words. This finds every run of
at least N identical characters (punctuation and whitespace ignored) shared by an article
and the courseware, so an editor can rephrase it.

Usage: python scripts/check_overlap.py [--source ../shared/seed/courseware.txt] [--min 20] [articles/...]
Exit code 1 when any run is found.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_KEEP = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")


def _normalise(text: str) -> str:
    return "".join(ch for ch in text if _KEEP.match(ch))


def shared_runs(article: str, source: str, min_len: int) -> list[str]:
    """Maximal runs of >= min_len characters of `article` that also occur in `source`."""
    grams = {source[i : i + min_len] for i in range(len(source) - min_len + 1)}
    runs: list[str] = []
    i = 0
    while i <= len(article) - min_len:
        if article[i : i + min_len] in grams:
            j = i + min_len
            while j < len(article) and article[i : j + 1] in source:
                j += 1
            runs.append(article[i:j])
            i = j
        else:
            i += 1
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["articles"])
    parser.add_argument("--source", default=str(Path(__file__).resolve().parents[1].parent / "shared/seed/courseware.txt"))
    parser.add_argument("--min", type=int, default=20, dest="min_len")
    args = parser.parse_args(argv)
    source = _normalise(Path(args.source).read_text(encoding="utf-8"))
    files: list[Path] = []
    for p in map(Path, args.paths):
        files.extend(sorted(p.glob("*.md")) if p.is_dir() else [p])
    found = 0
    for f in files:
        if f.name.lower() == "readme.md":
            continue
        for run in shared_runs(_normalise(f.read_text(encoding="utf-8")), source, args.min_len):
            found += 1
            print(f"{f}: copied run ({len(run)} chars): {run}")
    print(f"{len(files)} files checked, {found} copied runs of >= {args.min_len} characters")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
