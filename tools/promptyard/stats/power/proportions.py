"""Two proportions (A/B on a rate): pooled, unpooled and Cohen's h."""

from __future__ import annotations

import math
from typing import Literal

from scipy import stats

from promptyard.errors import ConfigError
from promptyard.stats._base import (
    Sided,
    check_alpha_power,
    check_probability,
    check_sided,
    one_of,
    shown,
)
from promptyard.stats.power._base import (
    MAX_N,
    DetectableEffect,
    SampleSize,
    _check_n,
    _check_ratio,
    _detectable_effect,
    _feasible,
    _root,
    _round_up_two_arm,
    _sample_size,
    _solve_increasing,
    _units_needed,
    _z_alpha,
)

ProportionMethod = Literal["pooled", "unpooled", "cohen-h"]
PROPORTION_METHODS: tuple[ProportionMethod, ...] = ("pooled", "unpooled", "cohen-h")


def resolve_rates(
    baseline: float, mde: float | None = None, relative_mde: float | None = None
) -> tuple[float, float]:
    """(control rate, treatment rate) from a baseline and an absolute or relative effect."""
    check_probability("baseline rate", baseline)
    if (mde is None) == (relative_mde is None):
        raise ConfigError("give exactly one of an absolute effect (mde) or a relative one")
    if mde is not None:
        if not math.isfinite(mde) or mde == 0:
            raise ConfigError(f"the effect (mde) must be a non-zero number, got {shown(mde)}")
        treatment = baseline + mde
        told = f"an effect of {mde:+g}"
    else:
        assert relative_mde is not None
        if not math.isfinite(relative_mde) or relative_mde == 0:
            raise ConfigError(f"the relative effect must be non-zero, got {shown(relative_mde)}")
        treatment = baseline * (1 + relative_mde)
        told = f"a relative effect of {relative_mde:+g}"
    if not 0 < treatment < 1:
        raise ConfigError(
            f"{told} moves the rate from {baseline:g} to {treatment:g}, outside (0, 1); "
            "use a smaller effect"
        )
    return float(baseline), float(treatment)


def cohens_h(p_control: float, p_treatment: float) -> float:
    """Cohen's h: 2·asin(√p_treatment) − 2·asin(√p_control)."""
    return 2 * math.asin(math.sqrt(p_treatment)) - 2 * math.asin(math.sqrt(p_control))


def _proportion_sds(p_c: float, p_t: float, ratio: float, method: str) -> tuple[float, float]:
    """(sd under the null, sd under the alternative) of the difference, times √n_control."""
    alt = math.sqrt(p_c * (1 - p_c) + p_t * (1 - p_t) / ratio)
    if method == "pooled":
        pooled = (p_c + ratio * p_t) / (1 + ratio)
        return math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio)), alt
    return alt, alt


def _check_method(method: str) -> ProportionMethod:
    return one_of("method", method, PROPORTION_METHODS)


def _proportions_power(
    p_c: float, p_t: float, n_c: float, n_t: float, alpha: float, alternative: Sided, method: str
) -> float:
    z_a = _z_alpha(alpha, alternative)
    if method == "cohen-h":
        shift = abs(cohens_h(p_c, p_t)) * math.sqrt(n_c * n_t / (n_c + n_t))
        power = stats.norm.cdf(shift - z_a)
        if alternative == "two-sided":
            power += stats.norm.cdf(-shift - z_a)
        return float(power)
    ratio = n_t / n_c
    sd_null, sd_alt = _proportion_sds(p_c, p_t, ratio, method)
    diff = abs(p_t - p_c) * math.sqrt(n_c)
    power = stats.norm.cdf((diff - z_a * sd_null) / sd_alt)
    if alternative == "two-sided":
        power += stats.norm.cdf((-diff - z_a * sd_null) / sd_alt)
    return float(power)


