"""Write a realistic, reproducible usage log for report development, tests and benchmarks.

Why a simulator: the reports must be checked against numbers that are *known*. This script
decides the per-article resolution probabilities and the content gaps itself, writes a log
through the real store's schema and masking/normalisation, and can export that ground truth
(--truth-out) so a test can check that the report recovers it.

The model, in short:
- intents are the articles' aliases (what agents really type), with Zipf popularity; each is
  asked as typed, with fillers (请问…吗), a follow-up tail (…要多久), a typo, or with customer
  details pasted in; plus out-of-scope chatter and planted gap topics no article covers;
- the same text always gets the same results (a deterministic stand-in for the engine, or the
  real engine with --use-engine), so impressions behave like a search index;
- agents work weekdays more than weekends, 08–22 Beijing time with a morning and afternoon peak;
- opens depend on rank and on whether the shown article answers the intent; feedback names the
  article that answered with resolved ~ Bernoulli(p[article, version]); a few articles get a new
  version half-way through with a different p.

Usage: python scripts/simulate_usage.py --out var/sim.sqlite3 --queries 100000 --truth-out truth.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kb_service.masking import mask_personal_data  # noqa: E402
from kb_service.usage_log.daily import rebuild as rebuild_daily_rollups  # noqa: E402
from kb_service.usage_log.grouping import grouping_form  # noqa: E402
from kb_service.usage_log.sqlite import SQLiteLogStore  # noqa: E402
from kb_service.usage_log.store import EventLog, FeedbackLog, Impression, QueryLog  # noqa: E402

UTC8 = dt.timezone(dt.timedelta(hours=8))
DEFAULT_END = dt.date(2026, 11, 24)  # fixed so a run never depends on the wall clock
K = 5  # hits shown per query
INDEX_VERSION = "sim-gen-1"

FILLER_PREFIXES = ("请问", "客户问", "咨询一下", "想问下")
FILLER_SUFFIXES = ("吗", "呢", "怎么办", "啊", "的问题")
FOLLOW_UPS = (
    "需要什么材料", "要多久", "怎么跟客户解释", "有什么要求", "在哪里查", "能不能线上办", "流程是什么",
    "注意事项", "有没有话术", "客户不同意怎么办", "时间限制", "标准是什么", "例外情况", "费用多少",
    "客户投诉了", "系统里怎么操作", "要签字吗", "能加急吗", "扣分吗", "规定是什么",
)
HOMOPHONES = {
    "赔": "陪", "案": "按", "损": "顺", "险": "现", "保": "宝", "理": "里", "车": "车", "诉": "述",
    "材": "才", "料": "了", "续": "须", "期": "其", "话": "化", "证": "正", "核": "合", "单": "但",
}
OUT_OF_SCOPE = (
    "今天天气怎么样", "食堂几点开饭", "怎么请年假", "工资什么时候发", "打印机坏了找谁", "年终奖怎么算",
    "电脑密码忘了", "会议室怎么预约", "班车几点发车", "排班表在哪看", "wifi密码是多少", "快递放哪里",
    "体检报告在哪领", "下周放假吗", "oa系统登不上", "耳机坏了怎么换",
)


@dataclass(frozen=True)
class GapTopic:
    """A question family no article answers; `decoys` are what a search engine would show instead."""

    name: str
    phrasings: tuple[str, ...]
    decoys: tuple[str, ...]
    share: float  # of all queries


GAP_TOPICS: tuple[GapTopic, ...] = (
    GapTopic("新能源车电池", (
        "新能源车电池坏了赔吗", "新能源车电池衰减保险管不管", "新能源车电池进水了能赔吗",
        "新能源车三电保障怎么赔", "新能源汽车电池被撞坏了赔多少", "新能源车电池起火赔不赔",
        "新能源车电池更换保险报销吗", "新能源车充电时电池自燃怎么理赔",
    ), ("spontaneous-combustion-rider", "vehicle-damage-insurance", "exclusions"), 0.02),
    GapTopic("网约车营运", (
        "跑网约车出事故保险赔吗", "私家车跑网约车出险被拒赔", "网约车要买营运险吗",
        "网约车改变使用性质怎么投保", "兼职开网约车保险怎么买", "网约车营运车辆理赔标准",
        "开网约车被保险公司拒赔怎么办",
    ), ("exclusions", "commercial-insurance-overview", "purchase-and-underwriting-flow"), 0.015),
    GapTopic("代驾出险", (
        "代驾撞车了谁来赔", "代驾司机出事故保险赔吗", "找代驾把车刮了怎么理赔", "代驾期间车损谁负责",
        "代驾责任险和车险什么关系", "代驾出险保险公司赔不赔",
    ), ("third-party-liability", "vehicle-damage-insurance", "claim-traffic-accident"), 0.012),
    GapTopic("过户退保", (
        "二手车过户后保险怎么转", "卖车了车险能退吗", "车辆过户保单怎么批改", "二手车过户保险要重新买吗",
        "车卖了保险怎么退保", "过户车辆保险变更手续", "退保能退多少钱",
    ), ("contract-documents", "policy-inquiry", "purchase-and-underwriting-flow"), 0.01),
    GapTopic("港澳自驾", (
        "开车去香港车险管用吗", "自驾去澳门车险有效吗", "港澳自驾保险怎么买", "粤港澳跨境车险怎么办理",
        "自驾去香港出事故怎么理赔",
    ), ("commercial-insurance-overview", "compulsory-traffic-insurance", "claims-flow-overview"), 0.008),
)

# How a covered intent is typed: (kind, share of the intent's queries).
VARIANT_KINDS = (("exact", 0.70), ("filler", 0.12), ("tail", 0.09), ("typo", 0.05), ("pasted", 0.04))
OUT_OF_SCOPE_SHARE = 0.02
# Rank of the answering article (1..5, 0 = not shown) and confidence, by variant kind.
RANK_P = {
    "exact": (0.0, 0.86, 0.09, 0.03, 0.01, 0.01),
    "filler": (0.02, 0.80, 0.10, 0.04, 0.02, 0.02),
    "tail": (0.08, 0.62, 0.16, 0.08, 0.04, 0.02),
    "typo": (0.18, 0.55, 0.14, 0.07, 0.04, 0.02),
    "pasted": (0.04, 0.78, 0.10, 0.04, 0.02, 0.02),
}
CONFIDENT_P = {"exact": 0.95, "filler": 0.9, "tail": 0.72, "typo": 0.5, "pasted": 0.85, "gap": 0.08, "oos": 0.03}
OPEN_TRUE = np.array([0.78, 0.62, 0.48, 0.38, 0.3])
OPEN_OTHER = np.array([0.06, 0.04, 0.03, 0.02, 0.02])
COPY_GIVEN_OPEN = 0.3
COPY_GIVEN_OPEN_SCRIPT = 0.65
FEEDBACK_P = 0.3
# Agents who found nothing to open rarely stop to vote.
FEEDBACK_WITHOUT_OPEN = 0.3
HOUR_PROFILE = np.array([0, 0, 0, 0, 0, 0, 0, 0.2, 0.7, 1.0, 1.1, 0.95, 0.55, 0.7, 1.0, 1.05, 0.95,
                         0.8, 0.55, 0.45, 0.4, 0.3, 0.15, 0.02])


@dataclass(frozen=True)
class SimArticle:
    article_id: str
    title: str
    category: str
    version: int
    aliases: tuple[str, ...]


@dataclass
class TextEntry:
    """One distinct query text and what searching it returns."""

    text: str
    kind: str
    true_article: str | None
    weight: float
    results: list[str] | None = None  # resolved lazily: only texts some query uses are searched
    confident: bool = True
    gap_topic: str | None = None


@dataclass
class Truth:
    seed: int
    articles: dict[str, dict]
    gap_topics: list[dict]
    out_of_scope: list[str]
    update_ts: float

    def resolution_probability(self, article_id: str, version: int) -> float:
        return self.articles[article_id]["versions"][str(version)]

    def to_json(self) -> dict:
        return {"seed": self.seed, "articles": self.articles, "gap_topics": self.gap_topics,
                "out_of_scope": self.out_of_scope, "update_ts": self.update_ts}


@dataclass
class SimConfig:
    queries: int = 10_000
    agents: int = 40
    days: int = 28
    end: dt.date = DEFAULT_END
    seed: int = 7
    feedback_rate: float = FEEDBACK_P


def load_sim_articles(articles_dir: Path) -> list[SimArticle]:
    return list(_load_sim_articles(Path(articles_dir).resolve()))


@lru_cache(maxsize=4)
def _load_sim_articles(articles_dir: Path) -> tuple[SimArticle, ...]:
    from kb_service.content.articles import load_articles

    loaded = load_articles(articles_dir).articles
    if not loaded:
        raise SystemExit(f"no articles in {articles_dir}")
    return tuple(SimArticle(a.id, a.title, a.category, a.version, tuple(dict.fromkeys(a.aliases or (a.title,))))
                 for a in sorted(loaded, key=lambda a: a.id))


# --- the text table ------------------------------------------------------------------------


def _typo(text: str, rng: random.Random) -> str:
    positions = [i for i, ch in enumerate(text) if ch in HOMOPHONES and HOMOPHONES[ch] != ch]
    if positions:
        i = rng.choice(positions)
        return text[:i] + HOMOPHONES[text[i]] + text[i + 1 :]
    if len(text) > 3:
        i = rng.randrange(1, len(text) - 1)
        return text[:i] + text[i + 1 :]
    return text + text[-1]


def _surface(text: str, rng: random.Random) -> str:
    """Differences that normalisation removes: punctuation, spaces, full width."""
    choice = rng.random()
    if choice < 0.3:
        return text + rng.choice(("？", "?", "。", "!"))
    if choice < 0.4 and len(text) > 2:
        i = rng.randrange(1, len(text))
        return text[:i] + " " + text[i:]
    if choice < 0.45:
        return text.upper().translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    return text


def _results(rng: random.Random, true_article: str | None, rank_p: tuple[float, ...], pool: list[str],
             same_category: list[str]) -> list[str]:
    others = [a for a in same_category if a != true_article]
    picked = rng.sample(others, min(2, len(others)))
    extra = [a for a in rng.sample(pool, min(len(pool), K + 4)) if a != true_article and a not in picked]
    fill = (picked + extra)[:K]
    if true_article is None:
        return fill
    slot = rng.choices(range(K + 1), weights=rank_p)[0]
    if slot == 0:
        return fill
    shown = fill[: K - 1]
    shown.insert(slot - 1, true_article)
    return shown


def build_text_table(articles: list[SimArticle], cfg: SimConfig) -> list[TextEntry]:
    rng = random.Random(cfg.seed)
    # An article's first alias is its everyday question: those make the head of the distribution.
    intents = [(a.article_id, alias, position) for a in articles for position, alias in enumerate(a.aliases)]
    rng.shuffle(intents)
    intents.sort(key=lambda item: min(item[2], 1))
    gap_share = sum(t.share for t in GAP_TOPICS)
    covered_share = 1.0 - gap_share - OUT_OF_SCOPE_SHARE
    # Zipf–Mandelbrot: a head of frequent questions without one question taking a tenth of the traffic.
    zipf = np.array([1.0 / (r + 8) ** 1.1 for r in range(len(intents))])
    zipf = zipf / zipf.sum() * covered_share
    entries: dict[str, TextEntry] = {}

    def add(text: str, kind: str, article: str | None, weight: float, gap: str | None = None) -> None:
        if text in entries:
            entries[text].weight += weight
            return
        entries[text] = TextEntry(text, kind, article, weight, gap_topic=gap)

    for (article_id, alias, _), w in zip(intents, zipf.tolist(), strict=True):
        for kind, share in VARIANT_KINDS:
            if kind == "exact":
                forms = [alias] + [_surface(alias, rng) for _ in range(3)]
            elif kind == "filler":
                forms = [rng.choice(FILLER_PREFIXES) + alias for _ in range(2)] + [
                    alias + rng.choice(FILLER_SUFFIXES) for _ in range(2)]
            elif kind == "tail":
                forms = [alias + tail for tail in FOLLOW_UPS] + [
                    rng.choice(FILLER_PREFIXES) + alias + tail for tail in rng.sample(FOLLOW_UPS, 10)]
            elif kind == "typo":
                forms = [_typo(alias, rng) for _ in range(3)]
            else:
                forms = ["客户手机{phone}问" + alias, "车牌{plate}的" + alias]
            for form in forms:
                add(form, kind, article_id, w * share / len(forms))
    for topic in GAP_TOPICS:
        forms = [(p, 1.0) for p in topic.phrasings] + [(_surface(p, rng), 0.3) for p in topic.phrasings]
        forms += [(p + rng.choice(FILLER_SUFFIXES), 0.2) for p in topic.phrasings]
        total = sum(x for _, x in forms)
        for form, x in forms:
            add(form, "gap", None, topic.share * x / total, topic.name)
    for text in OUT_OF_SCOPE:
        add(text, "oos", None, OUT_OF_SCOPE_SHARE / len(OUT_OF_SCOPE))
    return sorted(entries.values(), key=lambda e: e.text)


Resolver = Callable[[list[TextEntry]], None]


def stand_in_resolver(articles: list[SimArticle], cfg: SimConfig) -> Resolver:
    """Deterministic stand-in for the engine: results depend only on (seed, text), like an index."""
    ids = [a.article_id for a in articles]
    by_category: dict[str, list[str]] = {}
    for a in articles:
        by_category.setdefault(a.category, []).append(a.article_id)
    category_of = {a.article_id: a.category for a in articles}
    topic_decoys = {t.name: [d for d in t.decoys if d in category_of] for t in GAP_TOPICS}

    def resolve(entries: list[TextEntry]) -> None:
        for entry in entries:
            r = random.Random(f"{cfg.seed}:{entry.text}")
            if entry.kind == "gap":
                decoys = topic_decoys[entry.gap_topic or ""]
                results = (decoys + [a for a in r.sample(ids, K + 3) if a not in decoys])[:K]
                r.shuffle(results)
            elif entry.kind == "oos":
                results = [] if r.random() < 0.5 else r.sample(ids, K)
            else:
                assert entry.true_article is not None
                results = _results(r, entry.true_article, RANK_P[entry.kind], ids,
                                   by_category[category_of[entry.true_article]])
            entry.results = results
            entry.confident = bool(results) and r.random() < CONFIDENT_P[entry.kind] and (
                entry.true_article is None or entry.true_article in results)

    return resolve


def engine_resolver(settings_overrides: dict | None = None) -> Resolver:
    """Results from the real search engine (slow: one search per distinct text used)."""

    def resolve(entries: list[TextEntry]) -> None:
        from kb_service.search.engine import SearchEngine
        from kb_service.settings import Settings

        engine = SearchEngine.open(Settings().with_overrides(**(settings_overrides or {})))
        try:
            for entry in entries:
                response = engine.search(entry.text.format(phone="13800000000", plate="粤B12345"), k=K)
                entry.results = [h.article_id for h in response.hits]
                entry.confident = response.confident
        finally:
            engine.close()

    return resolve


# --- truth -----------------------------------------------------------------------------------


def make_truth(articles: list[SimArticle], cfg: SimConfig, update_ts: float) -> Truth:
    rng = random.Random(f"{cfg.seed}:truth")
    truth: dict[str, dict] = {}
    updated = set(rng.sample([a.article_id for a in articles], min(6, len(articles))))
    for a in articles:
        p = rng.uniform(0.15, 0.35) if rng.random() < 0.1 else rng.uniform(0.45, 0.95)
        versions = {str(a.version): round(p, 3)}
        if a.article_id in updated:
            versions[str(a.version + 1)] = round(min(0.97, p + rng.uniform(0.1, 0.3)), 3)
        truth[a.article_id] = {"title": a.title, "category": a.category, "versions": versions,
                               "updated_at_version": a.version + 1 if a.article_id in updated else None}
    gaps = [{"name": t.name, "phrasings": list(t.phrasings), "share": t.share} for t in GAP_TOPICS]
    return Truth(cfg.seed, truth, gaps, list(OUT_OF_SCOPE), update_ts)


# --- query generation ------------------------------------------------------------------------


def _timestamps(rng: np.random.Generator, cfg: SimConfig, n: int) -> np.ndarray:
    start = dt.datetime.combine(cfg.end - dt.timedelta(days=cfg.days - 1), dt.time(), UTC8).timestamp()
    day_weight = np.array([
        (0.45 if (cfg.end - dt.timedelta(days=cfg.days - 1 - d)).weekday() >= 5 else 1.0) * (1 + 0.004 * d)
        for d in range(cfg.days)
    ])
    days = rng.choice(cfg.days, size=n, p=day_weight / day_weight.sum())
    hours = rng.choice(24, size=n, p=HOUR_PROFILE / HOUR_PROFILE.sum())
    seconds = rng.uniform(0, 3600, size=n)
    ts = start + days * 86400.0 + hours * 3600.0 + seconds
    return np.sort(ts)


@dataclass
class Chunk:
    queries: list[tuple]
    impressions: list[tuple]
    events: list[tuple]
    feedback: list[tuple]


def generate(articles: list[SimArticle], cfg: SimConfig, resolver: Resolver | None = None,
             chunk_size: int = 100_000) -> tuple[Truth, Iterator[Chunk]]:
    """Truth plus a stream of row chunks in the store's column order (masked and normalised)."""
    table = build_text_table(articles, cfg)
    rng = np.random.default_rng(cfg.seed)
    ts_all = _timestamps(rng, cfg, cfg.queries)
    update_ts = float(np.quantile(ts_all, 0.5)) if len(ts_all) else 0.0
    truth = make_truth(articles, cfg, update_ts)
    version_of = {a.article_id: a.version for a in articles}
    new_version = {a: int(max(v, key=int)) for a, info in truth.articles.items()
                   for v in [info["versions"]] if len(v) > 1}
    category_of = {a.article_id: a.category for a in articles}
    weights = np.array([e.weight for e in table])
    text_idx_all = rng.choice(len(table), size=cfg.queries, p=weights / weights.sum())
    (resolver or stand_in_resolver(articles, cfg))([table[i] for i in np.unique(text_idx_all).tolist()])
    for entry in table:
        if entry.results is None:  # never asked: only needs a shape for the arrays below
            entry.results, entry.confident = [], False
    agent_w = 1.0 / np.arange(1, cfg.agents + 1) ** 0.35
    agents_all = rng.choice(cfg.agents, size=cfg.queries, p=agent_w / agent_w.sum())
    # Per text, as arrays: results padded to K, whether each result answers the intent.
    res_ids = [(e.results or []) + [""] * (K - len(e.results or [])) for e in table]
    is_true = np.array([[e.true_article is not None and a == e.true_article for a in r]
                        for e, r in zip(table, res_ids, strict=True)])
    has = np.array([[a != "" for a in r] for r in res_ids])
    is_script = np.array([[category_of.get(a) == "script" for a in r] for r in res_ids])
    memo: dict[str, tuple[str, str]] = {}

    def masked(text: str) -> tuple[str, str]:
        hit = memo.get(text)
        if hit is None:
            m = mask_personal_data(text)
            hit = memo[text] = (m, grouping_form(m))
        return hit

    def chunks() -> Iterator[Chunk]:
        for start in range(0, cfg.queries, chunk_size):
            stop = min(start + chunk_size, cfg.queries)
            n = stop - start
            tix = text_idx_all[start:stop]
            ts = ts_all[start:stop]
            ag = agents_all[start:stop]
            p_open = np.where(is_true[tix], OPEN_TRUE, OPEN_OTHER) * has[tix]
            opened = rng.random((n, K)) < p_open
            p_copy = np.where(is_script[tix], COPY_GIVEN_OPEN_SCRIPT, COPY_GIVEN_OPEN)
            copied = opened & (rng.random((n, K)) < p_copy)
            true_opened = (opened & is_true[tix]).any(axis=1)
            p_feedback = np.where(true_opened, 1.0, FEEDBACK_WITHOUT_OPEN) * cfg.feedback_rate
            gives_feedback = rng.random(n) < p_feedback
            u_resolve = rng.random(n)
            latency = rng.lognormal(4.3, 0.35, n)
            offsets = rng.uniform(3, 40, (n, K))
            phones = rng.integers(10**9, 10**10, n)
            plates = rng.integers(10000, 99999, n)
            q_rows, i_rows, e_rows, f_rows = [], [], [], []
            for k in range(n):
                entry = table[tix[k]]
                qid = f"sim{cfg.seed}-{start + k:08d}"
                t = float(ts[k])
                text = entry.text
                if "{" in text:
                    text = text.format(phone=f"13{phones[k]:09d}"[:11], plate=f"粤B{plates[k]}")
                masked_text, normalised = masked(text)
                day = int((t + 8 * 3600) // 86400)
                agent = f"agent-{ag[k] + 1:03d}"
                results = entry.results
                q_rows.append((qid, t, agent, f"{agent}-{day}-{int((t % 86400) // 14400)}", masked_text, normalised,
                               int(entry.confident), len(results), round(float(latency[k]), 1), INDEX_VERSION))
                versions = [new_version[a] if a in new_version and t >= update_ts else version_of.get(a, 1)
                            for a in results]
                for r, a in enumerate(results):
                    i_rows.append((qid, r + 1, a, versions[r], f"{a}#{r}", round(1.0 - 0.12 * r, 3)))
                for r in np.flatnonzero(opened[k]).tolist():
                    e_rows.append((qid, t + float(offsets[k, r]), "open", results[r]))
                    if copied[k, r]:
                        e_rows.append((qid, t + float(offsets[k, r]) + 5.0, "copy", results[r]))
                if gives_feedback[k]:
                    if true_opened[k]:
                        a = entry.true_article
                        v = versions[results.index(a)]
                        p = truth.resolution_probability(a, v)
                        f_rows.append((qid, t + 90.0, a, int(u_resolve[k] < p), None))
                    else:
                        f_rows.append((qid, t + 90.0, None, 0, None))
            yield Chunk(q_rows, i_rows, e_rows, f_rows)

    return truth, chunks()


# --- writers ---------------------------------------------------------------------------------


def write_fast(path: Path, chunks: Iterator[Chunk], progress: Callable[[int], None] | None = None) -> int:
    """executemany into the schema the real store creates (same masking/normalisation as the store)."""
    SQLiteLogStore(path).close()  # creates and migrates the schema
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    total = 0
    try:
        for chunk in chunks:
            conn.execute("BEGIN")
            conn.executemany("INSERT OR IGNORE INTO queries (query_id, ts, agent_id, session_id, query_masked, "
                             "query_normalised, confident, n_hits, latency_ms, index_version) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", chunk.queries)
            conn.executemany("INSERT INTO impressions (query_id, rank, article_id, article_version, passage_id, "
                             "score) VALUES (?, ?, ?, ?, ?, ?)", chunk.impressions)
            conn.executemany("INSERT INTO events (query_id, ts, type, article_id) VALUES (?, ?, ?, ?)",
                             chunk.events)
            conn.executemany("INSERT INTO feedback (query_id, ts, article_id, resolved, comment) "
                             "VALUES (?, ?, ?, ?, ?)", chunk.feedback)
            conn.execute("COMMIT")
            total += len(chunk.queries)
            if progress:
                progress(total)
        # The rows went in around the store, so its per-day roll-ups are computed once at the end.
        conn.execute("BEGIN")
        rebuild_daily_rollups(conn)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return total


def write_via_store(path: Path, chunks: Iterator[Chunk], raw_texts: dict[str, str] | None = None) -> int:
    """The slow, faithful path: every record through SQLiteLogStore.record_many (masking happens there).

    The chunks carry already-masked text; masking is idempotent on placeholders, so passing it
    again through the store gives the same stored rows.
    """
    total = 0
    with SQLiteLogStore(path) as store:
        for chunk in chunks:
            by_query: dict[str, list[Impression]] = {}
            for qid, rank, a, v, pid, score in chunk.impressions:
                by_query.setdefault(qid, []).append(Impression(rank, a, v, pid, score))
            records: list[QueryLog | EventLog | FeedbackLog] = []
            for qid, ts, agent, session, masked_text, _norm, conf, n_hits, lat, iv in chunk.queries:
                records.append(QueryLog(qid, ts, agent, session, masked_text, bool(conf), n_hits, lat, iv,
                                        by_query.get(qid, [])))
            records += [EventLog(q, a, typ, ts) for q, ts, typ, a in chunk.events]
            records += [FeedbackLog(q, a, bool(res), c, ts) for q, ts, a, res, c in chunk.feedback]
            store.record_many(records)
            store.flush()
            total += len(chunk.queries)
    return total


def simulate(out: Path, cfg: SimConfig, articles_dir: Path, *, writer: str = "fast", use_engine: bool = False,
             truth_out: Path | None = None, progress: Callable[[int], None] | None = None) -> Truth:
    if out.exists():
        raise SystemExit(f"{out} exists: the simulator only writes new files")
    articles = load_sim_articles(articles_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    truth, chunks = generate(articles, cfg, engine_resolver() if use_engine else None)
    if writer == "store":
        write_via_store(out, chunks)
    else:
        write_fast(out, chunks, progress)
    if truth_out:
        truth_out.parent.mkdir(parents=True, exist_ok=True)
        truth_out.write_text(json.dumps(truth.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    return truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="new SQLite file to write")
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--end", type=dt.date.fromisoformat, default=DEFAULT_END, help="last day (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--articles-dir", type=Path, default=ROOT / "articles")
    parser.add_argument("--truth-out", type=Path, help="write the known resolution rates and gaps as JSON")
    parser.add_argument("--use-engine", action="store_true",
                        help="results from the real search engine (needs a built index; one search per distinct text)")
    parser.add_argument("--writer", choices=("fast", "store"), default="fast",
                        help="fast: executemany into the store's schema; store: SQLiteLogStore.record_many")
    args = parser.parse_args(argv)
    cfg = SimConfig(queries=args.queries, agents=args.agents, days=args.days, end=args.end, seed=args.seed)
    started = time.perf_counter()
    simulate(args.out, cfg, args.articles_dir, writer=args.writer, use_engine=args.use_engine,
             truth_out=args.truth_out,
             progress=lambda n: print(f"  {n:,} queries written", file=sys.stderr))
    print(f"wrote {cfg.queries:,} queries to {args.out} in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
