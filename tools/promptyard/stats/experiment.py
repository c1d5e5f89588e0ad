"""A/B experiments: plan, analyze and allocate (`promptyard experiment ...`).

- `plan_experiment(spec)`: units needed per variant for every test the analysis runs
  against the control (see "Error control" below), whether `min_samples` suffices, and the
  duration at `daily_traffic`; errors name the experiment file and the metric.
- `analyze_experiment(spec, frame)`: one row per unit with its variant and one column per
  metric. The sample-ratio check comes first; each metric is then compared with the
  control (two-proportion z-test — Boschloo's exact test with Newcombe's interval for
  small counts or a rate at 0%/100% — or Welch t, relative lift, Beta-Binomial or Gaussian
  posterior, and the always-valid mSPRT p-value when `sequential: true`), rows whose
  variant disagrees with `assign()` are counted, and the structured decision rule gives
  the decision and its reason.
- `allocate_traffic(spec, frame)`: Thompson-sampling weights — the probability each variant
  is best on the primary metric — with a floor so that no arm starves.

Error control. Each metric belongs to one family (`metric_family`):

- decision: the primary metric, plus the metrics of a `k-of-n` rule (all metrics when the
  rule lists none). Their two-sided p-values are Holm-adjusted across these metrics × the
  treatments; only this family can make a variant ship.
- guardrail: every declared guardrail is (also) tested one-sided, in its harmful
  direction only, at the unadjusted `alpha` (always-valid, half-normal mixture, when
  sequential). A multiple-comparison correction protects against false alarms; for a
  guardrail a false alarm only delays a launch, while adjusting would make real harm harder
  to detect. A guardrail significantly worse blocks shipping under every decision rule.
  A guardrail that is also a decision metric keeps its Holm-adjusted two-sided test too.
- secondary: any other metric, reported with Holm-adjusted p-values among the secondary
  metrics; they never decide anything.

`plan_experiment` plans each test as the analysis runs it: decision metrics at
alpha / (decision comparisons) two-sided (Holm's strictest step), secondary metrics at
alpha / (secondary comparisons), guardrails one-sided at alpha to detect a harm of their
`mde`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from promptyard.assignment import bucket, pick
from promptyard.errors import ConfigError
from promptyard.spec.experiment import ExperimentSpec, Metric
from promptyard.stats._base import Result, check_seed
from promptyard.stats.bayes import (
    beta_binomial,
    check_draws,
    gaussian_posterior,
    prob_best_beta,
    prob_best_gaussian,
)
from promptyard.stats.data import metric_values, text_values
from promptyard.stats.multiple import holm
from promptyard.stats.power import (
    EffectTooSmall,
    SampleSize,
    two_means_sample_size,
    two_proportions_sample_size,
)
from promptyard.stats.sequential import BURN_IN, SequentialResult, msprt_two_sample_stream
from promptyard.stats.srm import SRMResult, srm_check
from promptyard.stats.twosample import LiftResult, TwoSampleResult, two_proportions_test, welch_t

Role = Literal["primary", "guardrail", "secondary"]
Family = Literal["decision", "guardrail", "secondary"]
Outcome = Literal["better", "worse", "inconclusive"]
Action = Literal["ship", "keep-control", "continue", "invalid"]
VARIANT_COLUMN = "variant"
# The weights in force over time, and which epoch each row was first exposed in.
WeightHistory = tuple[list[dict[str, float]], np.ndarray]


def metric_role(spec: ExperimentSpec, name: str) -> Role:
    if name == spec.primary:
        return "primary"
    return "guardrail" if name in spec.guardrails else "secondary"


def decision_metrics(spec: ExperimentSpec) -> list[str]:
    """The metrics whose improvement can ship a variant, in the order of `metrics`.

    The primary metric, plus for a `k-of-n` rule its metrics (every metric when it lists
    none). They form the Holm family.
    """
    chosen = {spec.primary}
    if spec.decision.rule == "k-of-n":
        chosen.update(spec.decision.metrics or (m.name for m in spec.metrics))
    return [m.name for m in spec.metrics if m.name in chosen]


def metric_family(spec: ExperimentSpec, name: str) -> Family:
    """decision (Holm-adjusted, can ship), guardrail (one-sided harm test only), secondary."""
    if name in decision_metrics(spec):
        return "decision"
    return "guardrail" if name in spec.guardrails else "secondary"


def harmful_side(metric: Metric) -> Literal["less", "greater"]:
    """The side of treatment − control that is harm: below for `increase` metrics."""
    return "less" if metric.direction == "increase" else "greater"


def _treatments(spec: ExperimentSpec) -> list[str]:
    control = spec.control_variant.name
    return [v.name for v in spec.variants if v.name != control]


def _shares(spec: ExperimentSpec) -> dict[str, float]:
    total = sum(v.weight for v in spec.variants)
    return {v.name: v.weight / total for v in spec.variants}


# --- plan ----------------------------------------------------------------------------------


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
    """Required units per variant for every test the analysis runs (module docstring).

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
    plans: list[MetricPlan] = []
    need_total = 0.0
    binding = spec.primary
    for metric, family, level in tests:
        harm = family == "guardrail"
        for treatment in treatments:
            ratio = shares[treatment] / shares[control]
            try:
                size = metric_sample_size(
                    metric, alpha=level, power=spec.power, ratio=ratio, harm=harm
                )
            except ConfigError as exc:
                raise _metric_error(
                    spec, metric, treatment, level, family, exc, source, lines
                ) from None
            plans.append(
                MetricPlan(
                    metric=metric.name,
                    role=metric_role(spec, metric.name),
                    family=family,
                    type=metric.type,
                    direction=metric.direction,
                    treatment=treatment,
                    baseline=metric.baseline,
                    mde=metric.absolute_mde,
                    relative_mde=(
                        metric.absolute_mde / abs(metric.baseline) if metric.baseline else None
                    ),
                    alpha=level,
                    alternative=size.alternative,
                    sample_size=size,
                )
            )
            assert size.n_treatment is not None
            needed = max(size.n / shares[control], size.n_treatment / shares[treatment])
            if needed > need_total:
                need_total, binding = needed, metric.name
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


