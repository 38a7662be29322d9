"""Charts for the HTML report, drawn offline with matplotlib and returned as inline SVG.

The report must open on an analyst's laptop with no network, so nothing is fetched: text is
converted to outlines (svg.fonttype = path), which also means the reader needs no CJK font —
only this machine does, to draw the glyphs. Without one the charts still render (with
missing-glyph boxes) and a warning is logged rather than failing the report.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache

import matplotlib as mpl
from matplotlib import font_manager
from matplotlib.figure import Figure

from kb_service.reports.data import (
    ArticleStats,
    CategoryStats,
    DayVolume,
    GapCluster,
    HourVolume,
    QueryGroup,
)

log = logging.getLogger(__name__)

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei",
                "WenQuanYi Micro Hei", "Droid Sans Fallback", "SimHei", "Microsoft YaHei", "PingFang SC")
CJK_FILE_HINTS = ("NotoSansCJK", "SourceHanSans", "wqy-zenhei", "wqy-microhei", "DroidSansFallback")
BLUE, ORANGE, GREY, RED = "#3b6fb6", "#e08a2c", "#9aa3ad", "#c0392b"


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """Family name of an installed CJK font (Debian: fonts-noto-cjk), registering its file if needed."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known:
            return family
    for path in font_manager.findSystemFonts():
        if any(hint.lower() in path.lower() for hint in CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
                return font_manager.FontProperties(fname=path).get_name()
            except (OSError, RuntimeError, ValueError):
                continue
    log.warning("no CJK font found (apt-get install fonts-noto-cjk): chart labels will show boxes")
    return None


def _style() -> dict:
    family = cjk_font()
    return {
        "font.family": [family, "DejaVu Sans"] if family else ["DejaVu Sans"],
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.fonttype": "path",
        "axes.unicode_minus": False,
    }


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def volume_chart(daily: list[DayVolume]) -> str:
    with mpl.rc_context(_style()):
        fig = Figure(figsize=(10, 3.2))  # no pyplot: no global backend or figure registry
        ax = fig.subplots()
        days = [d.day[5:] for d in daily]
        ax.bar(days, [d.queries for d in daily], color=BLUE, label="查询量")
        ax.set_ylabel("查询量 / 天")
        share = ax.twinx()
        share.plot(days, [d.non_confident_share * 100 for d in daily], color=ORANGE, marker="o", markersize=3,
                   label="无把握答案占比")
        share.set_ylabel("无把握答案占比 %")
        share.set_ylim(0, max([d.non_confident_share * 100 for d in daily] + [10]) * 1.3)
        share.spines["top"].set_visible(False)
        ax.set_title("每日查询量与无把握答案占比", loc="left")
        step = max(1, len(days) // 16)
        ax.set_xticks(range(0, len(days), step), [days[i] for i in range(0, len(days), step)], rotation=45)
        handles = ax.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
        # Above the plot: inside it the legend hides the first days' bars.
        ax.legend(handles, ["查询量", "无把握答案占比"], loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2,
                  frameon=False)
        return _svg(fig)


def hourly_chart(hourly: list[HourVolume]) -> str:
    with mpl.rc_context(_style()):
        fig = Figure(figsize=(10, 2.6))  # no pyplot: no global backend or figure registry
        ax = fig.subplots()
        ax.bar([h.hour for h in hourly], [h.per_day for h in hourly], color=BLUE)
        ax.set_xticks(range(24), [f"{h}" for h in range(24)])
        ax.set_xlabel("小时（北京时间）")
        ax.set_ylabel("日均查询量")
        ax.set_title("一天中各小时的查询量（日均）")
        return _svg(fig)


def top_queries_chart(groups: list[QueryGroup], limit: int = 20) -> str:
    shown = groups[:limit][::-1]
    with mpl.rc_context(_style()):
        fig = Figure(figsize=(10, 0.28 * len(shown) + 1))  # no pyplot: no global backend or figure registry
        ax = fig.subplots()
        labels = [f"{_short(g.representative)}（{g.n_variants} 种问法）" for g in shown]
        ax.barh(labels, [g.count for g in shown], color=BLUE, label="有把握答案")
        ax.barh(labels, [g.non_confident for g in shown], color=ORANGE, label="无把握答案")
        for y, g in enumerate(shown):
            ax.text(g.count, y, f" {g.count:,}", va="center", fontsize=8)
        ax.set_xlabel("查询量")
        ax.set_title(f"高频查询组 Top {len(shown)}（近似问法已合并）")
        ax.legend(loc="lower right", frameon=False)
        return _svg(fig)


def resolution_chart(articles: list[ArticleStats], overall: float | None, limit: int = 30) -> str:
    """Worst-resolved ranked articles with Wilson 95% intervals as error bars."""
    ranked = [a for a in articles if a.enough_feedback][:limit][::-1]
    with mpl.rc_context(_style()):
        fig = Figure(figsize=(10, 0.3 * len(ranked) + 1.2))  # no pyplot: no global backend or figure registry
        ax = fig.subplots()
        ys = range(len(ranked))
        rates = [a.resolution_rate * 100 for a in ranked]  # type: ignore[operator]
        low = [r - a.ci_low * 100 for r, a in zip(rates, ranked, strict=True)]  # type: ignore[operator]
        high = [a.ci_high * 100 - r for r, a in zip(rates, ranked, strict=True)]  # type: ignore[operator]
        colors = [RED if overall is not None and a.ci_high < overall else BLUE for a in ranked]  # type: ignore[operator]
        ax.errorbar(rates, ys, xerr=[low, high], fmt="none", ecolor=GREY, capsize=3)
        ax.scatter(rates, ys, color=colors, zorder=3, s=18)
        ax.set_yticks(list(ys), [f"{_short(a.title, 26)}（{a.feedback} 票）" for a in ranked])
        if overall is not None:
            ax.axvline(overall * 100, color=ORANGE, linestyle="--", linewidth=1)
            ax.text(overall * 100, len(ranked) - 0.4, f" 整体 {overall:.0%}", color=ORANGE, fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_xlabel("解决率 %（点 = 解决率，横线 = Wilson 95% 区间；红点 = 区间上限低于整体）")
        ax.set_title(f"解决率最低的 {len(ranked)} 篇文章（反馈 ≥ 最小样本）")
        return _svg(fig)


def category_chart(categories: list[CategoryStats]) -> str:
    # Worst at the top, as in the article chart.
    shown = sorted((c for c in categories if c.enough_feedback), key=lambda c: -(c.resolution_rate or 0.0))
    with mpl.rc_context(_style()):
        fig = Figure(figsize=(10, 0.4 * len(shown) + 1))  # no pyplot: no global backend or figure registry
        ax = fig.subplots()
        ys = range(len(shown))
        rates = [c.resolution_rate * 100 for c in shown]  # type: ignore[operator]
        ax.errorbar(rates, ys, fmt="o", color=BLUE, ecolor=GREY, capsize=3, xerr=[
            [r - c.ci_low * 100 for r, c in zip(rates, shown, strict=True)],  # type: ignore[operator]
            [c.ci_high * 100 - r for r, c in zip(rates, shown, strict=True)],  # type: ignore[operator]
        ])
        ax.set_yticks(list(ys), [f"{c.label}（{c.feedback} 票）" for c in shown])
        ax.set_xlim(0, 100)
        ax.set_xlabel("解决率 %（Wilson 95% 区间）")
        ax.set_title("各分类解决率")
        return _svg(fig)


def gaps_chart(gaps: list[GapCluster], limit: int = 15) -> str:
    shown = gaps[:limit][::-1]
    with mpl.rc_context(_style()):
        fig = Figure(figsize=(10, 0.3 * len(shown) + 1))  # no pyplot: no global backend or figure registry
        ax = fig.subplots()
        labels = [f"#{g.rank} {_short(g.label)}" for g in shown]
        ax.barh(labels, [g.queries for g in shown], color=RED)
        for y, g in enumerate(shown):
            ax.text(g.queries, y, f" {g.queries:,}（{g.distinct_phrasings} 种问法）", va="center", fontsize=8)
        ax.set_xlabel("缺口查询数")
        ax.set_title(f"内容缺口主题 Top {len(shown)}")
        return _svg(fig)
