"""`--format json`: the report's `to_dict()` (documented in docs/architecture.md §8)."""

from __future__ import annotations

import json

from promptyard.compare.model import ComparisonReport
from promptyard.compare.reports import report_format


@report_format("json")
def json_report(report: ComparisonReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
