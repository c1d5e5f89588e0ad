"""The merge gate's result: plain data that every report format renders.

`ComparisonReport` -> `PromptComparison` (one per prompt that changed, was added, removed,
or is checked) -> `EvalComparison` (one per eval of that prompt: base vs head on the head's
cases) holding `MetricResult`s, `GateResult`s and `Flip`s. `to_dict()` gives the stable
JSON of `promptyard diff --format json` (documented in docs/architecture.md §8).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from promptyard.evals.slicing import CaseSelection, Slice
    from promptyard.lint import LintResult

Outcome = Literal["pass", "warn", "block"]
OUTCOME_ORDER: dict[str, int] = {"pass": 0, "warn": 1, "block": 2}

# How a prompt relates to the base:
# changed          its resolved content hash differs: base and head run on the same cases
# added            new in head: judged by its eval thresholds
# removed          gone from head: reported, nothing to run
# unchanged        touched by the change (a file or partial) but the content hash is equal
# dataset-changed  same content, a dataset it uses changed: judged by its thresholds
# invalid          the head spec does not load (lint says why): blocks
# checked          no base given: every prompt is judged by its thresholds
# compared         a model comparison: the prompt on another model (head) vs its own (base)
Status = Literal[
    "changed", "added", "removed", "unchanged", "dataset-changed", "invalid", "checked",
    "compared",
]  # fmt: skip


Unit = Literal["rate", "score", "ms", "usd"]


def worst(outcomes: Sequence[Outcome]) -> Outcome:
    """The most severe outcome (pass < warn < block); pass for none."""
    result: Outcome = "pass"
    for outcome in outcomes:
        if OUTCOME_ORDER[outcome] > OUTCOME_ORDER[result]:
            result = outcome
    return result


def _num(value: float | None) -> float | None:
    """JSON-safe: NaN and infinities become None."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class MetricResult:
    """One metric of one eval: base, head, head − base, its 95% interval, p-value, test.

    `direction` says which way is better ("higher" for pass rate and scores, "lower" for
    errors, latency and cost); `ratio` (head / base) is set for latency and cost; `n` is the
    number of paired cases (or head cases when there is no base). `p_value` is two-sided
    (with the two-sided `ci95`); `p_regression` is the one-sided p-value of the regression
    direction (head worse than base), which `require_significance` decides with.
    """

    name: str
    label: str
    unit: Unit
    direction: Literal["higher", "lower"]
    base: float | None
    head: float | None
    delta: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    test: str
    n: int
    ratio: float | None = None
    p_regression: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "base": _num(self.base),
            "head": _num(self.head),
            "delta": _num(self.delta),
            "ci95": [_num(self.ci95[0]), _num(self.ci95[1])] if self.ci95 else None,
            "p_value": _num(self.p_value),
            "p_regression": _num(self.p_regression),
            "test": self.test,
            "n": self.n,
        }
        if self.ratio is not None:
            # head / base; null when the base is 0 and the head is not (an infinite ratio)
            out["ratio"] = _num(self.ratio)
        return out

    @property
    def regressed(self) -> bool:
        """The change moved the metric the wrong way."""
        if self.delta is None or self.delta == 0:
            return False
        return self.delta < 0 if self.direction == "higher" else self.delta > 0


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict on one eval: pass / warn / block and a one-line reason.

    `cases_needed` is set when the dataset is too small for the gate's threshold to be
    detectable at the configured power (the reason says so too).
    """

    gate: str
    action: Literal["block", "warn"]
    outcome: Outcome
    reason: str
    metric: str | None = None
    dataset: str | None = None
    cases_needed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "gate": self.gate,
            "action": self.action,
            "outcome": self.outcome,
            "reason": self.reason,
        }
        if self.metric is not None:
            out["metric"] = self.metric
        if self.dataset is not None:
            out["dataset"] = self.dataset
        if self.cases_needed is not None:
            out["cases_needed"] = self.cases_needed
        return out


@dataclass(frozen=True)
class CaseSide:
    """One side (base or head) of a case: verdict, score, the output and why it failed."""

    passed: bool
    score: float
    output: str | None
    reason: str
    error: bool = False
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # ToolCall.to_dict items

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pass": self.passed,
            "score": _num(self.score),
            "output": self.output,
            "reason": self.reason,
            "error": self.error,
        }
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        return out


@dataclass(frozen=True)
class CallPair:
    """The n-th tool call of base and head side by side (None: that side made fewer calls).

    `differing` names the arguments whose values differ (both sides' keys); `renamed` is
    true when the two calls are to different tools (or only one side made the call).
    """

    base: dict[str, Any] | None
    head: dict[str, Any] | None
    differing: tuple[str, ...] = ()
    renamed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "differing": list(self.differing),
            "renamed": self.renamed,
        }


DiffOp = tuple[Literal["=", "-", "+"], str]


@dataclass(frozen=True)
class Flip:
    """A case whose verdict changed: pass → fail (a regression) or fail → pass.

    `diff` is a word-level diff from the base output to the head output: ("=", text)
    common, ("-", text) only in base, ("+", text) only in head.
    """

    case_id: str
    dataset: str
    direction: Literal["pass_to_fail", "fail_to_pass"]
    base: CaseSide
    head: CaseSide
    diff: list[DiffOp]
    truncated: bool = False
    calls: list[CallPair] = field(default_factory=list)  # empty: neither side called a tool

    @property
    def severity(self) -> float:
        """How far the score moved in the flip's direction (bigger = more severe)."""
        return abs(self.base.score - self.head.score)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "dataset": self.dataset,
            "base": self.base.to_dict(),
            "head": self.head.to_dict(),
            "diff": [[op, text] for op, text in self.diff],
            "truncated": self.truncated,
            **({"calls": [pair.to_dict() for pair in self.calls]} if self.calls else {}),
        }