# --- analyze -------------------------------------------------------------------------------


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
    experiment is sequential. `family` says how the metric is tested (module docstring):
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


@dataclass
class _Prepared:
    units: np.ndarray
    variants: np.ndarray
    counts: dict[str, int]
    rows: int


def _prepare(
    spec: ExperimentSpec,
    frame: pd.DataFrame,
    *,
    variant_column: str,
    source: str,
    metrics: list[Metric],
) -> _Prepared:
    """Check the columns and variants of the data; the unit and variant of every row."""
    unit_column = spec.assignment.unit
    needed = [unit_column, variant_column, *[m.name for m in metrics]]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns)) or "none"
        raise ConfigError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} (columns: {have})",
            hint=f"one row per unit: {unit_column!r}, {variant_column!r} and one column per "
            "metric, named like the metric",
        )
    if len(frame) == 0:
        raise ConfigError(f"{source}: no rows; the data needs one row per unit")
    units = text_values(frame, unit_column, source)
    variants = text_values(frame, variant_column, source)
    counts = Counter(variants.tolist())
    known = {v.name for v in spec.variants}
    unknown = sorted(set(counts) - known)
    if unknown:
        listed = ", ".join(f"{name!r} ({counts[name]} rows)" for name in unknown[:5])
        raise ConfigError(
            f"{source}: variant(s) {listed} are not in experiment {spec.name!r}",
            hint=f"its variants are {', '.join(v.name for v in spec.variants)}",
        )
    if len(counts) < 2:
        only = next(iter(counts))
        raise ConfigError(
            f"{source}: every row is in variant {only!r}; comparing needs data for at least "
            "two variants"
        )
    control = spec.control_variant.name
    if control not in counts:
        raise ConfigError(f"{source}: no rows for the control variant {control!r}")
    return _Prepared(units, variants, dict(counts), len(frame))


