"""One self-contained HTML file: inline CSS and inline SVG charts, no scripts, no network.

Analysts forward the file by mail and open it offline, so nothing may be linked from outside.
Every table says what its numbers count (the definitions are repeated at the end in full).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

from kb_service.reports import charts
from kb_service.reports.data import ArticleStats, Report

CSS = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f5f6f8;color:#222;font-size:14px}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 8px;border-bottom:2px solid #3b6fb6;padding-bottom:4px}
h3{font-size:15px;margin:20px 0 6px}
.meta{color:#555;margin-bottom:16px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px}
.card{background:#fff;border-radius:6px;padding:10px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .v{font-size:22px;font-weight:600}.card .k{color:#555;font-size:12px}
.card.warn .v{color:#c0392b}
.note{color:#555;font-size:12.5px;margin:4px 0 10px;line-height:1.5}
.chart{background:#fff;border-radius:6px;padding:8px;margin:10px 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.chart svg{width:100%;height:auto}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #dde1e6;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#eef1f5;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.flag td{background:#fdf1ef}
table.defs td:first-child{white-space:nowrap;font-weight:600;width:9em}
.muted{color:#888}.small{font-size:12px;color:#555}
.empty{background:#fff3cd;border:1px solid #e0c36b;padding:16px;border-radius:6px;font-size:16px}
details{margin:6px 0}summary{cursor:pointer;color:#3b6fb6}
"""


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _num(value: float | int | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: set[int] | None = None,
           flag: Callable[[int], bool] | None = None) -> str:
    """Rows are pre-escaped HTML cells; numeric columns are right-aligned."""
    numeric = numeric or set()
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = ' class="flag"' if flag and flag(i) else ""
        out.append(f"<tr{cls}>")
        out.extend(f'<td class="n">{cell}</td>' if j in numeric else f"<td>{cell}</td>" for j, cell in enumerate(row))
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _card(key: str, value: str, warn: bool = False) -> str:
    return f'<div class="card{" warn" if warn else ""}"><div class="v">{escape(value)}</div><div class="k">{escape(key)}</div></div>'


def _definition(report: Report, key: str) -> str:
    for d in report.definitions:
        if d.key == key:
            return f"<b>{escape(d.name)}</b>：{escape(d.definition)}"
    return ""


def _notes(report: Report, *keys: str) -> str:
    return '<p class="note">' + "<br>".join(_definition(report, k) for k in keys) + "</p>"


def _chart(svg: str) -> str:
    return f'<div class="chart">{svg}</div>'


