"""Side-by-side table of two `kb eval --out` files for one design: start → now, per set and style.

    python scripts/compare_eval.py eval/results-start.md eval/results.md [--design "hybrid (m3e-small-onnx-int8)"]

Sets are matched by the path in their heading; columns R@1, R@5, MRR@10, out-of-scope rejected,
answerable wrongly rejected (and, where the newer file has it, right article but wrong section).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

COLUMNS = {"R@1": 3, "R@5": 5, "MRR@10": 6, "out-of-scope rejected": 7, "wrongly rejected": 8}


def read_tables(path: Path, design: str) -> dict[str, dict[str, list[str]]]:
    """{set path: {kind: row cells}} for the design's rows."""
    tables: dict[str, dict[str, list[str]]] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### .*\((.+)\)\s*$", line)
        if heading:
            current = heading.group(1).replace("/work/main/", "").replace("/work/shared/", "../shared/")
            tables[current] = {}
        elif line.startswith(f"| {design} |") and current:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            tables[current][cells[1]] = cells
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--design", default="hybrid (m3e-small-onnx-int8)")
    args = parser.parse_args()
    before, after = read_tables(args.before, args.design), read_tables(args.after, args.design)
    print("| set | style | n | " + " | ".join(f"{c} (start → now)" for c in COLUMNS) + " | right article, wrong section |")
    print("| --- | --- | --- |" + " --- |" * (len(COLUMNS) + 1))
    for name, rows in after.items():
        for kind, cells in rows.items():
            old = before.get(name, {}).get(kind)
            pairs = [f"{old[i] if old else '?'} → **{cells[i]}**" if (old and old[i] != "—") or cells[i] != "—" else "—"
                     for i in COLUMNS.values()]
            wrong_section = cells[9] if len(cells) > 9 else ""
            label = "**all**" if kind == "all" else kind
            print(f"| {name} | {label} | {cells[2]} | " + " | ".join(pairs) + f" | {wrong_section} |")


if __name__ == "__main__":
    main()