def _assignment_check(
    spec: ExperimentSpec,
    prepared: _Prepared,
    history: WeightHistory | None = None,
    *,
    skip: bool = False,
) -> AssignmentCheck:
    """Rows whose variant is not `assign()`'s (with the weights in force at the row's first
    exposure when `history` says them); nothing is checked when `skip` and no history."""
    if skip and history is None:
        return AssignmentCheck(0, 0, 0.0, {}, [])
    names = [v.name for v in spec.variants]
    if history is None:
        epochs, row_epoch = [{v.name: v.weight for v in spec.variants}], None
    else:
        epochs, row_epoch = history
    weights_of = [[(name, epoch[name]) for name in names] for epoch in epochs]
    salt = spec.assignment.salt
    cache: dict[tuple[str, int], str] = {}
    mismatched: Counter[str] = Counter()
    examples: list[str] = []
    row_epochs = [0] * prepared.rows if row_epoch is None else row_epoch.tolist()
    for unit, recorded, epoch in zip(prepared.units, prepared.variants, row_epochs, strict=True):
        expected = cache.get((unit, epoch))
        if expected is None:
            expected = cache[(unit, epoch)] = pick(bucket(salt, unit), weights_of[epoch])
        if expected != recorded:
            mismatched[recorded] += 1
            if len(examples) < 5:
                examples.append(str(unit))
    total = sum(mismatched.values())
    return AssignmentCheck(
        checked=prepared.rows,
        mismatched=total,
        share=total / prepared.rows,
        by_variant=dict(sorted(mismatched.items())),
        examples=examples,
    )


@dataclass
class _Comparison:
    metric: Metric
    treatment: str
    test: TwoSampleResult
    sequential: SequentialResult | None
    harm_p_value: float | None
    bayes: Any
    missing: int


def _compare(
    spec: ExperimentSpec,
    metric: Metric,
    values: np.ndarray,
    variants: np.ndarray,
    treatment: str,
    *,
    source: str,
    seed: int,
) -> _Comparison:
    control = spec.control_variant.name
    in_pair = (variants == control) | (variants == treatment)
    observed = in_pair & ~np.isnan(values)
    x = values[observed]
    is_treatment = variants[observed] == treatment
    c, t = x[~is_treatment], x[is_treatment]
    minimum = 1 if metric.type == "binary" else 2
    for name, arm in ((control, c), (treatment, t)):
        if arm.size < minimum:
            raise ConfigError(
                f"{source}: metric {metric.name!r} has {arm.size} value(s) in variant "
                f"{name!r}; need at least {minimum}"
            )
    alpha = spec.alpha
    binary = metric.type == "binary"
    guardrail = metric.name in spec.guardrails
    harm = harmful_side(metric)
    harm_p: float | None = None
    if binary:
        counts = (int(c.sum()), int(c.size), int(t.sum()), int(t.size))
        test = two_proportions_test(*counts, confidence=1 - alpha)
        bayes: Any = beta_binomial(*counts, confidence=1 - alpha, seed=seed)
        if guardrail and not spec.sequential:
            harm_p = two_proportions_test(*counts, alternative=harm).p_value
    else:
        test = welch_t(c, t, confidence=1 - alpha)
        se_c = float(c.std(ddof=1) / math.sqrt(c.size))
        se_t = float(t.std(ddof=1) / math.sqrt(t.size))
        bayes = gaussian_posterior(
            float(c.mean()), se_c, float(t.mean()), se_t, confidence=1 - alpha
        )
        if guardrail and not spec.sequential:
            harm_p = welch_t(c, t, alternative=harm).p_value
    sequential = None
    if spec.sequential:
        tau = metric.absolute_mde
        try:
            sequential = msprt_two_sample_stream(x, is_treatment, tau=tau, binary=binary)
            if guardrail:
                harm_p = msprt_two_sample_stream(
                    x, is_treatment, tau=tau, binary=binary, alternative=harm
                ).p_value
        except ConfigError:
            # Too little varying data yet: the p-values stay 1 (nothing can be concluded).
            sequential = None
            harm_p = 1.0 if guardrail else None
    missing = int(np.sum(in_pair & np.isnan(values)))
    return _Comparison(metric, treatment, test, sequential, harm_p, bayes, missing)


def _outcome(metric: Metric, significant: bool, difference: float) -> Outcome:
    if not significant or difference == 0:
        return "inconclusive"
    good = difference > 0 if metric.direction == "increase" else difference < 0
    return "better" if good else "worse"


