"""List labelled queries that a 相似问 in the articles nearly repeats.

相似问 are meant to be written from the articles alone; one that repeats a labelled query would
make `kb eval` flatter the system. This prints, for every query of the labelled sets, the most
similar question (Jaccard similarity of character bigrams) when it reaches the threshold, and
how many queries do; identical ones are counted separately.

Usage: python scripts/check_question_overlap.py [--own eval/queries.jsonl] [--dev ../shared/eval/dev.jsonl] [--min 0.5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kb_service.content.articles import load_articles
from kb_service.settings import PROJECT_ROOT


def bigram_set(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=PROJECT_ROOT / "articles")
    parser.add_argument("--own", type=Path, default=PROJECT_ROOT / "eval" / "queries.jsonl")
    parser.add_argument("--dev", type=Path, default=PROJECT_ROOT.parent / "shared" / "eval" / "dev.jsonl")
    parser.add_argument("--min", type=float, default=0.5, dest="threshold")
    args = parser.parse_args(argv)
    questions = [(q, bigram_set(q)) for a in load_articles(args.articles).articles for s in a.sections for q in s.questions]
    print(f"{len(questions)} questions in {args.articles}")
    for name, path in (("own", args.own), ("dev", args.dev)):
        if not path.exists():
            print(f"{name}: {path} not found")
            continue
        queries = [json.loads(line)["query"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        close = identical = 0
        for query in queries:
            grams = bigram_set(query)
            score, question = max(((jaccard(grams, g), q) for q, g in questions), default=(0.0, ""))
            identical += query == question
            if score >= args.threshold:
                close += 1
                print(f"  {name} {score:.2f} {query} | {question}")
        print(f"{name}: {close} of {len(queries)} queries have a question at bigram Jaccard >= {args.threshold}; "
              f"{identical} identical")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