def _summary(report: Report) -> str:
    s = report.summary
    ci = f"（{_pct(s.resolution_ci[0])}–{_pct(s.resolution_ci[1])}）" if s.resolution_ci else ""
    cards = [
        _card("查询量", f"{s.queries:,}"),
        _card("查询组（合并近似问法）", f"{s.query_groups:,}"),
        _card("坐席数 / 会话数", f"{s.agents:,} / {s.sessions:,}"),
        _card("无把握答案占比", _pct(s.non_confident_share), warn=(s.non_confident_share or 0) > 0.2),
        _card("无结果占比", _pct(s.no_hit_share)),
        _card("有打开的查询占比", _pct(s.open_share)),
        _card("反馈票数", f"{s.feedback_votes:,}"),
        _card("整体解决率" + ci, _pct(s.resolution_rate)),
        _card("内容缺口查询占比", _pct(s.gap_share), warn=(s.gap_share or 0) > 0.2),
        _card("来自会话的建议", f"{s.conversation_queries:,}"),
        _card("内容有误/已过时标记", f"{s.flags:,}", warn=s.flags > 0),
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def _volume(report: Report) -> str:
    parts = ["<h2 id='volume'>查询量</h2>", _notes(report, "queries", "volume", "non_confident_share")]
    if report.daily:
        parts.append(_chart(charts.volume_chart(report.daily)))
        parts.append(_chart(charts.hourly_chart(report.hourly)))
        rows = [(escape(d.day), _num(d.queries), _num(d.non_confident), _pct(d.non_confident_share)) for d in report.daily]
        parts.append("<details><summary>按日明细</summary>"
                     + _table(["日期", "查询量", "无把握答案", "无把握占比"], rows, {1, 2, 3}) + "</details>")
    return "".join(parts)


def _top_queries(report: Report) -> str:
    parts = ["<h2 id='queries'>高频查询</h2>", _notes(report, "normalised", "query_group", "top_queries")]
    if not report.top_queries:
        return "".join(parts) + '<p class="muted">无</p>'
    parts.append(_chart(charts.top_queries_chart(report.top_queries)))
    rows = []
    for g in report.top_queries:
        variants = "、".join(f"{escape(v.text)}（{v.count:,}）" for v in g.variants[1:])
        more = f' <span class="muted">等 {g.n_variants} 种</span>' if g.n_variants > len(g.variants) else ""
        rows.append((str(g.rank), escape(g.representative), _num(g.count), _pct(g.share, 2),
                     _pct(g.non_confident_share), f'<span class="small">{variants}{more}</span>'))
    parts.append(_table(["#", "问法（最常见）", "查询量", "占比", "无把握占比", "其他问法（次数）"], rows, {0, 2, 3, 4}))
    return "".join(parts)


def _gaps(report: Report) -> str:
    parts = ["<h2 id='gaps'>内容缺口（编辑待办）</h2>", _notes(report, "gap_query", "gap_cluster")]
    if not report.gaps:
        return "".join(parts) + '<p class="muted">时间段内没有缺口查询。</p>'
    if report.gap_method:
        parts.append(f"<p class='small'>主题分组方式：{escape(report.gap_method)}</p>")
    parts.append(_chart(charts.gaps_chart(report.gaps)))
    rows = []
    for g in report.gaps:
        examples = "<br>".join(f"{escape(e.text)}（{e.count:,}）" for e in g.examples)
        shown = "<br>".join(f"{escape(a.title)} <span class='muted'>{escape(a.article_id)}</span>（{a.queries:,}）"
                            for a in g.articles_shown) or '<span class="muted">无结果</span>'
        opened = "<br>".join(f"{escape(a.title)}（{a.queries:,}）" for a in g.articles_opened) or '<span class="muted">无</span>'
        rows.append((str(g.rank), f"<b>{escape(g.label)}</b><br><span class='small'>关键词：{escape('、'.join(g.keywords))}</span>",
                     _num(g.queries), _num(g.non_confident), _num(g.unresolved), _num(g.distinct_phrasings),
                     f'<span class="small">{examples}</span>', f'<span class="small">{shown}</span>',
                     f'<span class="small">{opened}</span>'))
    parts.append(_table(["#", "主题", "缺口查询", "无把握", "未解决", "问法数", "示例问法（次数）", "曾展示的文章（查询数）",
                         "坐席打开的文章（查询数）"],
                        rows, {0, 2, 3, 4, 5}))
    return "".join(parts)


def _article_rows(articles: list[ArticleStats], with_version: bool = False) -> list[tuple]:
    rows = []
    for a in articles:
        name = f"{escape(a.title)}<br><span class='muted small'>{escape(a.article_id)}</span>"
        if not a.in_catalog:
            name += " <span class='small'>（不在目录中）</span>"
        cells = [name, escape(a.category_label)]
        if with_version:
            cells.append("未知" if a.version is None else f"v{a.version}")
        cells += [_num(a.impressions), _num(a.shown_texts), "—" if a.mean_rank is None else f"{a.mean_rank:.2f}",
                  _num(a.open_queries), _pct(a.ctr), _num(a.copies), _num(a.feedback), _num(a.resolved),
                  escape(a.rate_label)]
        rows.append(tuple(cells))
    return rows


ARTICLE_HEADERS = ["文章", "分类", "展示次数", "展示查询（不同问法）", "平均排名", "打开查询", "CTR", "复制次数", "反馈票",
                   "已解决", "解决率（95% 区间）"]


def _articles(report: Report) -> str:
    parts = ["<h2 id='articles'>文章表现</h2>",
             _notes(report, "impressions", "shown_queries", "mean_rank", "open_queries", "ctr", "opens_copies", "feedback", "feedback_rule",
                    "resolution_rate")]
    ranked = [a for a in report.articles if a.enough_feedback]
    if ranked:
        parts.append(_chart(charts.resolution_chart(report.articles, report.summary.resolution_rate)))
    numeric = set(range(2, 10))
    parts.append("<h3>每篇文章（有足够反馈的按解决率从低到高；其余按展示查询数）</h3>"
                 "<p class='note'>粉色底的行 = 常展示但很少被打开（见下一节）。</p>")
    parts.append(_table(ARTICLE_HEADERS, _article_rows(report.articles), numeric,
                        flag=lambda i: report.articles[i].low_ctr))
    parts.append("<h3>常展示但很少被打开</h3>" + _notes(report, "low_ctr"))
    if report.low_ctr:
        parts.append(_table(ARTICLE_HEADERS, _article_rows(report.low_ctr), numeric))
    else:
        parts.append('<p class="muted">无</p>')
    parts.append("<h3>期间从未展示的文章</h3>" + _notes(report, "never_shown"))
    if report.never_shown:
        parts.append(_table(["文章", "ID", "分类"], [(escape(r.title), escape(r.article_id), escape(r.category_label))
                                                   for r in report.never_shown]))
    else:
        parts.append('<p class="muted">无（目录中每篇文章都至少展示过一次，或未提供文章目录）</p>')
    parts.append("<details><summary>按文章版本</summary>"
                 + _table(ARTICLE_HEADERS[:2] + ["版本"] + ARTICLE_HEADERS[2:],
                          _article_rows(report.article_versions, with_version=True), set(range(3, 11)))
                 + "</details>")
    return "".join(parts)


def _categories(report: Report) -> str:
    parts = ["<h2 id='categories'>按分类</h2>", _notes(report, "category")]
    if any(c.enough_feedback for c in report.categories):
        parts.append(_chart(charts.category_chart(report.categories)))
    rows = [(escape(c.label), _num(c.articles_in_catalog), _num(c.articles_shown), _num(c.impressions),
             _num(c.open_queries), _pct(c.ctr), _num(c.feedback), _num(c.resolved), escape(c.rate_label))
            for c in report.categories]
    parts.append(_table(["分类", "目录文章数", "有展示的文章", "展示次数", "打开查询", "CTR", "反馈票", "已解决", "解决率（95% 区间）"],
                        rows, set(range(1, 8))))
    return "".join(parts)


def _flags(report: Report) -> str:
    parts = ["<h2 id='flags'>坐席标记：内容有误/已过时</h2>", _notes(report, "flags")]
    if not report.flags:
        return "".join(parts) + '<p class="muted">时间段内没有标记。</p>'
    rows = []
    for f in report.flags:
        now = "已删除" if f.current_version is None else f"v{f.current_version}"
        comments = "<br>".join(escape(c) for c in f.comments)
        rows.append((f"{escape(f.title)} <span class='muted'>{escape(f.article_id)}</span>", escape(f.reason_label),
                     _num(f.flags), f"v{f.flagged_version}", now, escape(f.latest), f'<span class="small">{comments}</span>'))
    parts.append(_table(["文章", "原因", "标记数", "标记版本", "当前版本", "最近标记", "说明（最近 3 条）"], rows, {2},
                        flag=lambda i: report.flags[i].still_open))
    return "".join(parts)


def _definitions(report: Report) -> str:
    rows = [(escape(d.name), escape(d.definition)) for d in report.definitions]
    return "<h2 id='definitions'>指标定义</h2>" + _table(["指标", "定义"], rows).replace("<table>", "<table class='defs'>", 1)


def render_html(report: Report) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    s = report.summary
    head = (f"<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>知识库使用报告 {escape(report.period_label or report.period.label)}</title><style>{CSS}</style></head><body><main>")
    parts = [head, "<h1>车险客服知识库使用报告</h1>",
             f"<div class='meta'>统计时间段：{escape(report.period_label or report.period.label)}<br>"
             f"生成时间：{escape(report.generated_at)}（北京时间）"]
    if s.first_query_at:
        parts.append(f"　数据范围：{escape(s.first_query_at)} — {escape(s.last_query_at or '')}")
    parts.append("</div>")
    if report.empty:
        parts.append(f"<div class='empty'>{escape(report.message or '所选时间段内没有日志')}</div>")
        if report.flags:
            parts.append(_flags(report))
    else:
        parts.append("<p class='small'>目录：<a href='#volume'>查询量</a> · <a href='#queries'>高频查询</a> · "
                     "<a href='#gaps'>内容缺口</a> · <a href='#flags'>坐席标记</a> · <a href='#articles'>文章表现</a> · "
                     "<a href='#categories'>按分类</a> · <a href='#definitions'>指标定义</a></p>")
        parts += [_summary(report), _volume(report), _top_queries(report), _gaps(report), _flags(report), _articles(report),
                  _categories(report)]
    parts += [_definitions(report), "</main></body></html>"]
    return "".join(parts)