def _expected_weights(
    spec: ExperimentSpec, rows: int, weight_history: WeightHistory | None, warnings: list[str]
) -> dict[str, float]:
    """Each variant's expected share: its weight, or under a weight history the weights in
    force at each row's first exposure, averaged over the rows (the change is warned about)."""
    weights = {v.name: v.weight for v in spec.variants}
    if weight_history is None:
        return weights
    epochs, row_epoch = weight_history
    used = np.bincount(row_epoch, minlength=len(epochs)) / max(1, rows)
    weights = {
        name: sum(share * epoch.get(name, 0.0) for share, epoch in zip(used, epochs, strict=True))
        for name in weights
    }
    warnings.append(
        f"allocation: thompson: the weights changed {len(epochs) - 1} time(s); the sample "
        "ratio is tested against the weights in force at each unit's first exposure "
        f"({', '.join(f'{k} {v:.2f}%' for k, v in weights.items())})"
    )
    return weights


def _sample_ratio_check(
    counts: dict[str, int], weights: dict[str, float], *, skip: bool, warnings: list[str]
) -> SRMResult:
    """The SRM check, or its skipped form (with a warning) when the weights are unknown."""
    srm = srm_check(counts, weights)
    if skip:
        srm = srm.skipped(
            "allocation: thompson changes the weights while the experiment runs and this "
            "data does not say when each unit arrived; analyze --events STORE checks it"
        )
        warnings.append(f"sample ratio not checked: {srm.skipped_reason}")
    return srm


def _variant_counts(
    spec: ExperimentSpec, prepared: _Prepared, weights: dict[str, float]
) -> list[VariantCount]:
    return [
        VariantCount(
            name=v.name,
            weight=round(weights[v.name], 4),
            units=prepared.counts.get(v.name, 0),
            share=prepared.counts.get(v.name, 0) / prepared.rows,
        )
        for v in spec.variants
    ]


def _present_treatments(
    spec: ExperimentSpec, counts: dict[str, int], warnings: list[str]
) -> list[str]:
    """The treatments with rows; each one without is warned about and left out."""
    present = [t for t in _treatments(spec) if counts.get(t, 0) > 0]
    for absent in (t for t in _treatments(spec) if t not in present):
        warnings.append(f"variant {absent!r} has no rows; it is left out of the comparisons")
    return present


def _compare_metrics(
    spec: ExperimentSpec,
    frame: pd.DataFrame,
    prepared: _Prepared,
    treatments: list[str],
    *,
    source: str,
    seed: int,
) -> list[_Comparison]:
    """Every metric against every treatment (each metric's column is read even with none)."""
    comparisons: list[_Comparison] = []
    for metric in spec.metrics:
        values = metric_values(frame, metric.name, binary=metric.type == "binary", path=source)
        for treatment in treatments:
            comparisons.append(
                _compare(
                    spec, metric, values, prepared.variants, treatment, source=source, seed=seed
                )
            )
    return comparisons


def _holm_by_family(
    spec: ExperimentSpec, comparisons: list[_Comparison], families: list[Family]
) -> list[float | None]:
    """Holm-adjusted p-values within the decision and secondary families (None otherwise)."""
    adjusted: list[float | None] = [None] * len(comparisons)
    for family in ("decision", "secondary"):  # guardrails are not adjusted: module docstring
        members = [i for i, name in enumerate(families) if name == family]
        two_sided = [
            (sequential.p_value if (sequential := comparisons[i].sequential) else 1.0)
            if spec.sequential
            else comparisons[i].test.p_value
            for i in members
        ]
        for i, holm_p in zip(members, holm(two_sided), strict=True):
            adjusted[i] = holm_p
    return adjusted