PairChange = Literal["flipped", "changed", "same"]


@dataclass(frozen=True)
class PairedCase:
    """A paired case as the reports list it: both sides, and what changed (the verdict,
    only the answer, or nothing)."""

    case_id: str
    change: PairChange
    base: CaseSide
    head: CaseSide

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "change": self.change,
            "base": self.base.to_dict(),
            "head": self.head.to_dict(),
        }


@dataclass
class DatasetChange:
    """A golden dataset that differs between base and head, by case id."""

    path: str
    status: Literal["added", "removed", "changed"]
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    used_by: list[str] = field(default_factory=list)
    problem: str | None = None  # a side that does not load

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "added": self.added,
            "removed": self.removed,
            "modified": self.modified,
            "used_by": self.used_by,
            "problem": self.problem,
        }

    def summary(self) -> str:
        if self.problem:
            return self.problem
        if self.status != "changed":
            return f"dataset {self.status}"
        parts = []
        if self.added:
            parts.append(f"{len(self.added)} case(s) added")
        if self.removed:
            parts.append(f"{len(self.removed)} removed")
        if self.modified:
            parts.append(f"{len(self.modified)} modified")
        return ", ".join(parts) or "no case changed (formatting only)"


@dataclass
class EvalComparison:
    """One eval of a prompt: base and head on the head's cases, paired by case id."""

    dataset: str
    threshold: float
    repeat: int
    cases: int  # cases in the head's dataset
    paired: int  # cases with results on both sides (the statistics use these)
    has_base: bool
    metrics: dict[str, MetricResult] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)
    pass_to_fail: list[Flip] = field(default_factory=list)
    fail_to_pass: list[Flip] = field(default_factory=list)
    flips_total: tuple[int, int] = (0, 0)  # before any cap: (pass→fail, fail→pass)
    # Every paired case: flipped first (most severe first), then changed answers, then
    # the rest; the HTML report shows them all, so nothing is only in results.jsonl.
    paired_cases: list[PairedCase] = field(default_factory=list)
    dataset_change: DatasetChange | None = None
    notes: list[str] = field(default_factory=list)
    base_run: str | None = None  # results.jsonl paths, for digging deeper
    head_run: str | None = None
    base_mode: str | None = None
    head_mode: str | None = None
    missing_base: list[str] = field(default_factory=list)  # case ids base could not answer
    missing_head: list[str] = field(default_factory=list)
    # Of the missing cases, those a provider failed for infrastructure reasons (tolerated
    # up to `max_infra_error_rate`): no verdict, so never paired as a failure.
    infra_base: list[str] = field(default_factory=list)
    infra_head: list[str] = field(default_factory=list)
    slice: Slice | None = None  # `cases` are the dataset's cases `--case`/`--tag` chose

    @property
    def decision(self) -> Outcome:
        return worst([g.outcome for g in self.gates])

    @property
    def cases_label(self) -> str:
        """`40 case(s)`, or `3 of 40 case(s) (slice)`."""
        if self.slice is None:
            return f"{self.cases} case(s)"
        return f"{self.cases} of {self.slice.total} case(s) (slice)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "threshold": self.threshold,
            "repeat": self.repeat,
            "cases": self.cases,
            "paired": self.paired,
            "decision": self.decision,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "gates": [g.to_dict() for g in self.gates],
            "flips": {
                "pass_to_fail": [f.to_dict() for f in self.pass_to_fail],
                "fail_to_pass": [f.to_dict() for f in self.fail_to_pass],
                "pass_to_fail_total": self.flips_total[0],
                "fail_to_pass_total": self.flips_total[1],
            },
            "paired_cases": [c.to_dict() for c in self.paired_cases],
            "dataset_change": self.dataset_change.to_dict() if self.dataset_change else None,
            "missing": {"base": self.missing_base, "head": self.missing_head},
            "infra_errors": {"base": self.infra_base, "head": self.infra_head},
            "notes": self.notes,
            "results": {"base": self.base_run, "head": self.head_run},
            "mode": {"base": self.base_mode, "head": self.head_mode},
            "slice": self.slice.to_dict() if self.slice is not None else None,
        }


