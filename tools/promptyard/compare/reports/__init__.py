"""Report formats of a `ComparisonReport`, one module each, registered by name.

`render(report, "markdown")` returns the text; `REPORT_FORMATS` lists them: `text` (a
terminal), `markdown` (the pull-request comment, under GitHub's 65,536-character limit),
`json` (stable, for machines) and `html` (one self-contained file).
"""

from __future__ import annotations

from collections.abc import Callable

from promptyard.compare.model import ComparisonReport
from promptyard.plugins import NamedRegistry

ReportFormat = Callable[[ComparisonReport], str]
REPORT_FORMATS: NamedRegistry[ReportFormat] = NamedRegistry("report format")
report_format = REPORT_FORMATS.register  # register a report format under a name


def render(report: ComparisonReport, fmt: str) -> str:
    """The report in format `fmt` (a key of REPORT_FORMATS)."""
    return REPORT_FORMATS[fmt](report)


from promptyard.compare.reports import html, json_report, markdown, text  # noqa: E402, F401  (register)

__all__ = ["REPORT_FORMATS", "render", "report_format"]
