"""Plain data objects of a usage report, and the written definition of every metric in it.

The definitions live next to the fields so the HTML, CSV, JSON and README all carry the same
wording: an analyst must be able to tell exactly what each number counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from kb_service.reports.stats import MIN_FEEDBACK

FEEDBACK_RULE = (
    "同一查询的反馈以最新为准：对同一篇文章（或对整个结果列表）再次投票，取代之前的票；"
    "「都没解决」取代此前该查询下所有「已解决」，之后的「已解决」又取代此前的「都没解决」。"
    "报表只统计未被取代的票。"
)

# China has had no daylight saving time since 1991, so a fixed offset is exact and lets SQLite
# bucket days and hours without a time-zone database.
UTC_OFFSET_HOURS = 8
REPORT_TZ = dt.timezone(dt.timedelta(hours=UTC_OFFSET_HOURS), "UTC+8")
EMPTY_MESSAGE = "所选时间段内没有日志"
UNKNOWN_CATEGORY = "uncategorised"


@dataclass(frozen=True)
class ReportOptions:
    """Thresholds of the report; each is quoted in the definitions so readers see the rule used."""

    top_queries: int = 50
    min_feedback: int = MIN_FEEDBACK
    low_ctr_min_shown: int = 50
    low_ctr_factor: float = 0.5
    max_gap_clusters: int = 50
    examples_per_cluster: int = 5
    articles_per_cluster: int = 5
    variants_per_group: int = 5


@dataclass(frozen=True)
class Period:
    """[since, until) in UTC+8; None = unbounded on that side."""

    since: dt.datetime | None
    until: dt.datetime | None

    @property
    def label(self) -> str:
        """'2026-11-01 至 2026-11-07（含）' for whole days, exact times otherwise."""
        def midnight(moment: dt.datetime | None) -> bool:
            return moment is None or moment.time() == dt.time()

        if midnight(self.since) and midnight(self.until):
            start = self.since.strftime("%Y-%m-%d") if self.since else "最早"
            end = (self.until - dt.timedelta(days=1)).strftime("%Y-%m-%d") if self.until else "最新"
            return f"{start} 至 {end}（北京时间，含首尾两天）"
        start = self.since.strftime("%Y-%m-%d %H:%M") if self.since else "最早"
        end = self.until.strftime("%Y-%m-%d %H:%M") if self.until else "最新"
        return f"{start} 至 {end}（北京时间，不含结束时刻）"

    def label_with_data(self, first: str | None, last: str | None) -> str:
        """The label with an open bound replaced by the first/last query's day (「最早 至 最新」 says nothing)."""
        if (self.since and self.until) or not (first and last):
            return self.label
        since = self.since or dt.datetime.fromisoformat(first[:10]).replace(tzinfo=REPORT_TZ)
        until = self.until or dt.datetime.fromisoformat(last[:10]).replace(tzinfo=REPORT_TZ) + dt.timedelta(days=1)
        bounded = Period(since, until).label
        return bounded.replace("）", "；未指定的一端取日志中最早/最新查询的日期）", 1)

    def bounds(self) -> tuple[float, float]:
        low = self.since.timestamp() if self.since else float("-inf")
        high = self.until.timestamp() if self.until else float("inf")
        return low, high


@dataclass
class Summary:
    queries: int = 0
    distinct_queries: int = 0
    query_groups: int = 0
    agents: int = 0
    sessions: int = 0
    days_with_queries: int = 0
    non_confident: int = 0
    non_confident_share: float | None = None
    no_hit_queries: int = 0
    no_hit_share: float | None = None
    queries_with_open: int = 0
    open_share: float | None = None
    feedback_votes: int = 0
    resolved_votes: int = 0
    resolution_rate: float | None = None
    resolution_ci: tuple[float, float] | None = None
    gap_queries: int = 0
    gap_share: float | None = None
    conversation_queries: int = 0  # suggestions read from a live conversation (/api/suggest)
    flags: int = 0
    first_query_at: str | None = None
    last_query_at: str | None = None


@dataclass
class QueryVariant:
    text: str
    normalised: str
    count: int


@dataclass
class QueryGroup:
    rank: int
    representative: str
    count: int
    share: float
    non_confident: int
    non_confident_share: float
    n_variants: int
    variants: list[QueryVariant] = field(default_factory=list)


@dataclass
class DayVolume:
    day: str
    queries: int
    non_confident: int
    non_confident_share: float


@dataclass
class HourVolume:
    hour: int
    queries: int
    non_confident: int
    non_confident_share: float
    per_day: float


@dataclass
class ArticleStats:
    article_id: str
    title: str
    category: str
    category_label: str
    version: int | None  # None on the per-article rows (all versions together)
    in_catalog: bool
    impressions: int = 0
    shown_queries: int = 0
    shown_texts: int = 0  # distinct normalised query texts that showed it
    mean_rank: float | None = None
    opens: int = 0
    open_queries: int = 0
    copies: int = 0
    copy_queries: int = 0
    ctr: float | None = None
    feedback: int = 0
    resolved: int = 0
    unresolved: int = 0
    resolution_rate: float | None = None  # None below the minimum sample
    ci_low: float | None = None
    ci_high: float | None = None
    enough_feedback: bool = False
    rate_label: str = ""
    low_ctr: bool = False


