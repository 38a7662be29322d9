"""Suggestions from a live conversation: the customer's open question(s) → grouped search hits.

The agent's chat tool sends the recent turns; what needs an answer is what the customer wrote
since the agent last spoke (several short messages in a row are one message). That text goes
through the engine's own search, which reads it as a query (query.reading: greetings and personal
data dropped, several questions split), so a suggestion is exactly what typing the message into
the panel would show. Nothing here knows HTTP; the limits are checked here so that the web route
and any other caller refuse the same input with the same (Chinese) messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kb_service.masking import mask_personal_data
from kb_service.models import QuestionAnswer, SearchResponse
from kb_service.query.reading import clauses, fold_text, remove_personal_data

ROLES: dict[str, str] = {"customer": "客户", "agent": "坐席"}
MAX_TURNS = 50  # recent turns a caller may send; older turns never change what is open now
MAX_TURN_CHARS = 4000  # one chat message; a longer "turn" is a pasted document, not a question


class ConversationError(ValueError):
    """The conversation cannot be read; the message is shown to the agent or integrator."""


@dataclass(frozen=True)
class Turn:
    role: str
    text: str


@dataclass(frozen=True)
class OpenQuestion:
    """What the customer asked that still waits for an answer.

    `text` joins the customer's turns after the agent's last turn (newest last). When the agent
    spoke last, nothing is open: the customer's turns before that reply are used and `open` is
    false, so the panel can still show what the reply was about."""

    text: str
    turns: int
    open: bool


@dataclass(frozen=True)
class Suggestions:
    open_question: OpenQuestion
    response: SearchResponse | None  # None: the customer only greeted or thanked; nothing searched

    def groups(self) -> list[QuestionAnswer]:
        """One group per detected question; a single question is one group too."""
        if self.response is None:
            return []
        if self.response.questions:
            return list(self.response.questions)
        reading = self.response.reading
        question = reading.questions[0] if reading is not None else self.response.query  # type: ignore[attr-defined]
        return [QuestionAnswer(question, self.response.hits, self.response.confident, self.response.confidence,
                               None, self.response.outside_filter)]


def parse_turns(raw: Iterable[Mapping[str, Any]]) -> list[Turn]:
    """Turns as sent, checked: 1..MAX_TURNS of them, known roles, text of at most MAX_TURN_CHARS."""
    items = list(raw)
    if not items:
        raise ConversationError("对话为空：turns 至少要有一轮（客户的消息）")
    if len(items) > MAX_TURNS:
        raise ConversationError(f"对话轮次过多：最多 {MAX_TURNS} 轮，当前 {len(items)} 轮；请只传最近的对话")
    turns: list[Turn] = []
    for number, item in enumerate(items, start=1):
        role = str(item.get("role") or "").strip().lower()
        if role not in ROLES:
            shown = mask_personal_data(str(item.get("role") or ""))[:20]
            raise ConversationError(f"第 {number} 轮的角色 {shown!r} 无法识别：role 只能是 customer（客户）或 agent（坐席）")
        text = str(item.get("text") or "")
        if len(text) > MAX_TURN_CHARS:
            raise ConversationError(f"第 {number} 轮内容过长：每轮最多 {MAX_TURN_CHARS} 字，当前 {len(text)} 字")
        turns.append(Turn(role, text.strip()))
    return turns


def open_question(turns: list[Turn], max_chars: int) -> OpenQuestion:
    """The customer's latest turns (after the agent's last one), newest kept when over `max_chars`."""
    spoken = [t for t in turns if t.text]
    if not any(t.role == "customer" for t in spoken):
        raise ConversationError("对话里没有客户的发言，无法给出建议")
    last_agent = max((i for i, t in enumerate(spoken) if t.role == "agent"), default=-1)
    after = [t.text for t in spoken[last_agent + 1:]]
    is_open = bool(after)
    if not after:  # the agent answered last: what the customer said before that answer
        before = spoken[:last_agent]
        last_customer = max((i for i, t in enumerate(before) if t.role == "customer"), default=-1)
        if last_customer < 0:
            raise ConversationError("对话里没有客户的发言，无法给出建议")
        start = last_customer
        while start > 0 and before[start - 1].role == "customer":
            start -= 1
        after = [t.text for t in before[start:last_customer + 1]]
    kept: list[str] = []
    used = 0
    for text in reversed(after):  # newest first: what the customer asked last matters most
        if used + len(text) + 1 > max_chars:
            if not kept:
                kept.append(text[-max_chars:])
            break
        kept.insert(0, text)
        used += len(text) + 1
    return OpenQuestion("\n".join(kept), len(kept), is_open)


def suggest(engine: Any, turns: list[Turn], k: int = 3, category: str | None = None) -> Suggestions:
    """Search the customer's open question(s) with the engine; raises ConversationError or the
    engine's QueryError (both ValueError) for what cannot be searched."""
    max_chars = int(engine.info().get("max_query_chars") or 1000)
    question = open_question(turns, max_chars)
    if not asks_anything(question.text):
        return Suggestions(question, None)
    response = engine.search(question.text, k=k, category=category)
    return Suggestions(question, response)


def asks_anything(text: str) -> bool:
    """Whether the text holds more than greetings, thanks and personal data («你好在吗», «谢谢»):
    a customer's «在吗» must not fill the panel with whatever matches 在 (nor the log with it)."""
    cleaned, _ = remove_personal_data(fold_text(text)[0])
    return bool(clauses(cleaned))


def suggestions_dict(result: Suggestions) -> dict[str, Any]:
    """The answer's body: hits grouped per question, each hit in the shape /api/search returns."""
    if result.response is None:
        return {"source": "conversation", "open": result.open_question.open,
                "customer_turns": result.open_question.turns, "confident": False, "confidence": 0.0,
                "reading": None, "questions": [], "hits": []}
    response = result.response.to_dict()
    return {
        "source": "conversation",
        "open": result.open_question.open,
        "customer_turns": result.open_question.turns,
        "confident": response["confident"],
        "confidence": response["confidence"],
        "reading": response.get("reading"),
        "questions": [group.to_dict() for group in result.groups()],
        "hits": response["hits"],
    }