@dataclass
class PromptComparison:
    """A prompt's place in the change and, when it was evaluated, its evals' verdicts."""

    prompt: str
    status: Status
    path: str | None
    base_version: str | None
    head_version: str | None
    base_hash: str | None = None
    head_hash: str | None = None
    reasons: list[str] = field(default_factory=list)  # why it counts as changed
    evals: list[EvalComparison] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)  # prompt-level (e.g. invalid spec)
    # A model comparison: the prompt's own model (the base side) and the other (the head).
    base_model: str | None = None
    head_model: str | None = None

    @property
    def all_gates(self) -> list[GateResult]:
        return [*self.gates, *(g for e in self.evals for g in e.gates)]

    @property
    def decision(self) -> Outcome:
        return worst([g.outcome for g in self.all_gates])

    @property
    def flips(self) -> tuple[list[Flip], list[Flip]]:
        """(pass→fail, fail→pass) over every eval, most severe first."""
        p2f = [f for e in self.evals for f in e.pass_to_fail]
        f2p = [f for e in self.evals for f in e.fail_to_pass]
        return (
            sorted(p2f, key=lambda f: (-f.severity, f.dataset, f.case_id)),
            sorted(f2p, key=lambda f: (-f.severity, f.dataset, f.case_id)),
        )

    def metric_key(self, evaluation: EvalComparison, name: str) -> str:
        """A metric's key in the prompt-level JSON: its name, or `dataset#name` when the
        prompt has several evals."""
        return name if len(self.evals) == 1 else f"{evaluation.dataset}#{name}"

    def to_dict(self) -> dict[str, Any]:
        p2f, f2p = self.flips
        return {
            "prompt": self.prompt,
            "status": self.status,
            "decision": self.decision,
            "base_version": self.base_version,
            "head_version": self.head_version,
            "base_hash": self.base_hash,
            "head_hash": self.head_hash,
            "path": self.path,
            "base_model": self.base_model,
            "head_model": self.head_model,
            "reasons": self.reasons,
            "metrics": {
                self.metric_key(e, name): m.to_dict()
                for e in self.evals
                for name, m in e.metrics.items()
            },
            "gates": [g.to_dict() for g in self.all_gates],
            "flips": {
                "pass_to_fail": [f.to_dict() for f in p2f],
                "fail_to_pass": [f.to_dict() for f in f2p],
            },
            "evals": [e.to_dict() for e in self.evals],
        }


@dataclass
class ComparisonReport:
    """Everything `diff` and `check` found; the decision is the worst gate outcome (and a
    lint error blocks)."""

    base_ref: str | None
    head_ref: str | None  # None: the working tree
    merge_base: str | None
    prompts: list[PromptComparison] = field(default_factory=list)
    datasets: list[DatasetChange] = field(default_factory=list)
    lint: LintResult | None = None
    notes: list[str] = field(default_factory=list)  # e.g. "running offline: ..."
    offline: bool = False  # some answers came from recordings, not a live model
    command: str = "diff"
    recordings_written: list[str] = field(default_factory=list)
    # Gates on the change as a whole, not on one prompt (e.g. `gates-config`: the head
    # edits the merge gate of promptyard.yaml).
    gates: list[GateResult] = field(default_factory=list)
    selection: CaseSelection | None = None  # only these cases were judged (a slice)
    # "change": base vs head of a change; "models": each prompt on other models vs its own
    comparison: Literal["change", "models"] = "change"

    @property
    def decision(self) -> Outcome:
        outcomes: list[Outcome] = [p.decision for p in self.prompts]
        outcomes += [g.outcome for g in self.gates]
        if self.lint is not None and not self.lint.ok:
            outcomes.append("block")
        return worst(outcomes)

    @property
    def head_label(self) -> str:
        return self.head_ref or "working tree"

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for prompt in self.prompts:
            counts[prompt.status] = counts.get(prompt.status, 0) + 1
        return counts

    def prompt(self, name: str) -> PromptComparison:
        for prompt in self.prompts:
            if prompt.prompt == name:
                return prompt
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "comparison": self.comparison,
            "decision": self.decision,
            "base": self.base_ref,
            "head": self.head_label,
            "merge_base": self.merge_base,
            "offline": self.offline,
            "gates": [g.to_dict() for g in self.gates],
            "prompts": [p.to_dict() for p in self.prompts],
            "datasets": [d.to_dict() for d in self.datasets],
            "lint": self.lint.to_dict() if self.lint else None,
            "notes": self.notes,
            "recordings_written": self.recordings_written,
            "slice": self.selection.to_dict() if self.selection is not None else None,
        }