@dataclass
class CategoryStats:
    category: str
    label: str
    articles_in_catalog: int
    articles_shown: int
    impressions: int
    shown_queries: int
    open_queries: int
    ctr: float | None
    feedback: int
    resolved: int
    resolution_rate: float | None
    ci_low: float | None
    ci_high: float | None
    enough_feedback: bool
    rate_label: str


@dataclass
class ArticleRef:
    article_id: str
    title: str
    category: str
    category_label: str


@dataclass
class ShownArticle:
    article_id: str
    title: str
    queries: int


@dataclass
class GapCluster:
    rank: int
    label: str
    keywords: list[str]
    queries: int
    non_confident: int
    unresolved: int
    distinct_phrasings: int
    examples: list[QueryVariant] = field(default_factory=list)
    articles_shown: list[ShownArticle] = field(default_factory=list)
    articles_opened: list[ShownArticle] = field(default_factory=list)
    members: list[str] = field(default_factory=list)  # every normalised text of the topic (drill-down)


@dataclass
class FlagGroup:
    """Flags on one article for one reason: what editors should check first."""

    article_id: str
    title: str
    reason: str
    reason_label: str
    flags: int
    flagged_version: int  # the newest version a flag was raised on
    current_version: int | None  # None: not in the catalog (deleted)
    latest: str
    comments: list[str] = field(default_factory=list)  # masked when stored

    @property
    def still_open(self) -> bool:
        return self.current_version is not None and self.current_version <= self.flagged_version


@dataclass(frozen=True)
class MetricDefinition:
    key: str
    name: str
    definition: str


@dataclass
class Report:
    period: Period
    generated_at: str
    options: ReportOptions
    empty: bool
    message: str | None
    summary: Summary
    top_queries: list[QueryGroup] = field(default_factory=list)
    daily: list[DayVolume] = field(default_factory=list)
    hourly: list[HourVolume] = field(default_factory=list)
    articles: list[ArticleStats] = field(default_factory=list)
    article_versions: list[ArticleStats] = field(default_factory=list)
    low_ctr: list[ArticleStats] = field(default_factory=list)
    never_shown: list[ArticleRef] = field(default_factory=list)
    categories: list[CategoryStats] = field(default_factory=list)
    gaps: list[GapCluster] = field(default_factory=list)
    flags: list[FlagGroup] = field(default_factory=list)
    definitions: list[MetricDefinition] = field(default_factory=list)
    period_label: str = ""  # period.label with open bounds filled from the data
    gap_method: str = ""  # how gap topics were grouped (embedder name or character bigrams)


