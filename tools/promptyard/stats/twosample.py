"""Two-sample tests for A/B experiments: control vs treatment, independent units.

Arguments come in the order (control, treatment) and every difference is
`treatment − control`; `alternative="greater"` tests that treatment is above control.

- `two_proportions_ztest(control_successes, control_n, treatment_successes, treatment_n)`:
  the z-test with the pooled variance (as statsmodels' `proportions_ztest`), with a Wald
  interval of the difference (unpooled variance);
- `two_proportions_exact(...)`: Boschloo's exact test (Fisher's for large tables) with
  Newcombe's score interval, and `two_proportions_test(...)`, which picks it over the
  z-test for small counts or a rate at 0% or 100% (what `experiment analyze` runs);
- `welch_t(control, treatment)`: Welch's unequal-variance t-test (scipy `ttest_ind`);
- `relative_lift(...)`: (treatment − control) / |control| with a delta-method interval.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from promptyard.errors import ConfigError
from promptyard.stats._base import (
    Alternative,
    Result,
    as_float_array,
    check_alternative,
    check_probability,
    shown,
)


@dataclass(frozen=True)
class LiftResult(Result):
    """Relative lift `(treatment_mean − control_mean) / |control_mean|` and its interval.

    With a positive control mean this is `treatment / control − 1`; dividing by |control|
    keeps the sign of the difference when the control mean is negative (−10 → −5 is +50%,
    not −50%). Delta method: Var(lift) ≈ se_t² / m_c² + m_t² se_c² / m_c⁴ (independent
    arms; the same for either sign of m_c). Every field but the
    means is None when the control mean is 0 (the lift is undefined). For a metric that
    cannot be negative (a rate) the lift cannot fall below −100%, and `ci_low` is clipped
    there (the normal interval of the delta method knows no such bound).
    """

    lift: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float


@dataclass(frozen=True)
class TwoSampleResult(Result):
    """A two-sample test: `difference` = treatment mean − control mean (a rate for z-tests).

    `test` is two-proportions-z, boschloo-exact, fisher-exact or welch-t; `se` is the
    standard error of the difference (of the Wald or t interval; the exact tests report
    Newcombe's interval instead); `df` is Welch's degrees of freedom (None otherwise);
    `lift` is the relative lift with its interval.
    """

    test: str
    control_n: int
    treatment_n: int
    control_mean: float
    treatment_mean: float
    control_sd: float
    treatment_sd: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    statistic: float
    p_value: float
    alternative: str
    df: float | None
    lift: LiftResult


def _z_p_value(z: float, alternative: str) -> float:
    if alternative == "two-sided":
        return float(2 * stats.norm.sf(abs(z)))
    return float(stats.norm.cdf(z) if alternative == "less" else stats.norm.sf(z))


def relative_lift(
    control_mean: float,
    control_se: float,
    treatment_mean: float,
    treatment_se: float,
    *,
    confidence: float = 0.95,
    non_negative: bool = False,
) -> LiftResult:
    """Relative lift (t − c)/|c| of treatment over control with a delta-method interval.

    `non_negative`: the metric cannot be negative (a rate), so the interval stops at −100%.
    """
    check_probability("confidence", confidence)
    if control_mean == 0 or not math.isfinite(control_mean):
        return LiftResult(None, None, None, None, confidence)
    lift = (treatment_mean - control_mean) / abs(control_mean)
    variance = (
        treatment_se**2 / control_mean**2 + treatment_mean**2 * control_se**2 / control_mean**4
    )
    se = math.sqrt(variance)
    z = float(stats.norm.isf((1 - confidence) / 2))
    low = lift - z * se
    if non_negative:
        low = max(low, -1.0)
    return LiftResult(lift, se, low, lift + z * se, confidence)


def two_proportions_ztest(
    control_successes: int,
    control_n: int,
    treatment_successes: int,
    treatment_n: int,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> TwoSampleResult:
    """Two-proportion z-test (pooled variance under the null) of treatment vs control."""
    for name, value in (
        ("control successes", control_successes),
        ("control n", control_n),
        ("treatment successes", treatment_successes),
        ("treatment n", treatment_n),
    ):
        if not isinstance(value, int | np.integer) or value < 0:
            raise ConfigError(f"{name} must be a whole number ≥ 0, got {shown(value)}")
    if control_n == 0 or treatment_n == 0:
        raise ConfigError("each arm needs at least one unit")
    if control_successes > control_n or treatment_successes > treatment_n:
        raise ConfigError("successes cannot exceed the number of units")
    alternative = check_alternative(alternative)
    check_probability("confidence", confidence)
    p_c, p_t = control_successes / control_n, treatment_successes / treatment_n
    pooled = (control_successes + treatment_successes) / (control_n + treatment_n)
    se_null = math.sqrt(pooled * (1 - pooled) * (1 / control_n + 1 / treatment_n))
    diff = p_t - p_c
    z = diff / se_null if se_null > 0 else 0.0
    se_c = math.sqrt(p_c * (1 - p_c) / control_n)
    se_t = math.sqrt(p_t * (1 - p_t) / treatment_n)
    se = math.sqrt(se_c**2 + se_t**2)
    half = float(stats.norm.isf((1 - confidence) / 2)) * se
    return TwoSampleResult(
        test="two-proportions-z",
        control_n=int(control_n),
        treatment_n=int(treatment_n),
        control_mean=p_c,
        treatment_mean=p_t,
        control_sd=math.sqrt(p_c * (1 - p_c)),
        treatment_sd=math.sqrt(p_t * (1 - p_t)),
        difference=diff,
        se=se,
        ci_low=diff - half,
        ci_high=diff + half,
        confidence=confidence,
        statistic=z,
        p_value=_z_p_value(z, alternative) if se_null > 0 else 1.0,
        alternative=alternative,
        df=None,
        lift=relative_lift(p_c, se_c, p_t, se_t, confidence=confidence, non_negative=True),
    )


# Below this many expected units in a cell of the 2×2 table (Cochran's rule), or with an arm
# at 0% or 100%, the z-test and its Wald interval fail: the exact test and score intervals
# take over. Boschloo's test is exact and more powerful than Fisher's, but maximises over
# the nuisance rate: above this many units in all, Fisher's conditional test is used.
MIN_EXPECTED_COUNT = 5
MAX_BOSCHLOO_UNITS = 400
_SCIPY_SIDE = {"two-sided": "two-sided", "greater": "less", "less": "greater"}


def small_or_boundary(
    control_successes: int, control_n: int, treatment_successes: int, treatment_n: int
) -> bool:
    """True when the normal approximation cannot be trusted (see MIN_EXPECTED_COUNT)."""
    total = control_n + treatment_n
    pooled = (control_successes + treatment_successes) / total
    expected = min(pooled, 1 - pooled) * min(control_n, treatment_n)
    rates = (control_successes / control_n, treatment_successes / treatment_n)
    return expected < MIN_EXPECTED_COUNT or any(r in (0.0, 1.0) for r in rates)


def _wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    interval = stats.binomtest(successes, n).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def newcombe_interval(
    control_successes: int,
    control_n: int,
    treatment_successes: int,
    treatment_n: int,
    *,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Newcombe's (1998, method 10) hybrid score interval of p_t − p_c, from Wilson intervals.

    Stays inside [−1, 1] and is informative at 0% and 100%, where the Wald interval
    collapses to a point.
    """
    p_c, p_t = control_successes / control_n, treatment_successes / treatment_n
    low_c, high_c = _wilson(control_successes, control_n, confidence)
    low_t, high_t = _wilson(treatment_successes, treatment_n, confidence)
    diff = p_t - p_c
    low = diff - math.hypot(p_t - low_t, high_c - p_c)
    high = diff + math.hypot(high_t - p_t, p_c - low_c)
    return max(-1.0, low), min(1.0, high)


def two_proportions_exact(
    control_successes: int,
    control_n: int,
    treatment_successes: int,
    treatment_n: int,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> TwoSampleResult:
    """Exact unconditional test (Boschloo; Fisher's above MAX_BOSCHLOO_UNITS units) with
    Newcombe's interval: for small counts or rates at 0% or 100%.

    `statistic` is Boschloo's (Fisher's one-sided p-value) or Fisher's odds ratio.
    """
    z = two_proportions_ztest(
        control_successes,
        control_n,
        treatment_successes,
        treatment_n,
        alternative=alternative,
        confidence=confidence,
    )  # checks the counts; its means, sds and lift are kept
    table = [
        [control_successes, treatment_successes],
        [control_n - control_successes, treatment_n - treatment_successes],
    ]
    side = _SCIPY_SIDE[z.alternative]
    if control_n + treatment_n <= MAX_BOSCHLOO_UNITS:
        result = stats.boschloo_exact(table, alternative=side)
        test = "boschloo-exact"
    else:
        result = stats.fisher_exact(table, alternative=side)
        test = "fisher-exact"
    low, high = newcombe_interval(
        control_successes, control_n, treatment_successes, treatment_n, confidence=confidence
    )
    return dataclasses.replace(
        z,
        test=test,
        ci_low=low,
        ci_high=high,
        statistic=float(result.statistic),
        p_value=float(min(1.0, result.pvalue)),
    )


def two_proportions_test(
    control_successes: int,
    control_n: int,
    treatment_successes: int,
    treatment_n: int,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> TwoSampleResult:
    """The two-proportion test `experiment analyze` runs: the z-test with its Wald interval,
    or, for small counts or a rate at 0% or 100% (`small_or_boundary`), the exact test
    with Newcombe's interval (`two_proportions_exact`)."""
    args = (control_successes, control_n, treatment_successes, treatment_n)
    exact = min(control_n, treatment_n) > 0 and small_or_boundary(*args)
    chosen = two_proportions_exact if exact else two_proportions_ztest
    return chosen(*args, alternative=alternative, confidence=confidence)


def welch_t(
    control: Sequence[float],
    treatment: Sequence[float],
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> TwoSampleResult:
    """Welch's t-test (unequal variances) of treatment vs control, with its interval."""
    c = as_float_array("control", control, minimum=2)
    t = as_float_array("treatment", treatment, minimum=2)
    alternative = check_alternative(alternative)
    check_probability("confidence", confidence)
    se_c = float(c.std(ddof=1) / math.sqrt(c.size))
    se_t = float(t.std(ddof=1) / math.sqrt(t.size))
    diff = float(t.mean() - c.mean())
    se = math.sqrt(se_c**2 + se_t**2)
    if se == 0:  # both arms constant: the difference is known exactly
        statistic = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        if diff == 0:
            p = 1.0
        elif alternative == "two-sided":
            p = 0.0
        else:
            p = 0.0 if (diff < 0) == (alternative == "less") else 1.0
        low = high = diff
        df = float(c.size + t.size - 2)
    else:
        result = stats.ttest_ind(t, c, equal_var=False, alternative=alternative)
        interval = result.confidence_interval(confidence_level=confidence)
        statistic, p, df = float(result.statistic), float(result.pvalue), float(result.df)
        low, high = float(interval.low), float(interval.high)
    return TwoSampleResult(
        test="welch-t",
        control_n=int(c.size),
        treatment_n=int(t.size),
        control_mean=float(c.mean()),
        treatment_mean=float(t.mean()),
        control_sd=float(c.std(ddof=1)),
        treatment_sd=float(t.std(ddof=1)),
        difference=diff,
        se=se,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        statistic=statistic,
        p_value=p,
        alternative=alternative,
        df=df,
        lift=relative_lift(float(c.mean()), se_c, float(t.mean()), se_t, confidence=confidence),
    )