def _metric_result(
    spec: ExperimentSpec, item: _Comparison, family: Family, p_adj: float | None
) -> MetricResult:
    """One comparison's result: its outcome after adjustment, and a guardrail's harm."""
    metric, test = item.metric, item.test
    significant = p_adj is not None and p_adj <= spec.alpha
    outcome = _outcome(metric, significant, test.difference)
    if item.harm_p_value is not None and item.harm_p_value <= spec.alpha:
        significant, outcome = True, "worse"  # a guardrail's harm: worse, whatever else
    increase = metric.direction == "increase"
    bayes = item.bayes
    return MetricResult(
        metric=metric.name,
        role=metric_role(spec, metric.name),
        family=family,
        type=metric.type,
        direction=metric.direction,
        control=spec.control_variant.name,
        treatment=item.treatment,
        control_n=test.control_n,
        treatment_n=test.treatment_n,
        control_mean=test.control_mean,
        treatment_mean=test.treatment_mean,
        difference=test.difference,
        ci_low=test.ci_low,
        ci_high=test.ci_high,
        lift=test.lift,
        test=test.test,
        statistic=test.statistic,
        p_value=test.p_value,
        sequential=item.sequential,
        p_adjusted=p_adj,
        harm_p_value=item.harm_p_value,
        significant=significant,
        outcome=outcome,
        prob_better=(bayes.prob_treatment_better if increase else 1 - bayes.prob_treatment_better),
        expected_loss=(bayes.expected_loss_treatment if increase else bayes.expected_loss_control),
        bayes=bayes.to_dict(),
        missing=item.missing,
    )


def _missing_value_warnings(results: list[MetricResult]) -> list[str]:
    return [
        f"metric {r.metric!r}: {r.missing} row(s) of {r.control!r} or "
        f"{r.treatment!r} have no value and were left out"
        for r in results
        if r.missing
    ]


def _data_quality_warnings(assignment: AssignmentCheck, duplicates: int) -> list[str]:
    """Warnings about rows in the wrong variant and units seen more than once."""
    warnings = []
    if assignment.mismatched:
        warnings.append(
            f"{assignment.mismatched} row(s) ({assignment.share:.2%}) are in a different variant "
            "than assign() gives their unit; check the assignment code and the salt"
        )
    if duplicates:
        warnings.append(
            f"{duplicates} row(s) repeat a unit already seen; the data should hold one row per unit"
        )
    return warnings


def analyze_experiment(
    spec: ExperimentSpec,
    frame: pd.DataFrame,
    *,
    variant_column: str = VARIANT_COLUMN,
    source: str = "data",
    seed: int = 0,
    weight_history: WeightHistory | None = None,
) -> ExperimentAnalysis:
    """Analyze an experiment's data: SRM, every metric, assignment check, decision.

    `weight_history` (an `allocation: thompson` experiment's: the weights in force over
    time, and which were in force at each row's first exposure) makes the SRM check test
    against the expected allocation — each row's share is the weights in force when it was
    first exposed — and the assignment check use those weights. Without it, a `thompson`
    experiment's SRM and assignment checks are skipped, with the reason.
    """
    check_seed("seed", seed)
    prepared = _prepare(
        spec, frame, variant_column=variant_column, source=source, metrics=list(spec.metrics)
    )
    warnings: list[str] = []
    adaptive = spec.allocation == "thompson"
    weights = _expected_weights(spec, prepared.rows, weight_history, warnings)
    srm = _sample_ratio_check(
        prepared.counts, weights, skip=adaptive and weight_history is None, warnings=warnings
    )
    present = _present_treatments(spec, prepared.counts, warnings)
    comparisons = _compare_metrics(spec, frame, prepared, present, source=source, seed=seed)
    families = [metric_family(spec, item.metric.name) for item in comparisons]
    adjusted = _holm_by_family(spec, comparisons, families)
    results = [
        _metric_result(spec, item, family, p_adj)
        for item, family, p_adj in zip(comparisons, families, adjusted, strict=True)
    ]
    warnings += _missing_value_warnings(results)
    assignment = _assignment_check(spec, prepared, weight_history, skip=adaptive)
    duplicates = int(pd.Series(prepared.units).duplicated().sum())
    warnings += _data_quality_warnings(assignment, duplicates)
    required, required_source = required_samples(spec)
    return ExperimentAnalysis(
        experiment=spec.name,
        control=spec.control_variant.name,
        alpha=spec.alpha,
        sequential=spec.sequential,
        rows=prepared.rows,
        srm=srm,
        variants=_variant_counts(spec, prepared, weights),
        assignment=assignment,
        duplicate_units=duplicates,
        metrics=results,
        decision=_decide(spec, srm, results, prepared.counts, required, required_source),
        warnings=warnings,
        min_samples=required,
        min_samples_source=required_source,
    )