def metric_definitions(options: ReportOptions | None = None) -> list[MetricDefinition]:
    """The wording printed in every report (and in the README).

    Over 60 lines on purpose: one list of texts, read and reviewed as one table, not logic."""
    o = options or ReportOptions()
    d = MetricDefinition
    return [
        d("period", "统计时间段",
          "按查询时间（北京时间 UTC+8）取 [起始, 结束) 内的查询；只给日期时，结束日期当天整天计入。"
          "打开、复制和反馈都归入其所属查询的时间段（即使点击发生在时间段之后）。"),
        d("queries", "查询量", "时间段内记录的搜索次数（queries 表的行数）。"),
        d("normalised", "规范化查询",
          "全角转半角、转小写、去掉空白、标点和符号后的查询文本；规范化后相同即视为同一查询。"),
        d("query_group", "查询组（近似重复合并）",
          "规范化查询再去掉语气/虚词（请问、一下、能、可以、吗、呢、啊、呀、吧、的、了、么）后，"
          "两者的最长公共子序列比 2·LCS/(长度和) ≥ 0.8 即视为同一问题的不同问法；"
          "按出现次数从多到少，每条并入与其最相似的组首问法，否则自成一组。组名为组内最常见的问法（已脱敏）。"
          "只比较共享非常见字二元组的字符串对（二元组 Dice ≥ 0.4），因此百万行也不需两两比较。"),
        d("top_queries", "高频查询", f"按查询组计数排序的前 {o.top_queries} 组；占比 = 组查询量 / 总查询量。"),
        d("non_confident_share", "无把握答案占比",
          "confident = 0 的查询数 / 查询量：检索没有给出有把握的答案（含无结果）。"),
        d("no_hit_share", "无结果占比", "n_hits = 0 的查询数 / 查询量。"),
        d("volume", "按日 / 按小时查询量",
          "按北京时间自然日、按一天中的小时（0–23 点）汇总的查询量；「日均」= 该小时查询量 / 有查询的天数。"),
        d("impressions", "展示次数", "文章出现在某次查询结果中的次数（impressions 表行数，任意排名）；"
          "每次查询每篇文章至多出现一次，所以它也是展示该文章的查询次数（CTR 的分母）。"),
        d("shown_queries", "展示查询（不同问法）",
          "结果中出现过该文章的不同查询文本数（按规范化查询去重）：同一问法被问 100 次计 1。"
          "展示次数远大于它说明文章总被少数高频问法带出。"),
        d("mean_rank", "平均排名", "该文章各次展示的排名（1 = 第一条）之和 / 展示次数。"),
        d("open_queries", "打开查询数", "展示了该文章、且坐席在同一查询下至少打开一次该文章的查询数。"),
        d("ctr", "点击率 CTR", "打开查询数 / 展示查询数（每个查询最多计一次，与打开次数无关）。"),
        d("opens_copies", "打开次数 / 复制次数",
          "events 表中指向该文章的 open / copy 事件总数（含同一查询内的重复点击）；"
          "复制查询数 = 至少复制一次该文章话术的查询数。"),
        d("feedback", "反馈票数", "feedback 表中指名该文章的反馈条数（resolved = 1 为已解决，0 为未解决）。"),
        d("resolution_rate", "解决率",
          f"已解决票数 / 指名该文章的全部反馈票数，附 Wilson 95% 置信区间。少于 {o.min_feedback} 票时显示"
          "「样本不足」且不参与排名。文章版本取同一查询中该文章展示时的版本；反馈指名的文章未在该查询中展示时"
          "版本记为「未知」。"),
        d("overall_resolution", "整体解决率", "全部反馈（含「都没帮上」即未指名文章的反馈）中 resolved = 1 的比例，附 Wilson 95% 区间。"),
        d("never_shown", "期间从未展示的文章", "文章目录（索引当前版本的 manifest 或文章目录）中、在时间段内展示次数为 0 的文章。"),
        d("low_ctr", "常展示但很少被打开",
          f"展示查询数 ≥ {o.low_ctr_min_shown} 且 CTR < 全部文章整体 CTR 的 {o.low_ctr_factor:.0%} 的文章，"
          "按展示查询数降序。整体 CTR = Σ打开查询数 / Σ展示查询数。"),
        d("category", "按分类", "按文章分类汇总上面的文章指标（展示、打开、反馈均按「查询×文章」对相加）；"
          "不在目录中的文章归入「未分类」。"),
        d("conversation_queries", "来自会话的建议",
          "queries 表中 source = 'conversation' 的查询：由 /api/suggest 读取对话中客户的问题得出，和搜索一样计入查询量。"),
        d("feedback_rule", "矛盾反馈", FEEDBACK_RULE),
        d("flags", "内容有误/已过时（坐席标记）",
          "flags 表中时间段内坐席提交的标记，按文章和原因汇总；「标记版本」为标记时坐席看到的最新文章版本，"
          "文章当前版本更高表示标记后已修订。附最近 3 条说明（已脱敏）。"),
        d("gap_query", "内容缺口查询",
          "满足「confident = 0」或「至少一条 resolved = 0 的反馈（指名任意文章或都没帮上）」，且没有任何 "
          "resolved = 1 反馈的查询。"),
        d("gap_cluster", "缺口主题",
          "先把缺口查询的规范化文本按「查询组」规则合并近似问法，再对各组最常见的问法聚类：特征为去掉疑问词和通用词"
          "（保险、理赔、赔多少、事故等几乎每问都有的词）后剩下文字的字二元组，"
          "按全部查询计算 TF-IDF 权重，只保留至少出现在两个组中的二元组（脱敏占位符如〔手机号〕不计）；"
          "按查询数从多到少，每组并入质心余弦相似度最高（≥ 0.3）的主题，否则新建主题。主题名为其中最常见的问法，"
          "关键词为权重最高的字串。每个主题给出缺口查询数、无把握与未解决查询数、示例问法（已脱敏）和这些查询中展示过的文章；"
          f"按缺口查询数降序，最多 {o.max_gap_clusters} 个。"
          "服务端加载了检索所用的向量模型时（kb report、分析工作台），改为按语义分组：得分 = 0.5 × 向量余弦"
          "（按该模型对无关问题的平均余弦重新标定）+ 0.5 × 实词重合（jieba 实词与去掉疑问词后的字二元组，"
          "按本期查询的 IDF 加权，口语说法按领域词典归一），≥ 0.32 即并入；没有共同实词的两问只有向量极近才并。"
          "主题名改为中心问法（按次数加权、与组内其他问法最相近的一条）；报表注明所用分组方式。"),
    ]


def definitions_markdown(options: ReportOptions | None = None) -> str:
    """The same definitions as a Markdown table, for the README."""
    lines = ["| 指标 | 定义 |", "| --- | --- |"]
    for item in metric_definitions(options):
        lines.append(f"| {item.name} | {item.definition.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
