"""`analyze_experiment`: the sample-ratio check, every metric against the control, the
assignment check and data-quality warnings, then the decision.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from promptyard.assignment import bucket, pick
from promptyard.errors import ConfigError
from promptyard.spec.experiment import ExperimentSpec, Metric
from promptyard.stats._base import check_seed
from promptyard.stats.bayes import beta_binomial, gaussian_posterior
from promptyard.stats.data import metric_values
from promptyard.stats.experiment.common import (
    VARIANT_COLUMN,
    Family,
    Outcome,
    WeightHistory,
    _prepare,
    _Prepared,
    _treatments,
    harmful_side,
    metric_family,
    metric_role,
)
from promptyard.stats.experiment.decide import _decide, required_samples
from promptyard.stats.experiment.results import (
    AssignmentCheck,
    ExperimentAnalysis,
    MetricResult,
    VariantCount,
)
from promptyard.stats.multiple import holm
from promptyard.stats.sequential import SequentialResult, msprt_two_sample_stream
from promptyard.stats.srm import SRMResult, srm_check
from promptyard.stats.twosample import TwoSampleResult, two_proportions_test, welch_t


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
    for family in ("decision", "secondary"):  # guardrails are not adjusted: package docstring
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
