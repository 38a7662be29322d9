"""Assemble a Report from the usage log: SQL aggregates in, plain dataclasses out.

Sections can be built on their own (the analyst API asks for one at a time) and `build_report`
composes all of them over a single read of the period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from kb_service.models import CATEGORIES
from kb_service.reports import textsim
from kb_service.reports.data import (
    EMPTY_MESSAGE,
    REPORT_TZ,
    UNKNOWN_CATEGORY,
    ArticleRef,
    ArticleStats,
    CategoryStats,
    DayVolume,
    HourVolume,
    MetricDefinition,
    Period,
    QueryGroup,
    QueryVariant,
    Report,
    ReportOptions,
    Summary,
    metric_definitions,
)
from kb_service.reports.flags import flag_groups
from kb_service.reports.gap_section import gap_clusters
from kb_service.reports.neardup_cache import near_duplicate_cache
from kb_service.reports.postgres_reader import PgLogReader
from kb_service.reports.source import LogUnavailable, open_log_reader
from kb_service.reports.sqlite_reader import LogReader
from kb_service.reports.stats import enough_feedback, format_rate, rate, wilson_interval

Catalog = Mapping[str, Mapping[str, Any]]
Reader = LogReader | PgLogReader  # the same rows from SQLite or PostgreSQL
SECTIONS = ("frequency", "articles", "gaps", "flags")


class PeriodError(ValueError):
    """A --since/--until value that is not a date or date-time."""


def parse_when(value: str | dt.date | dt.datetime | None, *, end: bool = False) -> dt.datetime | None:
    """A period bound in UTC+8. A bare date means that whole day: as an end bound, the next midnight."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value + dt.timedelta(days=1 if end else 0), dt.time())
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                return parse_when(dt.date.fromisoformat(text), end=end)
            moment = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise PeriodError(f"not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM): {value!r}") from exc
    return moment.replace(tzinfo=REPORT_TZ) if moment.tzinfo is None else moment.astimezone(REPORT_TZ)


def make_period(since: str | dt.date | dt.datetime | None, until: str | dt.date | dt.datetime | None) -> Period:
    period = Period(parse_when(since), parse_when(until, end=True))
    if period.since and period.until and period.since >= period.until:
        raise PeriodError(f"since ({period.since:%Y-%m-%d %H:%M}) must be before until ({period.until:%Y-%m-%d %H:%M})")
    return period


