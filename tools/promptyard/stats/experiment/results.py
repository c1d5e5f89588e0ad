"""The analysis's results: variant counts, assignment check, metric results, decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptyard.stats._base import Result
from promptyard.stats.sequential import SequentialResult
from promptyard.stats.srm import SRMResult
from promptyard.stats.twosample import LiftResult


@dataclass(frozen=True)
class VariantCount(Result):
    """Units observed in a variant against its configured weight (percent)."""

    name: str
    weight: float
    units: int
    share: float


@dataclass(frozen=True)
class AssignmentCheck(Result):
    """Rows whose recorded variant differs from `assign(unit, experiment)`.

    `by_variant` counts mismatches per recorded variant; `examples` lists a few unit ids.
    """

    checked: int
    mismatched: int
    share: float
    by_variant: dict[str, int]
    examples: list[str]


@dataclass(frozen=True)
class MetricResult(Result):
    """One metric, one treatment against the control.

    `difference` = treatment − control (rate or mean), with its (1 − alpha) interval
    (`ci_low`, `ci_high`, not adjusted) and `lift` (relative, delta method). `p_value` is
    the fixed-horizon two-sided test's, `sequential` the two-sided mSPRT result when the
    experiment is sequential. `family` says how the metric is tested (package docstring):
    `p_adjusted` is the Holm-adjusted two-sided p-value within the decision or secondary
    family (of the mSPRT p-value when sequential; None for a guardrail outside the decision
    family), `harm_p_value` a guardrail's one-sided p-value in its harmful direction, not
    adjusted (always-valid when sequential; None for other metrics). `outcome` is
    better/worse (significant, by the metric's direction) or inconclusive; a guardrail whose
    harm test is significant is worse. `prob_better` and `expected_loss` (of shipping the
    treatment) take the direction into account; `bayes` holds the full posterior result.
    `missing` counts rows without a value.
    """

    metric: str
    role: str
    family: str
    type: str
    direction: str
    control: str
    treatment: str
    control_n: int
    treatment_n: int
    control_mean: float
    treatment_mean: float
    difference: float
    ci_low: float
    ci_high: float
    lift: LiftResult
    test: str
    statistic: float
    p_value: float
    sequential: SequentialResult | None
    p_adjusted: float | None
    harm_p_value: float | None
    significant: bool
    outcome: str
    prob_better: float
    expected_loss: float
    bayes: dict[str, Any]
    missing: int


@dataclass(frozen=True)
class Decision(Result):
    """What to do: ship (`variant`), keep-control, continue (collect more data) or invalid."""

    action: str
    variant: str | None
    rule: str
    reason: str


@dataclass(frozen=True)
class ExperimentAnalysis(Result):
    """The full analysis; readers show `srm` first, and nothing else matters if it is flagged.

    `min_samples` are the units each variant needs before anything is decided, and
    `min_samples_source` where they come from (`required_samples`).
    """

    experiment: str
    control: str
    alpha: float
    sequential: bool
    rows: int
    srm: SRMResult
    variants: list[VariantCount]
    assignment: AssignmentCheck
    duplicate_units: int
    metrics: list[MetricResult]
    decision: Decision
    warnings: list[str] = field(default_factory=list)
    min_samples: dict[str, int] = field(default_factory=dict)
    min_samples_source: str = "experiment"

    def result(self, metric: str, treatment: str) -> MetricResult:
        """The result of `metric` for `treatment`."""
        for item in self.metrics:
            if item.metric == metric and item.treatment == treatment:
                return item
        raise KeyError((metric, treatment))
