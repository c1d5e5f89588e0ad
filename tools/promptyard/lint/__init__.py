"""Lint: rules (one small function each, with a code) and output formats."""

from promptyard.codes import RULES, Finding
from promptyard.lint.registry import rule_table
from promptyard.lint.runner import (
    LintResult,
    cluster_findings,
    findings_at,
    lint_repository,
)

__all__ = [
    "RULES",
    "Finding",
    "LintResult",
    "cluster_findings",
    "findings_at",
    "lint_repository",
    "rule_table",
]