REQUIRED_BY = {
    "experiment": "min_samples",
    "plan": "min_samples is not set: the units the plan needs",
    "sequential burn-in": "min_samples is not set: the sequential test's burn-in",
    "default": "min_samples is not set and the plan needs every metric's sd: the default",
}


def required_samples(spec: ExperimentSpec) -> tuple[dict[str, int], str]:
    """(units per variant before any decision, where the numbers come from).

    `min_samples` of the experiment when set ("experiment"). Otherwise: a sequential
    experiment's p-values are valid at every look, after the mSPRT burn-in of `BURN_IN`
    units per arm ("sequential burn-in"); a fixed-horizon one decides only once it has the
    units its plan needs ("plan": deciding earlier is peeking), or `BURN_IN` when it cannot
    be planned (a continuous metric without `sd`: "default").
    """
    names = [v.name for v in spec.variants]
    if spec.min_samples:
        return dict.fromkeys(names, spec.min_samples), "experiment"
    if spec.sequential:
        return dict.fromkeys(names, BURN_IN), "sequential burn-in"
    try:
        return plan_experiment(spec).per_variant, "plan"
    except ConfigError:
        return dict.fromkeys(names, BURN_IN), "default"


def _improvement(result: MetricResult) -> float:
    return result.difference if result.direction == "increase" else -result.difference


def _describe(result: MetricResult) -> str:
    """The metric's difference and the Holm-adjusted p-value the decision family uses."""
    kind = "Holm-adjusted" + (", always-valid" if result.sequential else "")
    return f"{result.metric} {result.difference:+.4g} (p={result.p_adjusted:.3g}, {kind})"


def _describe_harm(result: MetricResult, sequential: bool) -> str:
    """A guardrail's difference and its one-sided, unadjusted harm p-value."""
    kind = "one-sided, not adjusted" + (", always-valid" if sequential else "")
    return f"{result.metric} {result.difference:+.4g} (p={result.harm_p_value:.3g}, {kind})"


def _harmed(result: MetricResult, alpha: float) -> bool:
    return result.harm_p_value is not None and result.harm_p_value <= alpha


def _srm_invalid(srm: SRMResult, rule: str) -> Decision:
    return Decision(
        "invalid",
        None,
        rule,
        f"sample ratio mismatch (chi-square p={srm.p_value:.3g} < {srm.threshold:g}): the "
        "units per variant do not match the weights, so no result can be trusted; find "
        "the cause (assignment, logging, bots) before reading the metrics",
    )


def _losing_reason(worse: list[MetricResult], harmed: list[MetricResult], sequential: bool) -> str:
    """Why a treatment loses: the rule's metrics that are worse, then the harmed guardrails."""
    reasons = []
    if worse:
        reasons.append("significantly worse on " + ", ".join(map(_describe, worse)))
    if harmed:
        listed = ", ".join(_describe_harm(r, sequential) for r in harmed)
        reasons.append(
            f"guardrail {listed} is significantly worse, which blocks shipping"
            if len(harmed) == 1
            else f"guardrails {listed} are significantly worse, which blocks shipping"
        )
    return "; ".join(reasons)


@dataclass(frozen=True)
class _Standing:
    """Where one treatment stands under the decision rule.

    `status` is candidate (may ship; `rank` orders candidates), loser (worse on a metric the
    rule counts, or a guardrail harmed) or pending (not yet better enough).
    """

    status: Literal["candidate", "loser", "pending"]
    reason: str
    rank: tuple[float, float] = (0.0, 0.0)


