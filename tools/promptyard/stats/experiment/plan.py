"""`plan_experiment`: the units each variant needs for every test the analysis runs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from promptyard.errors import ConfigError
from promptyard.spec.experiment import ExperimentSpec, Metric
from promptyard.stats._base import Result
from promptyard.stats.experiment.common import (
    Family,
    _shares,
    _treatments,
    decision_metrics,
    metric_role,
)
from promptyard.stats.power import (
    EffectTooSmall,
    SampleSize,
    two_means_sample_size,
    two_proportions_sample_size,
)


@dataclass(frozen=True)
class MetricPlan(Result):
    """Units one test of one metric needs for one treatment-vs-control comparison.

    `family` is decision (two-sided, Holm-corrected), secondary (two-sided, Holm among the
    secondary metrics) or guardrail (one-sided harm test at the unadjusted alpha); a
    guardrail that is also a decision metric has a row for each. `alpha` is the level the
    test is planned at (Holm's most stringent step, alpha / comparisons of its family, or
    alpha itself for a guardrail) and `alternative` two-sided or one-sided. `mde` is the
    size of the effect to detect (positive); the direction is the metric's better one, or
    the harmful one for guardrail rows (`sample_size.effect` is signed). `sample_size` is
    the full `SampleSize` (control arm = `n`, treatment = `n_treatment`).
    """

    metric: str
    role: str
    family: str
    type: str
    direction: str
    treatment: str
    baseline: float
    mde: float
    relative_mde: float | None
    alpha: float
    alternative: str
    sample_size: SampleSize


@dataclass(frozen=True)
class ExperimentPlan(Result):
    """Units needed per variant so every test reaches `power` against the control.

    `comparisons` is the size of the Holm family of decision metrics (metrics × treatments),
    `secondary_comparisons` that of the secondary metrics, `guardrail_comparisons` the
    number of one-sided guardrail harm tests (not adjusted). `per_variant` is the
    requirement of each variant at the configured weights (each rounded up), `total` their
    sum, `binding_metric` the metric that sets it, `min_samples_sufficient` whether
    `min_samples` (per variant) reaches every requirement (None when `min_samples` is not
    set, i.e. 0), `days` the duration at `daily_traffic` (None without it).
    """

    experiment: str
    control: str
    alpha: float
    power: float
    correction: str
    comparisons: int
    secondary_comparisons: int
    guardrail_comparisons: int
    metrics: list[MetricPlan]
    per_variant: dict[str, int]
    total: int
    binding_metric: str
    min_samples: int
    min_samples_sufficient: bool | None
    daily_traffic: int | None
    days: int | None


def metric_sample_size(
    metric: Metric,
    *,
    alpha: float,
    power: float,
    ratio: float = 1.0,
    harm: bool = False,
) -> SampleSize:
    """Units per arm to detect the metric's MDE.

    By default two-sided, in the metric's better direction; with `harm=True` one-sided, in
    its harmful direction (a guardrail's test).
    """
    better = 1 if metric.direction == "increase" else -1
    effect = (-better if harm else better) * metric.absolute_mde
    alternative: Literal["two-sided", "one-sided"] = "one-sided" if harm else "two-sided"
    if metric.type == "binary":
        return two_proportions_sample_size(
            metric.baseline,
            mde=effect,
            alpha=alpha,
            power=power,
            ratio=ratio,
            alternative=alternative,
            method="pooled",
        )
    if metric.sd is None:
        raise ConfigError(
            f"metric {metric.name!r} is continuous: planning needs its standard deviation",
            hint=f"add `sd:` to metric {metric.name!r} (from past data)",
        )
    return two_means_sample_size(
        mde=effect, sd=metric.sd, alpha=alpha, power=power, ratio=ratio, alternative=alternative
    )


def _planned_tests(spec: ExperimentSpec, treatments: int) -> list[tuple[Metric, Family, float]]:
    """(metric, family, level) of every test the analysis runs, per treatment."""
    decision = decision_metrics(spec)
    secondary = [
        m.name for m in spec.metrics if m.name not in decision and m.name not in spec.guardrails
    ]
    tests: list[tuple[Metric, Family, float]] = []
    for metric in spec.metrics:
        if metric.name in decision:
            tests.append((metric, "decision", spec.alpha / (len(decision) * treatments)))
        elif metric.name in secondary:
            tests.append((metric, "secondary", spec.alpha / (len(secondary) * treatments)))
        if metric.name in spec.guardrails:
            tests.append((metric, "guardrail", spec.alpha))
    return tests


def plan_experiment(
    spec: ExperimentSpec, *, source: str | None = None, lines: Mapping[str, int] | None = None
) -> ExperimentPlan:
    """Required units per variant for every test the analysis runs (package docstring).

    Decision metrics form a Holm family of m comparisons (metrics × treatments); each is
    planned at alpha / m, the level Holm's procedure applies to the smallest p-value. Holm
    is at least as powerful as that for every other comparison, so the planned power holds.
    Secondary metrics are planned the same way within their own family. Guardrails are
    planned one-sided at alpha, to detect a harm of their `mde`.

    A metric that cannot be planned (an mde too small for any realistic sample, ...) is a
    ConfigError naming `source` (the experiment file; default `experiment <name>`), the line
    where the metric is defined when `lines` (metric name -> line) gives it, and the metric.
    """
    control = spec.control_variant.name
    shares = _shares(spec)
    treatments = _treatments(spec)
    tests = _planned_tests(spec, len(treatments))
    plans = [
        _metric_plan(spec, metric, family, level, treatment, shares, source, lines)
        for metric, family, level in tests
        for treatment in treatments
    ]
    need_total, binding = _binding_need(plans, shares, control, default=spec.primary)
    # Each arm rounds up on its own; the total is their sum, so the printed numbers add up.
    per_variant = {name: math.ceil(need_total * share - 1e-9) for name, share in shares.items()}
    total = sum(per_variant.values())
    days = math.ceil(total / spec.daily_traffic) if spec.daily_traffic else None
    counts = Counter(family for _, family, _ in tests)
    return ExperimentPlan(
        experiment=spec.name,
        control=control,
        alpha=spec.alpha,
        power=spec.power,
        correction="holm",
        comparisons=counts["decision"] * len(treatments),
        secondary_comparisons=counts["secondary"] * len(treatments),
        guardrail_comparisons=counts["guardrail"] * len(treatments),
        metrics=plans,
        per_variant=per_variant,
        total=total,
        binding_metric=binding,
        min_samples=spec.min_samples,
        min_samples_sufficient=(
            spec.min_samples >= max(per_variant.values()) if spec.min_samples else None
        ),
        daily_traffic=spec.daily_traffic,
        days=days,
    )


def _metric_plan(
    spec: ExperimentSpec,
    metric: Metric,
    family: Family,
    level: float,
    treatment: str,
    shares: dict[str, float],
    source: str | None,
    lines: Mapping[str, int] | None,
) -> MetricPlan:
    """One test of `metric` for `treatment` against the control; its errors say where."""
    ratio = shares[treatment] / shares[spec.control_variant.name]
    harm = family == "guardrail"
    try:
        size = metric_sample_size(metric, alpha=level, power=spec.power, ratio=ratio, harm=harm)
    except ConfigError as exc:
        raise _metric_error(spec, metric, treatment, level, family, exc, source, lines) from None
    return MetricPlan(
        metric=metric.name,
        role=metric_role(spec, metric.name),
        family=family,
        type=metric.type,
        direction=metric.direction,
        treatment=treatment,
        baseline=metric.baseline,
        mde=metric.absolute_mde,
        relative_mde=(metric.absolute_mde / abs(metric.baseline) if metric.baseline else None),
        alpha=level,
        alternative=size.alternative,
        sample_size=size,
    )


def _binding_need(
    plans: list[MetricPlan], shares: dict[str, float], control: str, *, default: str
) -> tuple[float, str]:
    """(total units the most demanding test needs at the configured shares, its metric);
    the first test wins a tie, and `default` names the metric when nothing needs units."""
    need_total = 0.0
    binding = default
    for plan in plans:
        size = plan.sample_size
        assert size.n_treatment is not None
        needed = max(size.n / shares[control], size.n_treatment / shares[plan.treatment])
        if needed > need_total:
            need_total, binding = needed, plan.metric
    return need_total, binding


def _metric_error(
    spec: ExperimentSpec,
    metric: Metric,
    treatment: str,
    level: float,
    family: Family,
    exc: ConfigError,
    source: str | None,
    lines: Mapping[str, int] | None,
) -> ConfigError:
    """`exc` (from the power functions) with where it comes from: file, line, metric."""
    where = source or f"experiment {spec.name!r}"
    line = (lines or {}).get(metric.name)
    if line is not None:
        where = f"{where}:{line}"
    subject = f"metric {metric.name!r}"
    if exc.message.startswith(subject):  # metric_sample_size's own errors name it already
        return ConfigError(f"{where}: {exc.message}", hint=exc.hint)
    comparison = f"{treatment} vs {spec.control_variant.name} at alpha {level:.3g}"
    if family == "guardrail":
        comparison = f"guardrail harm test, {comparison} one-sided"
    hint = exc.hint
    if isinstance(exc, EffectTooSmall):
        hint = f"raise the `mde` of {subject}" + (
            ", or compare fewer metrics and variants (Holm divides alpha among them)"
            if level < spec.alpha
            else ""
        )
    return ConfigError(f"{where}: {subject} ({comparison}): {exc.message}", hint=hint)
