"""Analyst reports over the usage log: what agents ask, which articles help, where content is missing."""

from .build import PeriodError, build_report, make_period, never_shown_articles, parse_when
from .model import Report, ReportOptions, definitions_markdown, metric_definitions
from .stats import wilson_interval

__all__ = [
    "PeriodError",
    "Report",
    "ReportOptions",
    "build_report",
    "definitions_markdown",
    "make_period",
    "metric_definitions",
    "never_shown_articles",
    "parse_when",
    "wilson_interval",
]
