"""Where the articles' chat signals fire, before an editor commits one.

A chat signal puts its section first in a pasted message, whatever the message asks, so a signal
that fires on messages about something else costs their answer its first place. This reads every
query of the given labelled sets the way the engine reads it (`read_query(...).cleaned`), finds the
signal it says (`signalled_section`) and counts, per signalled section, the queries it fires on and
how many of them that section answers: the section's passage meets the query's answer facts, its
article is one the query is labelled with, or it is the section a training question was written for.
It also times one scan of a 500-character message that says no signal (every wording is tried).

    python scripts/check_signals.py [--articles articles] [--set eval/blind/selection.jsonl ...]

The default sets are the selection side, our own set and the training pool, never the report half.
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from pathlib import Path

from kb_service.cli.quality import SELECTION_SETS
from kb_service.content.articles import load_articles
from kb_service.content.chunking import chunk_article
from kb_service.evaluation.runner import answers, load_dev_set
from kb_service.models import Hit, Passage
from kb_service.query.reading import read_query
from kb_service.search.situations import signal_index, signalled_section

DEFAULT_SETS = (*SELECTION_SETS, "eval/queries.jsonl", "articles/section-questions.jsonl")
NO_SIGNAL_MESSAGE = ("你好在吗我上个月在路口等红灯被后面一辆车追尾了后备箱都撞变形了交警判对方全责事故认定书也拿到了"
                     "可是对方一直拖着不赔" * 8)[:500]


def labelled_queries(path: Path) -> list[tuple[str, Callable[[Passage], bool]]]:
    """(query, does this passage answer it): by answer facts (blind sets), by the labelled articles
    (our own set) or by the section the question was written for (training pool)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if rows and "facts" in rows[0]:
        return [(q.query, lambda passage, q=q: answers(q, Hit.of(passage))) for q in load_dev_set(path)]
    if rows and "relevant" in rows[0]:
        return [(r["query"], lambda passage, r=r: passage.article_id in r["relevant"]) for r in rows]
    return [(r["query"], lambda passage, r=r: (passage.article_id, passage.heading) == (r["article"], r["heading"]))
            for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=Path("articles"))
    parser.add_argument("--set", dest="sets", type=Path, action="append", help="a labelled set (repeat)")
    args = parser.parse_args()
    loaded = load_articles(args.articles)
    passages = {p.passage_id: p for article in loaded.articles for p in chunk_article(article)}
    index = signal_index(passages.values())
    fired: dict[str, list[bool]] = {}
    total = 0
    for path in args.sets or [Path(p) for p in DEFAULT_SETS]:
        for query, answered_by in labelled_queries(path):
            total += 1
            found = signalled_section(index, read_query(query, max(len(query), 1)).cleaned)
            if found is not None:
                fired.setdefault(found.passage_id, []).append(answered_by(passages[found.passage_id]))
    print(f"{len(index)} signals in {len({pid for _, _, pid in index})} sections; {total} labelled queries read")
    for passage_id, judged in sorted(fired.items()):
        passage = passages[passage_id]
        print(f"{passage.article_id} › {passage.heading}: fires on {len(judged)}, answers {sum(judged)}")
    runs = 2000
    seconds = timeit.timeit(lambda: signalled_section(index, NO_SIGNAL_MESSAGE), number=runs) / runs
    print(f"one scan of a 500-character message with no signal: {seconds * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