def _standing(spec: ExperimentSpec, treatment: str, metrics: dict[str, MetricResult]) -> _Standing:
    rule = spec.decision.rule
    primary = metrics[spec.primary]
    harmed = [metrics[g] for g in spec.guardrails if _harmed(metrics[g], spec.alpha)]
    # The metrics the rule counts; a harmed guardrail among them is reported as such.
    if rule == "k-of-n":
        names = spec.decision.metrics or [m.name for m in spec.metrics]
    else:
        names = [spec.primary]
    wins = [metrics[n] for n in names if metrics[n].outcome == "better"]
    worse = [
        metrics[n]
        for n in names
        if metrics[n].outcome == "worse" and not _harmed(metrics[n], spec.alpha)
    ]
    no_harm = " and no guardrail is significantly worse" if spec.guardrails else ""
    if worse or harmed:
        return _Standing("loser", _losing_reason(worse, harmed, spec.sequential))
    if rule == "k-of-n":
        assert spec.decision.k is not None
        if len(wins) < spec.decision.k:
            return _Standing(
                "pending",
                f"{treatment}: {len(wins)} of {len(names)} metrics significantly better, "
                f"need {spec.decision.k}",
            )
        why = (
            f"{len(wins)} of {len(names)} metrics significantly better "
            f"(need {spec.decision.k}): "
            + ", ".join(map(_describe, wins))
            + "; none significantly worse"
            + no_harm
        )
        return _Standing("candidate", why, (len(wins), _improvement(primary)))
    if wins:
        why = f"primary {_describe(primary)} is significantly better{no_harm}"
        return _Standing("candidate", why, (1, _improvement(primary)))
    return _Standing("pending", f"{treatment}: primary {_describe(primary)} is not significant")


def _too_early(
    involved: list[str], counts: dict[str, int], required: dict[str, int], source: str
) -> str:
    """The clause that defers a decision while a variant it involves lacks units, or ""."""
    short = [n for n in dict.fromkeys(involved) if counts.get(n, 0) < required.get(n, 0)]
    listed = ", ".join(f"{n} has {counts.get(n, 0):,} of {required[n]:,}" for n in short)
    return f"; but {listed} units ({REQUIRED_BY[source]}); keep collecting" if short else ""


def _decide(
    spec: ExperimentSpec,
    srm: SRMResult,
    results: list[MetricResult],
    counts: dict[str, int],
    required: dict[str, int],
    source: str,
) -> Decision:
    """The decision rule, after the SRM check; a harmed guardrail blocks under every rule.

    Nothing is decided (ship or keep-control) while a variant it involves has fewer units
    than `required`: the action is then `continue`, with the would-be decision as reason.
    """
    rule = spec.decision.rule
    if srm.flagged:
        return _srm_invalid(srm, rule)
    control = spec.control_variant.name
    by_treatment: dict[str, dict[str, MetricResult]] = {}
    for result in results:
        by_treatment.setdefault(result.treatment, {})[result.metric] = result
    standings = {t: _standing(spec, t, metrics) for t, metrics in by_treatment.items()}
    candidates = sorted(
        ((s.rank, t, s.reason) for t, s in standings.items() if s.status == "candidate"),
        reverse=True,
    )
    losers = {t: s.reason for t, s in standings.items() if s.status == "loser"}
    pending = [s.reason for s in standings.values() if s.status == "pending"]
    if candidates:
        _, best, why = candidates[0]
        wait = _too_early([control, best], counts, required, source)
        if wait:
            return Decision("continue", best, rule, f"{best}: {why}{wait}")
        return Decision("ship", best, rule, f"{best}: {why}")
    if losers and not pending:
        listed = "; ".join(f"{t}: {why}" for t, why in losers.items())
        wait = _too_early([control, *losers], counts, required, source)
        if wait:
            return Decision("continue", None, rule, f"would keep {control}: {listed}{wait}")
        return Decision("keep-control", control, rule, f"keep {control}: {listed}")
    listed = "; ".join(pending + [f"{t}: {why}" for t, why in losers.items()])
    return Decision("continue", None, rule, f"no variant meets the decision rule yet ({listed})")


# --- allocate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantAllocation(Result):
    """A variant's suggested traffic weight (percent, two decimals; all sum to 100)."""

    name: str
    units: int
    mean: float | None
    prob_best: float
    current_weight: float
    weight: float


@dataclass(frozen=True)
class Allocation(Result):
    """Thompson-sampling weights on `metric`: weight = floor + (100 − k·floor) · P(best).

    `method` says how P(best) was computed: `exact` for two variants (the closed form
    `analyze` reports as P(better)), else `monte-carlo` from `draws` draws seeded with
    `seed`, whose largest standard error is `standard_error`. Weights are multiples of
    `resolution` percent: 0.01, or the power of ten at or above two Monte Carlo standard
    errors (in percent), so they show only the digits the draws support.
    """

    experiment: str
    metric: str
    direction: str
    floor: float
    draws: int
    seed: int
    variants: list[VariantAllocation]
    method: str = "monte-carlo"
    standard_error: float = 0.0
    resolution: float = 0.01


