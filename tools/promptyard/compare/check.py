"""`promptyard check`: the pull-request gate — lint, evals, diff and gates, one decision.

With a base: lint what the change touches (plus the semver rules), run every changed
prompt in both versions on the same cases and judge them by the gates, judge added prompts
and prompts whose dataset changed by their thresholds, and report removed prompts and
changed datasets. Without a base: lint everything and judge every prompt by its thresholds.
A lint error blocks; otherwise the decision is the worst gate outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptyard.compare.changes import all_prompts, detect_changes
from promptyard.compare.diff import compare_changes
from promptyard.compare.model import ComparisonReport, Outcome
from promptyard.evals.runner import EvalOptions
from promptyard.evals.slicing import CaseSelection
from promptyard.lint import LintResult, lint_repository
from promptyard.repo.workspace import Workspace


@dataclass
class CheckResult:
    """The gate's report and the lint result behind its lint section (for annotations)."""

    report: ComparisonReport
    lint: LintResult

    @property
    def decision(self) -> Outcome:
        return self.report.decision

    @property
    def ok(self) -> bool:
        """Nothing blocks (warnings do not fail the check)."""
        return self.decision != "block"


def run_check(
    workspace: Workspace,
    base: str | None = None,
    *,
    options: EvalOptions,
    selection: CaseSelection | None = None,
) -> CheckResult:
    """Run the merge gate on the working tree (against the merge base with `base`, if given),
    on the cases `selection` names when given (the report then says it judged a slice).

    Raises RefError (exit 2) for an unknown base ref, ConfigError (exit 2) for a config
    that does not load, InfraError (exit 3) when a provider cannot be reached.
    """
    lint = lint_repository(workspace, (), base)
    changes = detect_changes(workspace, base) if base is not None else all_prompts(workspace)
    report = compare_changes(changes, options=options, command="check", selection=selection)
    report.lint = lint
    return CheckResult(report, lint)