def _local(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, REPORT_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _category_label(category: str) -> str:
    return CATEGORIES.get(category, "未分类" if category == UNKNOWN_CATEGORY else category)


def _catalog_entry(catalog: Catalog, article_id: str) -> tuple[str, str, bool]:
    entry = catalog.get(article_id)
    if entry is None:
        return article_id, UNKNOWN_CATEGORY, False
    return str(entry.get("title") or article_id), str(entry.get("category") or UNKNOWN_CATEGORY), True


# --- frequency --------------------------------------------------------------------------------


def _query_groups(
    text_counts: list[tuple[str, str, int, int]], total: int, options: ReportOptions,
    edge_source: textsim.EdgeSource | None = None,
) -> tuple[list[QueryGroup], int]:
    """Top query groups and how many groups there are in all."""
    per_norm: dict[str, list[int]] = {}
    display: dict[str, tuple[int, str]] = {}
    for normalised, masked, count, non_confident in text_counts:
        slot = per_norm.setdefault(normalised, [0, 0])
        slot[0] += count
        slot[1] += non_confident or 0
        best = display.get(normalised)
        # The most frequent masked spelling stands for the normalised form (ties: shortest, then text).
        if best is None or (count, -len(masked), masked) > (best[0], -len(best[1]), best[1]):
            display[normalised] = (count, masked)
    groups = textsim.group_near_duplicates(((norm, slot[0]) for norm, slot in per_norm.items()), edge_source=edge_source)
    result: list[QueryGroup] = []
    for members in groups[: options.top_queries]:
        count = sum(c for _, c in members)
        non_conf = sum(per_norm[n][1] for n, _ in members)
        variants = [QueryVariant(display[n][1], n, c) for n, c in members[: options.variants_per_group]]
        result.append(
            QueryGroup(
                rank=len(result) + 1,
                representative=display[members[0][0]][1],
                count=count,
                share=count / total if total else 0.0,
                non_confident=non_conf,
                non_confident_share=non_conf / count if count else 0.0,
                n_variants=len(members),
                variants=variants,
            )
        )
    return result, len(groups)


def _frequency(reader: Reader, summary: Summary, options: ReportOptions,
               edge_source: textsim.EdgeSource | None = None) -> dict[str, Any]:
    total = summary.queries
    top, n_groups = _query_groups(reader.text_counts(), total, options, edge_source)
    summary.query_groups = n_groups
    daily = [
        DayVolume(
            day=(dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat(),
            queries=n,
            non_confident=nc or 0,
            non_confident_share=(nc or 0) / n if n else 0.0,
        )
        for d, n, nc in reader.daily()
    ]
    summary.days_with_queries = len(daily)
    by_hour = {h: (n, nc or 0) for h, n, nc in reader.hourly()}
    days = max(len(daily), 1)
    hourly = [
        HourVolume(h, by_hour.get(h, (0, 0))[0], by_hour.get(h, (0, 0))[1],
                   by_hour[h][1] / by_hour[h][0] if by_hour.get(h, (0, 0))[0] else 0.0,
                   by_hour.get(h, (0, 0))[0] / days)
        for h in range(24)
    ]
    return {"top_queries": top, "daily": daily, "hourly": hourly}


# --- articles ---------------------------------------------------------------------------------


def _article_stats(
    article_id: str, version: int | None, catalog: Catalog, counts: dict[str, int], options: ReportOptions
) -> ArticleStats:
    title, category, in_catalog = _catalog_entry(catalog, article_id)
    fb, res = counts["feedback"], counts["resolved"]
    enough = enough_feedback(fb, options.min_feedback)
    interval = wilson_interval(res, fb) if enough else None
    return ArticleStats(
        article_id=article_id,
        title=title,
        category=category,
        category_label=_category_label(category),
        version=version,
        in_catalog=in_catalog,
        impressions=counts["impressions"],
        shown_queries=counts["shown_queries"],
        shown_texts=counts.get("shown_texts", 0),
        mean_rank=counts["rank_sum"] / counts["impressions"] if counts["impressions"] else None,
        opens=counts["opens"],
        open_queries=counts["open_queries"],
        copies=counts["copies"],
        copy_queries=counts["copy_queries"],
        ctr=rate(counts["open_queries"], counts["shown_queries"]),
        feedback=fb,
        resolved=res,
        unresolved=fb - res,
        resolution_rate=res / fb if enough else None,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        enough_feedback=enough,
        rate_label=format_rate(res, fb, options.min_feedback),
    )


def _rank_key(a: ArticleStats) -> tuple:
    """Ranked articles first, worst resolution first (what an editor fixes); the rest by exposure."""
    if a.enough_feedback:
        return (0, a.resolution_rate, -a.feedback, a.article_id, a.version or 0)
    return (1, -a.shown_queries, a.article_id, a.version or 0)


def never_shown_articles(all_article_ids: Iterable[str], articles: Iterable[ArticleStats],
                         catalog: Catalog | None = None) -> list[ArticleRef]:
    """Articles of the catalog (or any id list) that no query in the period showed."""
    shown = {a.article_id for a in articles if a.impressions > 0}
    catalog = catalog or {}
    refs = []
    for article_id in sorted(set(all_article_ids) - shown):
        title, category, _ = _catalog_entry(catalog, article_id)
        refs.append(ArticleRef(article_id, title, category, _category_label(category)))
    return refs


def _articles(reader: Reader, catalog: Catalog, options: ReportOptions,
              all_article_ids: Iterable[str] | None) -> dict[str, Any]:
    keys = ("impressions", "shown_queries", "rank_sum", "open_queries", "copy_queries", "opens", "copies",
            "feedback", "resolved")
    per_article: dict[str, dict[str, int]] = {}
    versions: list[ArticleStats] = []
    for row in reader.article_versions():
        counts = {k: getattr(row, k) for k in keys}
        counts["shown_texts"] = row.shown_texts
        versions.append(_article_stats(row.article_id, row.version, catalog, counts, options))
        total = per_article.setdefault(row.article_id, dict.fromkeys(keys, 0))
        for k in keys:
            total[k] += counts[k]
    texts = reader.article_texts()
    for article_id, total in per_article.items():
        total["shown_texts"] = texts.get(article_id, 0)
    articles = [_article_stats(a, None, catalog, c, options) for a, c in per_article.items()]
    shown_total = sum(a.shown_queries for a in articles)
    overall_ctr = sum(a.open_queries for a in articles) / shown_total if shown_total else 0.0
    low_ctr = []
    for a in articles:
        if a.shown_queries >= options.low_ctr_min_shown and (a.ctr or 0.0) < options.low_ctr_factor * overall_ctr:
            a.low_ctr = True
            low_ctr.append(a)
    low_ctr.sort(key=lambda a: (-a.shown_queries, a.article_id))
    articles.sort(key=_rank_key)
    versions.sort(key=lambda a: (a.article_id, a.version is None, a.version or 0))
    ids = list(catalog) if all_article_ids is None else list(all_article_ids)
    return {
        "articles": articles,
        "article_versions": versions,
        "low_ctr": low_ctr,
        "never_shown": never_shown_articles(ids, articles, catalog),
        "categories": _categories(articles, catalog, options),
    }


def _categories(articles: list[ArticleStats], catalog: Catalog, options: ReportOptions) -> list[CategoryStats]:
    in_catalog: dict[str, int] = {}
    for entry in catalog.values():
        category = str(entry.get("category") or UNKNOWN_CATEGORY)
        in_catalog[category] = in_catalog.get(category, 0) + 1
    sums: dict[str, dict[str, int]] = {}
    for a in articles:
        s = sums.setdefault(a.category, dict.fromkeys(("shown", "imp", "sq", "oq", "fb", "res"), 0))
        s["shown"] += a.impressions > 0
        s["imp"] += a.impressions
        s["sq"] += a.shown_queries
        s["oq"] += a.open_queries
        s["fb"] += a.feedback
        s["res"] += a.resolved
    result = []
    for category in sorted(set(in_catalog) | set(sums), key=lambda c: (c == UNKNOWN_CATEGORY, c)):
        s = sums.get(category, dict.fromkeys(("shown", "imp", "sq", "oq", "fb", "res"), 0))
        enough = enough_feedback(s["fb"], options.min_feedback)
        interval = wilson_interval(s["res"], s["fb"]) if enough else None
        result.append(
            CategoryStats(
                category=category,
                label=_category_label(category),
                articles_in_catalog=in_catalog.get(category, 0),
                articles_shown=s["shown"],
                impressions=s["imp"],
                shown_queries=s["sq"],
                open_queries=s["oq"],
                ctr=rate(s["oq"], s["sq"]),
                feedback=s["fb"],
                resolved=s["res"],
                resolution_rate=s["res"] / s["fb"] if enough else None,
                ci_low=interval[0] if interval else None,
                ci_high=interval[1] if interval else None,
                enough_feedback=enough,
                rate_label=format_rate(s["res"], s["fb"], options.min_feedback),
            )
        )
    return result


# --- the report -------------------------------------------------------------------------------


def _summary(reader: Reader) -> Summary:
    t = reader.totals()
    n = int(t["queries"] or 0)
    s = Summary(queries=n, distinct_queries=int(t["distinct"] or 0), agents=int(t["agents"] or 0),
                sessions=int(t["sessions"] or 0), non_confident=int(t["non_confident"] or 0),
                no_hit_queries=int(t["no_hits"] or 0), conversation_queries=int(t["conversation"] or 0),
                first_query_at=_local(t["first_ts"]),
                last_query_at=_local(t["last_ts"]))
    s.non_confident_share = rate(s.non_confident, n)
    s.no_hit_share = rate(s.no_hit_queries, n)
    return s


def _empty_report(period: Period, options: ReportOptions, message: str) -> Report:
    return Report(period=period, generated_at=_now(), options=options, empty=True, message=message,
                  summary=Summary(), definitions=metric_definitions(options))


def _now() -> str:
    return dt.datetime.now(REPORT_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _add_feedback(reader: Reader, summary: Summary) -> None:
    votes, resolved, opened = reader.feedback_totals()
    summary.feedback_votes, summary.resolved_votes, summary.queries_with_open = votes, resolved, opened
    summary.open_share = rate(opened, summary.queries)
    summary.resolution_rate = rate(resolved, votes)
    summary.resolution_ci = wilson_interval(resolved, votes)


def build_report(
    db_path: Path | str,  # a SQLite file or a postgresql:// URL
    since: str | dt.date | dt.datetime | Period | None = None,
    until: str | dt.date | dt.datetime | None = None,
    article_catalog: Catalog | None = None,
    *,
    all_article_ids: Iterable[str] | None = None,
    options: ReportOptions | None = None,
    sections: Iterable[str] = SECTIONS,
    embedder: Any = None,
    lexicon: Any = None,
    vector_cache_dir: Path | None = None,
) -> Report:
    """Everything an analyst reads about one period; an empty period gives a report that says so.

    `article_catalog` maps article id → {title, category} (titles, categories, never-shown list);
    `all_article_ids` overrides the id list used for "never shown" when no catalog is at hand.
    `embedder` (the search engine's) and `lexicon` group gap topics by meaning; without an
    embedder they fall back to character bigrams (report.gap_method says which); their vectors are
    kept in `vector_cache_dir` (one SQLite file per embedder) when given.
    """
    options = options or ReportOptions()
    wanted = set(sections)
    unknown = wanted - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown report sections {sorted(unknown)}; expected {SECTIONS}")
    period = since if isinstance(since, Period) else make_period(since, until)  # Period: already parsed
    catalog: Catalog = article_catalog or {}
    try:
        reader = open_log_reader(db_path, *period.bounds())  # a SQLite file or a postgresql:// URL
    except LogUnavailable as exc:
        return _empty_report(period, options, f"{EMPTY_MESSAGE}（{exc}）")
    with reader:
        summary = _summary(reader)
        if summary.queries == 0:
            empty = _empty_report(period, options, EMPTY_MESSAGE)
            if "flags" in wanted:  # agents' flags stand on their own: editors need them even then
                empty.flags = flag_groups(reader, catalog)
                empty.summary.flags = sum(f.flags for f in empty.flags)
            return empty
        report = Report(period=period, generated_at=_now(), options=options, empty=False, message=None,
                        summary=summary, definitions=metric_definitions(options),
                        period_label=period.label_with_data(summary.first_query_at, summary.last_query_at))
        _add_feedback(reader, summary)
        if "frequency" in wanted:
            for name, value in _frequency(reader, summary, options, near_duplicate_cache(vector_cache_dir)).items():
                setattr(report, name, value)
        if "articles" in wanted:
            for name, value in _articles(reader, catalog, options, all_article_ids).items():
                setattr(report, name, value)
        if "gaps" in wanted:
            report.gaps, summary.gap_queries, report.gap_method = gap_clusters(
                reader, catalog, options, embedder, lexicon, vector_cache_dir)
            summary.gap_share = rate(summary.gap_queries, summary.queries)
        if "flags" in wanted:
            report.flags = flag_groups(reader, catalog)
            summary.flags = sum(f.flags for f in report.flags)
    return report


def definitions_for(report: Report, keys: Iterable[str]) -> list[MetricDefinition]:
    wanted = set(keys)
    return [replace(d) for d in report.definitions if d.key in wanted]
