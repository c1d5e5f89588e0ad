"""The merge gate: base vs head, paired, with statistics, gates, flips and reports.

- `detect_changes(workspace, base, head=None, names=())` (`changes`): which prompts changed
  (resolved content hash, partials included), were added or removed, and which datasets
  changed (case ids added, removed, modified);
- `run_diff(workspace, base, head=None, names=(), options=EvalOptions(...))` (`diff`): run
  base and head of every changed prompt on the head's cases in one eval-engine call and
  return a `ComparisonReport`;
- `run_check(workspace, base=None, options=...)` (`check`): lint + `run_diff` (or, without
  a base, every prompt against its thresholds) -> `CheckResult` with one decision;
- `compare_models(workspace, names=(), models=(), options=...)` (`models`): each prompt on
  its own model and on other models, the same cases, paired; the prompt's model is the
  base, each other model a head;
- `render(report, "text" | "markdown" | "json" | "html")` (`reports`);
- the pieces: `paired` (jobs and per-case folding), `metrics` (statistics per metric),
  `gates` (the gate registry `GATES`), `rule_changes` (a head that edits `gates:` or the
  evals it is graded by), `flips` (pass↔fail cases with word diffs), `model` (the data
  classes).

With a base, the BASE's `gates:` judge the change: the head's promptyard.yaml is part of
what is under review.
"""

from __future__ import annotations

from promptyard.compare.changes import ChangeSet, PromptChange, all_prompts, detect_changes
from promptyard.compare.check import CheckResult, run_check
from promptyard.compare.diff import compare_changes, run_diff
from promptyard.compare.gates import GATES
from promptyard.compare.model import (
    ComparisonReport,
    DatasetChange,
    EvalComparison,
    Flip,
    GateResult,
    MetricResult,
    PromptComparison,
)
from promptyard.compare.models import compare_models
from promptyard.compare.reports import REPORT_FORMATS, render

__all__ = [
    "GATES",
    "REPORT_FORMATS",
    "ChangeSet",
    "CheckResult",
    "ComparisonReport",
    "DatasetChange",
    "EvalComparison",
    "Flip",
    "GateResult",
    "MetricResult",
    "PromptChange",
    "PromptComparison",
    "all_prompts",
    "compare_changes",
    "compare_models",
    "detect_changes",
    "render",
    "run_check",
    "run_diff",
]
