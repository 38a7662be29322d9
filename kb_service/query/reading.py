"""Query reading: what an agent typed or pasted → the question(s) worth searching.

Agents do not only type short clean questions. They paste the customer's whole chat message
(greetings, emoji, 「？？？」, a phone number and a plate), get customers writing traditional
characters, relay two questions in one line, or dictate with fillers (那个, 就是, 然后). Both
indexes and the confidence model read words, so everything that is not the question is noise to
them: a phone number matches digits in some passage, 谢谢亲 counts as two unknown words and makes a
good answer look unsure. This stage runs before either index and decides what is searched; the
searching itself knows nothing of it.

Steps, in order (each is a plain function, tested on its own):
1. `fold_text`: NFKC (full-width → half-width), traditional → simplified with OpenCC, emoji,
   zero-width characters and WeChat-style 「[捂脸]」 dropped, runs of punctuation collapsed.
2. `remove_personal_data`: the masking rules find phones, plates, IDs, cards, policy numbers,
   e-mails and VINs; they are removed from the searched text together with their label (我手机号是…),
   so they neither match anything nor count as unknown words.
3. `clauses`: split into clauses at sentence punctuation, commas and words that open a new
   question (还有, 另外, 顺便问下); greetings, politeness and fillers stripped from each.
4. `read_query`: clauses that ask something (吗, 怎么, 多少, 能不能 …) and have a topic of their
   own become separate questions (at most three); clauses that only tell the story are context for
   the question after them. A long message is condensed to its questions and the context nearest
   them, within a budget, so a 500-character paste searches like the question it contains.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from kb_service.masking import PLACEHOLDER, mask_personal_data

MAX_QUESTIONS = 3
CONTEXT_BUDGET_CHARS = 90  # searched text per question: its own words plus the story nearest to it
MESSAGE_BUDGET_CHARS = 80  # searched text for a pasted message: what it asks, then the story around it (the
# embedding of 120 characters cost 25 ms, of 80 about 12; quality the same within a query or two)
RELAYED_LINE_CHARS = 80  # up to this long (cleaned), a line asking several things is split into questions
MIN_TOPIC_CHARS = 3  # a clause asking something needs this many topic characters to stand alone


# The label an agent or customer puts before a number: removed with it (我的手机号是〔手机号〕).
_LABELLED_PLACEHOLDER = re.compile(
    r"(?:我|我的|本人|对方|他|她|他的|她的|对方的)?"
    r"(?:手机号码|手机号|手机|电话号码|联系电话|电话|联系方式|车牌号码|车牌号|车牌|身份证号码|身份证号|身份证|"
    r"证件号|银行卡号|银行卡|卡号|账号|保单号|报案号|案件号|理赔号|订单号|单号|车架号|邮箱|微信号?)?"
    r"\s*(?:是|为|:|：)?\s*(?:〔[^〔〕\s]{1,8}〕)"
)
_WECHAT_EMOTICON = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,4}\]")
_DROPPED_CATEGORIES = frozenset({"So", "Sk", "Cs", "Co", "Cn", "Cf", "Mn", "Me"})
_REPEATED_PUNCTUATION = re.compile(r"([!?。,.、~;:…])[!?。,.、~;:…\s]*")

# Sentence and clause boundaries (after NFKC: ？→?, ！→!, ，→,, ；→;).
_BOUNDARY = re.compile(r"[。!?;\n,，、…！？；]+|\.{2,}|\s{2,}|(?<=[\u4e00-\u9fff])\s(?=[\u4e00-\u9fff])")
# Words that open a further question in the same line: the split goes before them.
_NEW_QUESTION = re.compile(r"(还有就是|还有(?=[,\s])|另外|顺便问一?下|再问一?下|还想问一?下|还想问|此外|对了)")

# Greetings, politeness, urgency and speech fillers: they never carry the question.
_CHATTER = re.compile(
    "|".join([
        r"亲爱的", r"亲亲", r"亲~?(?=[^\u4e00-\u9fff]|$)", r"^亲(?![属人戚友情子自身笔眼手])", r"在吗", r"在不在", r"在么", r"有人吗", r"有人在吗",
        r"你好呀?", r"您好呀?", r"(?i:hello)", r"(?i:hi)(?![a-z])", r"嗨", r"哈喽", r"早上好", r"上午好", r"中午好", r"下午好", r"晚上好",
        r"谢谢(你|您|亲|啦|了|哈)?", r"多谢", r"感谢(你|您)?", r"麻烦(你|您)(了|啦)?", r"^麻烦(了|啦)?", r"麻烦(了|啦)?(?=问|一下|帮|看)", r"辛苦(你|您)?了", r"辛苦啦",
        r"打扰(一下|了)", r"不好意思", r"请问一下", r"请问", r"我想问一下", r"我想问问", r"想问一下", r"想问下", r"想问问",
        r"问一下", r"问下", r"咨询一下", r"我想咨询", r"急急急+", r"在线等", r"挺急的", r"很急(?![躁性])", r"拜托(了|啦)?", r"求助",
        r"帮帮忙", r"帮个忙", r"快点回我", r"快点回复", r"尽快回复", r"回复一下", r"回我一下", r"哈哈+", r"呵呵+", r"嘿嘿",
        r"嗯+", r"呃+", r"唉+", r"哎+呀?", r"emmm*", r"那个那个", r"那个", r"就是说", r"就是", r"然后呢", r"然后", r"你知道吧",
        r"怎么说呢", r"对吧", r"好吧", r"好的", r"ok(?![a-z])", r"啊+(?=[,.!?]|$)", r"呀+(?=[,.!?]|$)", r"哦+",
    ])
)
# A clause asks something when it holds one of these.
_ASKING = re.compile(
    r"[吗呢?谁]|(?<![那这多怎什])么|(?<!不)怎么(?!都|也)|还是|怎样|如何|什么(?!都|也)|(?<!没)啥(?!都|也)|多少|(?<![好没这那前过十])几[天个种年次步项成类级条点]|哪|能不能|能否|可不可以|可以不|是不是|要不要|有没有|"
    r"会不会|算不算|行不行|需不需要|用不用|为什么|为啥|咋|多久|多长|是否|管不管|赔不赔|保不保|包不包|给不给|报不报|划不划算|"
    r"(?<=[能会要可行是有赔保管用])不$"
)
# Characters that carry no topic, for judging whether a clause has one.
_NO_TOPIC = frozenset("的了吗呢啊吧呀么嘛哦是在有和与就都也还要会能可怎样什啥咋哪些多少几我你您他她它这那个一下请问得地着过被把给让对从到很太又再该不没久里候话般想知道呢吗")
_CJK_OR_WORD = re.compile(r"[\u3400-\u9fffA-Za-z0-9]")


@dataclass(frozen=True)
class Reading:
    """How a query was read: what the agent typed, and what is searched for it."""

    typed: str
    cleaned: str  # the whole text after folding, personal data and chatter removed
    questions: tuple[str, ...]  # searched one by one; the first is the query's main question
    converted: bool = False  # traditional characters were converted
    personal_data: tuple[str, ...] = ()  # kinds removed, e.g. 〔手机号〕 (never the values)
    truncated: bool = False  # longer than the limit: only the start was read

    @property
    def untold_story(self) -> str | None:
        """The whole cleaned message when its one question leaves clauses out, else None.

        What an agent must look up is often told, not asked: 「我给你发个红包」 or 「我已经联系了记者」
        sits in a clause that asks nothing. The question stays what is embedded and judged; the
        lexical side also reads the rest of the message (measured in docs/evaluation.md)."""
        if len(self.questions) == 1 and len(self.questions[0]) < len(self.cleaned):
            return self.cleaned
        return None

    @property
    def changed(self) -> bool:
        """Whether the panel should say how the query was read."""
        return len(self.questions) > 1 or self.questions[:1] != (self.typed.strip(),)

    def to_dict(self) -> dict:
        return {"cleaned": self.cleaned, "questions": list(self.questions), "converted": self.converted,
                "personal_data": list(self.personal_data), "truncated": self.truncated, "changed": self.changed}


@lru_cache(maxsize=1)
def _converter():  # type: ignore[no-untyped-def]
    """OpenCC's traditional → simplified converter (phrase-aware: 頭髮 → 头发, not 头发/發)."""
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _converter().convert(text)


