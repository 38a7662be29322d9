"""The analyst workbench: its page, and the drill-down, proposal and review APIs behind it.

`/workbench` serves a static page (static/workbench/) that reads the JSON report API with the
analyst's key: the report sections (`/api/reports/{name}`), and here the rows behind them: a gap
topic's queries, one question's queries, an article's questions and versions, proposed 相似问 and
articles due for review. Adopting a proposal writes an article file, so it is an editor route that
calls the same function as `kb questions adopt`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from kb_service.editorial.adopt import AdoptError
from kb_service.editorial.proposals import find_proposals, load_current_articles
from kb_service.editorial.service import AdoptRequestError, adopt_proposal_or_text
from kb_service.editorial.stale import review_due
from kb_service.masking import mask_personal_data
from kb_service.reports import load_article_catalog
from kb_service.reports.cache import SectionCache
from kb_service.reports.command import report_vector_cache
from kb_service.reports.data import Period
from kb_service.reports.drilldown import article_detail, queries_for_texts
from kb_service.reports.gap_topics import vector_cache_path
from kb_service.settings import Settings
from kb_service.usage_log.store import log_exists
from kb_service.web.deps import ANALYST, EDITOR
from kb_service.web.routers.panel import STATIC_DIR
from kb_service.web.routers.reports import cached_report, parse_period, report_cache, report_embedder
from kb_service.web.schemas import ERROR_RESPONSES

PAGE = STATIC_DIR / "workbench" / "index.html"
SINCE = Query(None, description="first day, YYYY-MM-DD (Beijing time)")
UNTIL = Query(None, description="last day, inclusive, YYYY-MM-DD")

page_router = APIRouter(include_in_schema=False)
analyst_router = APIRouter(tags=["analyst"], dependencies=ANALYST, responses=ERROR_RESPONSES)
editor_router = APIRouter(tags=["editor"], dependencies=EDITOR, responses=ERROR_RESPONSES)


@page_router.get("/workbench")
def workbench_page() -> FileResponse:
    if not PAGE.is_file():
        raise HTTPException(404, "分析工作台未安装（缺少 kb_service/web/static/workbench/index.html）")
    return FileResponse(PAGE, headers={"Cache-Control": "no-cache"})


def _settings(request: Request) -> Settings:
    return request.app.state.settings


@analyst_router.get("/api/workbench/gaps/{rank}/queries", summary="A gap topic's queries: shown, opened, copied, voted")
async def gap_queries(request: Request, rank: int, since: str | None = SINCE, until: str | None = UNTIL,
                      limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
    period = parse_period(since, until)
    report = await run_in_threadpool(cached_report, request, "gaps", period)
    topic = next((g for g in report.gaps if g.rank == rank), None)
    if topic is None:
        raise HTTPException(404, f"该时间段没有第 {rank} 个缺口主题")
    settings = _settings(request)
    rows = await run_in_threadpool(queries_for_texts, settings.log_db, period, topic.members,
                                   load_article_catalog(settings), limit, True)
    return {"topic": {"rank": topic.rank, "label": topic.label, "queries": topic.queries,
                      "phrasings": topic.distinct_phrasings, "keywords": topic.keywords},
            "period": report.period_label or report.period.label, "queries": rows}


@analyst_router.get("/api/workbench/queries", summary="The queries of one normalised question text")
async def text_queries(request: Request, text: str = Query(..., min_length=1, max_length=1000),
                       since: str | None = SINCE, until: str | None = UNTIL,
                       limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
    from kb_service.usage_log.grouping import grouping_form

    period = parse_period(since, until)
    settings = _settings(request)
    normalised = grouping_form(mask_personal_data(text))
    rows = await run_in_threadpool(queries_for_texts, settings.log_db, period, [normalised],
                                   load_article_catalog(settings), limit)
    return {"normalised": normalised, "queries": rows}


@analyst_router.get("/api/workbench/articles/{article_id}", summary="An article's questions and versions in the period")
async def article(request: Request, article_id: str, since: str | None = SINCE, until: str | None = UNTIL) -> dict[str, Any]:
    period = parse_period(since, until)
    settings = _settings(request)
    return await run_in_threadpool(article_detail, settings.log_db, period, article_id, load_article_catalog(settings))


@analyst_router.get("/api/workbench/proposals", summary="相似问 proposed from the log (most-backed first)")
async def proposals(request: Request, since: str | None = SINCE, until: str | None = UNTIL) -> dict[str, Any]:
    period = parse_period(since, until)
    settings = _settings(request)
    if not log_exists(settings.log_db):
        return {"proposals": []}
    key = ("proposals", period.bounds(), SectionCache.log_identity(settings.log_db))
    found = await run_in_threadpool(report_cache(request).get, key, lambda: _proposals(request, period))
    return {"proposals": [p.__dict__ for p in found]}


@analyst_router.get("/api/workbench/stale", summary="Articles past their review_by date")
def stale(request: Request) -> dict[str, Any]:
    due = review_due(_settings(request).articles_dir)
    return {"articles": [{"article_id": d.article_id, "title": d.title, "owner": d.owner, "review_by": d.review_by,
                          "days_overdue": d.days_overdue} for d in due]}


def _proposals(request: Request, period: Period) -> list:
    """Proposals with the serving engine's embedder (follow-ups that mean the same as the gap count)."""
    settings = _settings(request)
    embedder = report_embedder(request)
    folder = report_vector_cache(settings)
    return find_proposals(settings.log_db, period, load_current_articles(settings.articles_dir), embedder=embedder,
                          vector_cache=vector_cache_path(folder, embedder) if folder and embedder is not None else None)


class AdoptIn(BaseModel):
    proposal_id: str | None = Field(None, max_length=40, description="an id from /api/workbench/proposals")
    question: str | None = Field(None, max_length=200, description="or a question text an editor assigns")
    article_id: str | None = Field(None, max_length=200)
    section: str | None = Field(None, max_length=200)
    since: str | None = None
    until: str | None = None


@editor_router.post("/api/workbench/proposals/adopt", summary="Adopt a 相似问 into the article's front matter")
async def adopt(request: Request, body: AdoptIn) -> dict[str, Any]:
    what = body.proposal_id or body.question
    if not what:
        raise HTTPException(422, "需要 proposal_id 或 question")
    settings = _settings(request)
    period = parse_period(body.since, body.until)
    found = []
    if (body.proposal_id or not body.section) and log_exists(settings.log_db):
        found = await run_in_threadpool(_proposals, request, period)
    try:
        result = await run_in_threadpool(adopt_proposal_or_text, settings.articles_dir, found, what,
                                         body.article_id, body.section)
    except (AdoptError, AdoptRequestError) as exc:
        raise HTTPException(422, str(exc)) from exc
    report_cache(request).forget(lambda key: isinstance(key, tuple) and key[0] == "proposals")
    return {"article_id": result.article_id, "section": result.section, "question": result.question,
            "added": result.added, "version": result.version, "file": result.path.name, "diff": result.diff}


router = APIRouter()
for _part in (page_router, analyst_router, editor_router):
    router.include_router(_part)
