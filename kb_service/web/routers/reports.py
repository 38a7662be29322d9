"""Analyst report routes: GET /api/reports/{frequency|articles|gaps}?since=&until= (JSON).

Each request builds only the section asked for, straight from the SQLite log (read-only), so
an analyst's dashboard never waits for the parts it does not show. Access is the analyst role;
the role check runs before anything else, so an unauthenticated caller learns nothing, not even
which report names exist.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from kb_service.reports import (
    SECTIONS,
    PeriodError,
    build_report,
    load_article_catalog,
    make_period,
    report_to_json,
)
from kb_service.reports.cache import SectionCache
from kb_service.reports.command import load_report_lexicon, report_vector_cache
from kb_service.reports.data import Period, Report
from kb_service.settings import Settings
from kb_service.web.deps import ANALYST
from kb_service.web.schemas import ERROR_RESPONSES

router = APIRouter(tags=["analyst"], dependencies=ANALYST)


def report_embedder(request: Request) -> Any:
    """The serving engine's embedder (gap topics by meaning); None when the app has no engine."""
    return getattr(getattr(request.app.state, "engine", None), "embedder", None)


@router.get(
    "/api/reports/{name}",
    responses={**ERROR_RESPONSES, 404: {"description": "unknown report name"}},
    summary="Usage report section as JSON (frequency, articles or gaps)",
)
def report(
    request: Request,
    name: str,
    since: str | None = Query(None, description="first day, YYYY-MM-DD (Beijing time), or a date-time"),
    until: str | None = Query(None, description="last day, inclusive, YYYY-MM-DD, or an exclusive date-time"),
) -> dict[str, Any]:
    if name not in SECTIONS:
        raise HTTPException(404, f"没有这个报表：{name}（可用：{', '.join(SECTIONS)}）")
    period = parse_period(since, until)
    return report_to_json(cached_report(request, name, period), sections=[name])


def parse_period(since: str | None, until: str | None) -> Period:
    """A period from query parameters, or a 422 whose message says what was wrong."""
    try:
        return make_period(since, until)
    except PeriodError as exc:
        raise HTTPException(422, f"日期格式有误：{exc}") from exc
    except (OverflowError, ValueError) as exc:  # e.g. until=9999-12-31: the day after does not exist
        raise HTTPException(422, f"日期超出可用范围（0001-01-02 至 9999-12-30）：since={since!r} until={until!r}") from exc


def report_cache(request: Request) -> SectionCache:
    """The app's cache of built sections (created on first use, one per app)."""
    cache = getattr(request.app.state, "report_cache", None)
    if cache is None:
        cache = request.app.state.report_cache = SectionCache(request.app.state.settings.report_cache_seconds)
    return cache


def cached_report(request: Request, name: str, period: Period) -> Report:
    """One section for the period, built once per report_cache_seconds (see reports/cache.py)."""
    settings: Settings = request.app.state.settings
    cache = report_cache(request)

    def build() -> Report:
        try:
            return build_report(settings.log_db, period, article_catalog=load_article_catalog(settings),
                                sections=[name], embedder=report_embedder(request),
                                lexicon=load_report_lexicon(settings) if name == "gaps" else None,
                                vector_cache_dir=report_vector_cache(settings))
        except OverflowError as exc:  # a bound that parses but cannot become a timestamp
            raise HTTPException(422, f"日期超出可用范围：{period.label}") from exc

    return cache.get((name, period.bounds(), SectionCache.log_identity(settings.log_db)), build)
