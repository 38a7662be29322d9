"""Analyst reports over the usage log: what agents ask, which articles help, where content is missing.

Entry points: `build_report` (log → Report dataclasses), `render_html`, `write_csv`,
`report_to_json`, and `run_report_command` (what `kb report` does).
"""

from .build import SECTIONS, PeriodError, build_report, make_period, never_shown_articles, parse_when
from .command import load_article_catalog, run_report_command
from .export import report_to_json, write_csv
from .html import render_html
from .model import EMPTY_MESSAGE, Report, ReportOptions, definitions_markdown, metric_definitions
from .stats import INSUFFICIENT, MIN_FEEDBACK, wilson_interval


def register_report_routes(app, settings=None) -> None:  # type: ignore[no-untyped-def]
    """The API's hook (api.create_app calls it with the app): routes live in kb_service.report_api.

    Imported lazily so `kb report` and the tests of this package do not load FastAPI.
    """
    from ..report_api import register_report_routes as register

    register(app, settings)


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
    "register_report_routes",
    "render_html",
    "report_to_json",
    "run_report_command",
    "wilson_interval",
    "write_csv",
]
