"""Machine-readable forms of a report: JSON (API, notebooks) and one CSV per table (Excel)."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kb_service.reports.data import Report

# Which report fields make up each API section.
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "frequency": ("top_queries", "daily", "hourly"),
    "articles": ("articles", "article_versions", "low_ctr", "never_shown", "categories"),
    "gaps": ("gaps", "gap_method"),
    "flags": ("flags",),
}
SECTION_DEFINITIONS: dict[str, tuple[str, ...]] = {
    "frequency": ("period", "queries", "normalised", "query_group", "top_queries", "non_confident_share",
                  "no_hit_share", "volume"),
    "articles": ("period", "impressions", "shown_queries", "mean_rank", "open_queries", "ctr", "opens_copies", "feedback",
                 "feedback_rule", "resolution_rate", "never_shown", "low_ctr", "category"),
    "gaps": ("period", "gap_query", "gap_cluster"),
    "flags": ("period", "flags"),
}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def report_to_json(report: Report, sections: Iterable[str] | None = None) -> dict[str, Any]:
    """JSON-ready dict; with `sections`, only those parts (plus period, summary and their definitions)."""
    period = {
        "since": report.period.since.isoformat() if report.period.since else None,
        "until": report.period.until.isoformat() if report.period.until else None,
        "label": report.period_label or report.period.label,
    }
    base: dict[str, Any] = {
        "period": period,
        "generated_at": report.generated_at,
        "empty": report.empty,
        "message": report.message,
        "summary": _plain(report.summary),
        "options": _plain(report.options),
    }
    if sections is None:
        names = [f.name for f in dataclasses.fields(report) if f.name not in {"period", "summary", "options"}]
        base.update({name: _plain(getattr(report, name)) for name in names if name not in base})
        return base
    keys: list[str] = []
    for section in sections:
        for name in SECTION_FIELDS[section]:
            base[name] = _plain(getattr(report, name))
        keys += SECTION_DEFINITIONS[section]
    base["definitions"] = [_plain(d) for d in report.definitions if d.key in set(keys)]
    return base


def _write(path: Path, header: list[str], rows: Iterable[Iterable[Any]]) -> Path:
    # utf-8-sig: Excel on a Chinese Windows desktop only detects UTF-8 with the BOM.
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


def _rows(items: list[Any], fields: list[str]) -> list[list[Any]]:
    return [[getattr(item, f) for f in fields] for item in items]


ARTICLE_FIELDS = ["article_id", "title", "category", "category_label", "version", "in_catalog", "impressions",
                  "shown_queries", "shown_texts", "mean_rank", "opens", "open_queries", "copies", "copy_queries", "ctr", "feedback",
                  "resolved", "unresolved", "resolution_rate", "ci_low", "ci_high", "enough_feedback", "rate_label",
                  "low_ctr"]


def write_csv(report: Report, out_dir: Path | str) -> list[Path]:
    """One CSV per table in out_dir (created if missing); returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = _plain(report.summary)
    written = [
        _write(out / "summary.csv", ["metric", "value"],
               [["period", report.period_label or report.period.label], ["generated_at", report.generated_at],
                ["message", report.message or ""], *[[k, v] for k, v in summary.items()]]),
        _write(out / "top_queries.csv",
               ["rank", "representative", "count", "share", "non_confident", "non_confident_share", "n_variants",
                "variants"],
               [[g.rank, g.representative, g.count, g.share, g.non_confident, g.non_confident_share, g.n_variants,
                 " | ".join(f"{v.text} ({v.count})" for v in g.variants)] for g in report.top_queries]),
        _write(out / "daily_volume.csv", ["day", "queries", "non_confident", "non_confident_share"],
               _rows(report.daily, ["day", "queries", "non_confident", "non_confident_share"])),
        _write(out / "hourly_volume.csv", ["hour", "queries", "non_confident", "non_confident_share", "per_day"],
               _rows(report.hourly, ["hour", "queries", "non_confident", "non_confident_share", "per_day"])),
        _write(out / "articles.csv", ARTICLE_FIELDS, _rows(report.articles, ARTICLE_FIELDS)),
        _write(out / "article_versions.csv", ARTICLE_FIELDS, _rows(report.article_versions, ARTICLE_FIELDS)),
        _write(out / "low_ctr_articles.csv", ARTICLE_FIELDS, _rows(report.low_ctr, ARTICLE_FIELDS)),
        _write(out / "never_shown_articles.csv", ["article_id", "title", "category", "category_label"],
               _rows(report.never_shown, ["article_id", "title", "category", "category_label"])),
        _write(out / "categories.csv",
               [f.name for f in dataclasses.fields(report.categories[0])] if report.categories else ["category"],
               [list(_plain(c).values()) for c in report.categories]),
        _write(out / "gaps.csv",
               ["rank", "label", "keywords", "queries", "non_confident", "unresolved", "distinct_phrasings",
                "examples", "articles_shown", "articles_opened"],
               [[g.rank, g.label, " | ".join(g.keywords), g.queries, g.non_confident, g.unresolved,
                 g.distinct_phrasings, " | ".join(f"{e.text} ({e.count})" for e in g.examples),
                 " | ".join(f"{a.article_id} ({a.queries})" for a in g.articles_shown),
                 " | ".join(f"{a.article_id} ({a.queries})" for a in g.articles_opened)] for g in report.gaps]),
        _write(out / "flags.csv",
               ["article_id", "title", "reason", "reason_label", "flags", "flagged_version", "current_version", "latest",
                "comments"],
               [[f.article_id, f.title, f.reason, f.reason_label, f.flags, f.flagged_version, f.current_version,
                 f.latest, " | ".join(f.comments)] for f in report.flags]),
        _write(out / "definitions.csv", ["key", "name", "definition"],
               _rows(report.definitions, ["key", "name", "definition"])),
    ]
    return written
