"""Chat signals: what a customer's message tells that the agent must act on, whatever it asks.

A pasted message asks one thing and often says another that matters more to the agent: 「能不能帮我
快点批下来……我给你发个小红包」 asks about claim speed, and the agent must not miss that a gift is
offered (a red line); 「再不赔我就找电视台」 asks when the money comes, and it is a level-3 complaint.
The question is what gets searched and judged, so the story's words reach the ranking only weakly.

Editors list such words per section (`signals:` in an article's front matter). When a message says
one of them, that section is shown (unless the question's own answer is that article), marked with
the words that brought it. In a pasted chat message it comes first: the customer's question there is
mostly pretext (「钱到账了，给你发个红包」), and the gift or the threat is what the agent must act on
before replying. After a short query the agent typed, what was asked comes first and the signalled
section second. Plain functions over the snapshot's passages; the engine applies them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kb_service.content.articles import signal_parts
from kb_service.content.lexicon import match_form
from kb_service.models import Hit, Passage, first_passages, place_hit

SIGNAL_RANK = 2  # after a typed query's own best answer: what was asked comes first
PASTED_SIGNAL_RANK = 1  # in a pasted message: what the situation calls for comes first
# A query this long was pasted from the chat, not typed (the pasted messages run 60-800
# characters; agents' own queries, questions relayed in one line included, stay well under it).
PASTED_MESSAGE_CHARS = 60


@dataclass(frozen=True)
class Signalled:
    passage_id: str
    signal: str  # what the card names: the signal as written, or the words said for a signal of several parts


SignalEntry = tuple[tuple[tuple[str, ...], ...], str, str]  # (parts in match form, as written, passage id)


def signal_index(passages: Iterable[Passage]) -> list[SignalEntry]:
    """(the signal's parts in match form, the signal as written, passage id), most specific first:
    signals of more parts, then longer ones; a section cut into several passages is represented by
    its first."""
    firsts = {key: passage for key, passage in first_passages(passages).items() if passage.signals}
    index = [(tuple(tuple(match_form(word) for word in part) for part in signal_parts(signal)), signal, passage.passage_id)
             for passage in firsts.values() for signal in passage.signals]
    return sorted(index, key=lambda entry: (-len(entry[0]), -len(match_form(entry[1])), entry[2]))


def signalled_section(index: Sequence[SignalEntry], message: str) -> Signalled | None:
    """The section whose signal the message says (the most specific signal wins), or None; for a
    signal of several parts, what it names is the words the message said, one per part.

    The whole message counts, its question included: a signal inside a long question is still
    outweighed by the rest of it (「……我发个红包给你买奶茶……帮我看看怎么弄便宜点」 ranks renewal
    first). Measured on the selection side, judging the whole message found more than judging only
    what the question left out, and lost nothing (docs/evaluation.md)."""
    said = match_form(message)
    for parts, signal, passage_id in index:
        words = [next((word for word in part if word in said), None) for part in parts]
        if all(words):
            return Signalled(passage_id, signal if len(parts) == 1 else "、".join(w for w in words if w))
    return None


def passes_filter(passage: Passage, category: str | None, tags: Sequence[str] | None) -> bool:
    """A filtered search shows only what its filter lets through, signalled sections included."""
    return (not category or passage.category == category) and all(tag in passage.tags for tag in tags or ())


def signal_rank(message: str) -> int:
    """Where the signalled section goes: first in a pasted chat message, second after a typed query."""
    return PASTED_SIGNAL_RANK if len(message) >= PASTED_MESSAGE_CHARS else SIGNAL_RANK


def insert_signalled(hits: list[Hit], signalled: Hit, k: int, rank: int = SIGNAL_RANK) -> list[Hit]:
    """The signalled section at `rank`, its article's other hit removed. When the question's best
    answer is that article already it keeps its place: after a typed query with the section the
    question found, in a pasted message with the signalled section (the one the editors named)."""
    if hits and hits[0].article_id == signalled.article_id:
        return [signalled, *hits[1:]] if rank == PASTED_SIGNAL_RANK else hits
    return place_hit(hits, signalled, rank, k)