def fold_text(text: str) -> tuple[str, bool]:
    """Width, script, emoji and punctuation folded; returns (text, whether characters were converted)."""
    text = unicodedata.normalize("NFKC", text)
    simplified = to_simplified(text)
    converted = simplified != text
    text = _WECHAT_EMOTICON.sub(" ", simplified)
    text = "".join(" " if unicodedata.category(ch) in _DROPPED_CATEGORIES else ch for ch in text)
    text = _REPEATED_PUNCTUATION.sub(r"\1", text)
    return text.strip(), converted


def remove_personal_data(text: str) -> tuple[str, tuple[str, ...]]:
    """Personal data and the words that label it, removed; returns (text, kinds removed)."""
    masked = mask_personal_data(text)
    kinds = tuple(dict.fromkeys(PLACEHOLDER.findall(masked)))
    if not kinds:
        return text, ()
    return _LABELLED_PLACEHOLDER.sub(",", masked), kinds


def strip_chatter(clause: str) -> str:
    return _CHATTER.sub("", clause).strip(" ,.~-_=+*#")


def topic_chars(clause: str) -> int:
    """How many characters of the clause could name a topic (not function or question words)."""
    body = _ASKING.sub("", clause)
    return sum(1 for ch in body if _CJK_OR_WORD.match(ch) and ch not in _NO_TOPIC)