def _round_to_step(weights: list[float], step: float) -> list[float]:
    """Round percentages to multiples of `step` keeping the sum exactly 100 (largest
    remainder)."""
    units = [w / step for w in weights]
    floors = [math.floor(u + 1e-9) for u in units]
    left = round(100 / step) - sum(floors)
    order = sorted(range(len(units)), key=lambda i: units[i] - floors[i], reverse=True)
    for i in order[: max(0, left)]:
        floors[i] += 1
    return [round(f * step, 10) for f in floors]


def thompson_weights(
    prob_best: list[float], floors: list[float], step: float = 0.01
) -> list[float]:
    """Weights in percent: each variant's floor plus its P(best) share of what the floors
    leave, `floor_i + (100 − Σ floors) · P(best_i)`, in multiples of `step` summing to 100."""
    spare = 100 - sum(floors)
    raw = [f + spare * p for f, p in zip(floors, prob_best, strict=True)]
    return _round_to_step(raw, step)


def supported_step(standard_error: float) -> float:
    """The finest step in percent (0.01 at best) a Monte Carlo standard error supports:
    the power of ten at or above two standard errors (in percent)."""
    if standard_error <= 0:
        return 0.01
    return max(0.01, 10.0 ** math.ceil(math.log10(2 * 100 * standard_error)))


def allocate_traffic(
    spec: ExperimentSpec,
    frame: pd.DataFrame,
    *,
    floor: float = 5.0,
    variant_column: str = VARIANT_COLUMN,
    source: str = "data",
    draws: int = 100_000,
    seed: int = 0,
) -> Allocation:
    """Traffic weights from the probability each variant is best on the primary metric."""
    check_seed("seed", seed)
    check_draws(draws)
    k = len(spec.variants)
    if not math.isfinite(floor) or floor < 0 or floor * k >= 100:
        raise ConfigError(
            f"the floor must be at least 0 and below {100 / k:g}% for {k} variants, got {floor:g}"
        )
    metric = next(m for m in spec.metrics if m.name == spec.primary)
    prepared = _prepare(spec, frame, variant_column=variant_column, source=source, metrics=[metric])
    values = metric_values(frame, metric.name, binary=metric.type == "binary", path=source)
    names = [v.name for v in spec.variants]
    arms = [values[(prepared.variants == name) & ~np.isnan(values)] for name in names]
    higher = metric.direction == "increase"
    if metric.type == "binary":
        best = prob_best_beta(
            [int(a.sum()) for a in arms],
            [int(a.size) for a in arms],
            higher_is_better=higher,
            draws=draws,
            seed=seed,
        )
    else:
        short = [name for name, a in zip(names, arms, strict=True) if a.size < 2]
        if short:
            raise ConfigError(
                f"{source}: metric {metric.name!r} needs at least 2 values in every variant "
                f"to allocate; {', '.join(short)} has fewer"
            )
        best = prob_best_gaussian(
            [float(a.mean()) for a in arms],
            [float(a.std(ddof=1) / math.sqrt(a.size)) for a in arms],
            higher_is_better=higher,
            draws=draws,
            seed=seed,
        )
    step = supported_step(best.standard_error)
    weights = thompson_weights(best.probabilities, [floor] * k, step)
    return Allocation(
        experiment=spec.name,
        metric=metric.name,
        direction=metric.direction,
        floor=floor,
        draws=draws,
        seed=seed,
        method=best.method,
        standard_error=best.standard_error,
        resolution=step,
        variants=[
            VariantAllocation(
                name=name,
                units=int(arm.size),
                mean=float(arm.mean()) if arm.size else None,
                prob_best=p,
                current_weight=variant.weight,
                weight=w,
            )
            for name, arm, p, w, variant in zip(
                names, arms, best.probabilities, weights, spec.variants, strict=True
            )
        ],
    )
