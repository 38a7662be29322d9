"""Request and response shapes of the HTTP API, and the size limits they enforce.

Pydantic models only: the routers validate with them and OpenAPI documents them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kb_service.models import Hit

MAX_K = 20
MAX_ID_CHARS = 128
MAX_COMMENT_CHARS = 1000


def _no_lone_surrogates(value: str) -> str:
    """JSON may spell half a UTF-16 pair ("\\ud800"); such text cannot be stored or shown."""
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("contains an invalid character (a lone UTF-16 surrogate)")
    return value


Text = Annotated[str, AfterValidator(_no_lone_surrogates)]


class ErrorOut(BaseModel):
    detail: str


class SearchOut(BaseModel):
    query_id: str = Field(description="pass back to /api/articles, /api/events and /api/feedback")
    query: str
    confident: bool = Field(description="false: show 'no confident answer' and ask for feedback")
    confidence: float
    hits: list[Hit] = Field(description="one per article, best first (kb_service.models.Hit)")
    reading: dict[str, Any] | None = Field(None, description="how the query was read: cleaned text, questions, "
                                           "traditional characters converted, kinds of personal data removed")
    questions: list[dict[str, Any]] = Field(default_factory=list, description="per question, when the query asks several")
    outside_filter: str | None = Field(None, description="the category of the best answer when the filter excluded it")
    spelled_as: str | None = Field(None, description="the (first) question as searched, when typos in it were corrected "
                                   "(理陪 → 理赔); search again with as_typed=1 to search the words as typed")
    not_covered: str | None = Field(None, description="not confident, and the (first) question is nearer this topic "
                                    "of the not-covered list than to the passage found, or uses a word that names it")
    took_ms: float


class ArticleOut(BaseModel):
    id: str
    title: str
    category: str
    category_label: str
    tags: list[str]
    aliases: list[str]
    updated: str
    version: int
    owner: str
    markdown: str
    html: str = Field(description='rendered body; ```script blocks become <div class="kb-script">')
    open_recorded: bool = Field(description="an 'open' event was logged for the given query_id")


class EventIn(BaseModel):
    query_id: Text = Field(min_length=1, max_length=MAX_ID_CHARS)
    article_id: Text = Field(min_length=1, max_length=MAX_ID_CHARS)
    type: Literal["open", "copy"]


class FeedbackIn(BaseModel):
    query_id: Text = Field(min_length=1, max_length=MAX_ID_CHARS)
    article_id: Text | None = Field(None, max_length=MAX_ID_CHARS, description="null: nothing helped")
    resolved: bool
    comment: Text | None = Field(None, max_length=MAX_COMMENT_CHARS)


class RecordedOut(BaseModel):
    status: Literal["recorded"] = "recorded"


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str
    index_version: str | None = None
    articles: int | None = None
    passages: int | None = None
    model: str | None = None
    auth_required: bool


class ReloadOut(HealthOut):
    reloaded: bool = Field(description="false: the newest built index was already serving")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or unknown API key"},
    403: {"model": ErrorOut, "description": "the key's role may not use this route"},
    422: {"model": ErrorOut, "description": "invalid input"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "unknown id"}}


class TurnIn(BaseModel):
    role: Text = Field(max_length=32, description="customer or agent")
    text: Text = Field("", description="what was written in this turn")
    ts: float | str | None = Field(None, description="when (unix seconds or ISO time); order is the list's order")


class SuggestIn(BaseModel):
    turns: list[TurnIn] = Field(description="the conversation's recent turns, oldest first")
    agent_id: Text | None = Field(None, max_length=MAX_ID_CHARS, description="else the X-Agent-Id header")
    session_id: Text | None = Field(None, max_length=MAX_ID_CHARS, description="else the X-Session-Id header")
    k: int = Field(3, ge=1, le=MAX_K, description="articles per detected question")
    category: str | None = None


class SuggestOut(BaseModel):
    query_id: str | None = Field(description="pass back to /api/articles, /api/events, /api/feedback and /api/flags; "
                                 "null: the customer asked nothing (greetings only), nothing was searched or logged")
    source: Literal["conversation"] = "conversation"
    open: bool = Field(description="false: the agent spoke last; the suggestions are for the customer's previous turns")
    customer_turns: int = Field(description="how many of the customer's turns were read")
    confident: bool
    confidence: float
    reading: dict[str, Any] | None = None
    questions: list[dict[str, Any]] = Field(description="one group per detected question: question, confident, hits")
    hits: list[Hit] = Field(description="all groups merged, as /api/search returns them")
    took_ms: float


class FlagIn(BaseModel):
    article_id: Text = Field(min_length=1, max_length=MAX_ID_CHARS)
    article_version: int | None = Field(None, ge=1, description="the version the agent was reading; default: current")
    reason: str = Field(description="wrong (内容有误), outdated (已过时) or other")
    comment: Text | None = Field(None, max_length=MAX_COMMENT_CHARS)
    query_id: Text | None = Field(None, max_length=MAX_ID_CHARS, description="the search or suggestion it came from")


class FlagOut(BaseModel):
    id: int
    ts: float
    article_id: str
    article_title: str | None = Field(description="null: the article is no longer in the knowledge base")
    article_version: int = Field(description="the version the flag was raised on")
    current_version: int | None = Field(description="the article's version now; higher: edited since the flag")
    reason: str
    reason_label: str
    comment: str | None
    query_id: str | None
    agent_id: str | None
    session_id: str | None


class FlagsOut(BaseModel):
    count: int
    flags: list[FlagOut]
