"""Analyst reports over the usage log: what agents ask, which articles help, where content is missing.

Entry points: `build_report` (log → Report dataclasses), `render_html`, `write_csv`,
`report_to_json`, and `run_report_command` (what `kb report` does).
"""

from kb_service.reports.build import (
    SECTIONS,
    PeriodError,
    build_report,
    make_period,
    never_shown_articles,
    parse_when,
)
from kb_service.reports.command import load_article_catalog, run_report_command
from kb_service.reports.data import (
    EMPTY_MESSAGE,
    Report,
    ReportOptions,
    definitions_markdown,
    metric_definitions,
)
from kb_service.reports.export import report_to_json, write_csv
from kb_service.reports.html import render_html
from kb_service.reports.stats import INSUFFICIENT, MIN_FEEDBACK, wilson_interval

__all__ = [
    "EMPTY_MESSAGE",
    "INSUFFICIENT",
    "MIN_FEEDBACK",
    "SECTIONS",
    "PeriodError",
    "Report",
    "ReportOptions",
    "build_report",
    "definitions_markdown",
    "load_article_catalog",
    "make_period",
    "metric_definitions",
    "never_shown_articles",
    "parse_when",
    "render_html",
    "report_to_json",
    "run_report_command",
    "wilson_interval",
    "write_csv",
]