def clauses(text: str) -> list[str]:
    """Clauses in order, chatter stripped, empty ones dropped."""
    text = _NEW_QUESTION.sub(r",\1", text)
    parts = [strip_chatter(part) for part in _BOUNDARY.split(text)]
    kept = []
    for part in parts:
        part = _NEW_QUESTION.sub("", part, count=1).strip() if _NEW_QUESTION.match(part) else part
        if _CJK_OR_WORD.search(part):
            kept.append(part)
    return kept


def asks(clause: str) -> bool:
    return bool(_ASKING.search(clause))


def _condense(context: list[str], question: str, budget: int) -> str:
    """The question plus as much of the story just before it as fits the budget."""
    kept = [question]
    used = len(question)
    for clause in reversed(context):
        if used + len(clause) > budget:
            break
        kept.insert(0, clause)
        used += len(clause)
    return "，".join(kept)


def group_questions(parts: list[str], budget: int = CONTEXT_BUDGET_CHARS) -> list[str]:
    """Clauses → questions: each asking clause with a topic of its own, with the story before it.

    An asking clause without a topic (能赔吗) belongs to the story before it; story after the last
    question is kept as context of that question when nothing asked is found at all."""
    questions: list[str] = []
    context: list[str] = []
    for clause in parts:
        # 能赔吗 has no topic of its own: it asks about the story told so far.
        if asks(clause) and (topic_chars(clause) >= MIN_TOPIC_CHARS or not questions and context):
            questions.append(_condense(context, clause, budget))
            context = []
        else:
            context.append(clause)
    if not questions:
        return [_condense(context[:-1], context[-1], budget)] if context else []
    if context and len("".join(context)) <= budget // 2 and topic_chars("".join(context)):
        # A trailing clause that asks nothing of its own («…，没过能补考不») still belongs to the question.
        questions[-1] = f"{questions[-1]}，{'，'.join(context)}"
    return questions


def condense_message(parts: list[str], budget: int = MESSAGE_BUDGET_CHARS) -> str:
    """A long message cut to what it asks plus the story nearest before each question.

    Asking clauses with a topic come first (in their order); then, while the budget lasts, the
    clauses just before each of them, nearest first. The kept clauses are joined in text order."""
    asking = [i for i, part in enumerate(parts) if asks(part) and topic_chars(part) >= MIN_TOPIC_CHARS]
    if not asking:
        asking = [i for i, part in enumerate(parts) if asks(part)] or [len(parts) - 1]
    kept: set[int] = set()
    used = 0
    for i in asking:
        if used + len(parts[i]) > budget and kept:
            break
        kept.add(i)
        used += len(parts[i])
    for distance in range(1, len(parts)):
        for i in asking:
            j = i - distance
            if j >= 0 and j not in kept and topic_chars(parts[j]) and used + len(parts[j]) <= budget:
                kept.add(j)
                used += len(parts[j])
    return "，".join(parts[i] for i in sorted(kept))


def read_query(typed: str, max_chars: int = 1000) -> Reading:
    """Read one query as the agent meant it; always returns at least one question for a non-empty text."""
    text = typed.strip()
    truncated = len(text) > max_chars
    if truncated:
        text = text[:max_chars]
    folded, converted = fold_text(text)
    cleaned, personal = remove_personal_data(folded)
    parts = clauses(cleaned)
    if len("".join(parts)) <= RELAYED_LINE_CHARS:
        questions = group_questions(parts)
    else:  # a pasted message: its questions usually circle one matter, told at length
        questions = [condense_message(parts)] if parts else []
    if not questions:  # nothing but chatter or numbers: search what is left, so the agent sees why
        fallback = re.sub(r"[,\s]+", " ", cleaned).strip(" ,")
        # What was typed, when only chatter was removed; never when personal data was (a bare
        # 13812345678 or 我手机13812345678 would be searched, and shown as read, in clear).
        questions = [fallback or ("" if personal else folded)]
    cleaned_text = "，".join(parts) if parts else questions[0]
    if len(questions) > MAX_QUESTIONS:
        questions = questions[:MAX_QUESTIONS]
    if len(questions) > 1 and not _looks_like_several(questions):
        questions = ["，".join(questions)] if len("，".join(questions)) <= 2 * CONTEXT_BUDGET_CHARS else questions[:1]
    return Reading(typed, cleaned_text, tuple(questions), converted, personal, truncated)


def _looks_like_several(questions: list[str]) -> bool:
    """Two asking clauses are two questions only when each names its own topic."""
    return all(topic_chars(q) >= MIN_TOPIC_CHARS for q in questions)