def two_proportions_power(
    baseline: float,
    treatment_rate: float,
    n_control: float,
    *,
    ratio: float = 1.0,
    alpha: float = 0.05,
    alternative: Sided = "two-sided",
    method: ProportionMethod = "pooled",
) -> float:
    """Power of the two-proportion test with `n_control` and `ratio * n_control` units."""
    check_probability("baseline rate", baseline)
    check_probability("treatment rate", treatment_rate)
    check_alpha_power(alpha)
    _check_n("n_control", n_control)
    ratio = _check_ratio(ratio)
    return _proportions_power(
        baseline,
        treatment_rate,
        n_control,
        ratio * n_control,
        alpha,
        check_sided(alternative),
        _check_method(method),
    )


def two_proportions_sample_size(
    baseline: float,
    *,
    mde: float | None = None,
    relative_mde: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Sided = "two-sided",
    method: ProportionMethod = "pooled",
) -> SampleSize:
    """Units per arm to detect a change of a rate from `baseline` (an A/B test on a rate)."""
    p_c, p_t = resolve_rates(baseline, mde, relative_mde)
    check_alpha_power(alpha, power)
    ratio = _check_ratio(ratio)
    alternative = check_sided(alternative)
    method = _check_method(method)
    z_a, z_b = _z_alpha(alpha, alternative), float(stats.norm.ppf(power))
    h = cohens_h(p_c, p_t)
    if method == "cohen-h":
        # NormalIndPower counts both tails, so solve the power equation itself, from the
        # near-tail closed form (checked first: an effect lost in rounding gives h = 0).
        approx = _feasible(_units_needed(z_a + z_b, math.sqrt((1 + ratio) / ratio), h), ratio=ratio)
        n_exact = _solve_increasing(
            lambda n: _proportions_power(p_c, p_t, n, ratio * n, alpha, alternative, method),
            power,
            lo=1e-6,
            hi=max(approx, 1e-3),
            limit=MAX_N,
        )
    else:
        # Closed form on the near tail, as samplesize_proportions_2indep_onetail.
        sd_null, sd_alt = _proportion_sds(p_c, p_t, ratio, method)
        n_exact = _units_needed(1.0, z_a * sd_null + z_b * sd_alt, p_t - p_c)
    n_exact = _feasible(n_exact, ratio=ratio)
    n_c, n_t, achieved = _round_up_two_arm(
        n_exact,
        ratio,
        lambda a, b: _proportions_power(p_c, p_t, a, b, alpha, alternative, method),
        power,
        minimum=1,
    )
    return _sample_size(
        "two-proportions",
        method,
        n_exact,
        achieved,
        n=n_c,
        n_treatment=n_t,
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=p_t - p_c,
        effect_size=h,
        assumptions={
            "baseline": p_c,
            "treatment_rate": p_t,
            "relative_effect": (p_t - p_c) / p_c,
            "ratio": ratio,
        },
    )


def two_proportions_detectable_effect(
    baseline: float,
    n_control: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Sided = "two-sided",
    method: ProportionMethod = "pooled",
    direction: Literal["increase", "decrease"] = "increase",
) -> DetectableEffect:
    """The smallest change of the rate (in `direction`) that `n_control` units per arm detect."""
    check_probability("baseline rate", baseline)
    check_alpha_power(alpha, power)
    n_c = _check_n("n", n_control)
    ratio = _check_ratio(ratio)
    alternative = check_sided(alternative)
    method = _check_method(method)
    room = 1 - baseline if direction == "increase" else baseline
    sign = 1 if direction == "increase" else -1

    def power_at(delta: float) -> float:
        return _proportions_power(
            baseline, baseline + sign * delta, n_c, ratio * n_c, alpha, alternative, method
        )

    edge = room * (1 - 1e-9)
    if power_at(edge) < power:
        raise ConfigError(
            f"{n_c:g} units per arm cannot reach power {power:g} for any {direction} of a "
            f"{baseline:g} rate; add units"
        )
    delta = _root(power_at, power, min(1e-12, edge / 2), edge)
    return _detectable_effect(
        "two-proportions",
        method,
        n_c,
        ratio=ratio,
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=delta,
        relative_effect=delta / baseline,
        effect_size=abs(cohens_h(baseline, baseline + sign * delta)),
        assumptions={"baseline": baseline, "ratio": ratio, "direction": direction},
    )
