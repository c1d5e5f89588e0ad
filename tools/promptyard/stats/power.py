"""Sample size, power and minimum detectable effect.

Every `*_sample_size` function returns a `SampleSize` (rounded up; the achieved power of the
rounded n is at least the requested power), every `*_power` function a float, and every
`*_detectable_effect` function a `DetectableEffect` (the inverse: the smallest effect that a
given n detects with the requested power).

Designs and the method each uses:

- two proportions (A/B on a rate): `method="pooled"` — normal approximation with the pooled
  null variance, as statsmodels' `samplesize_proportions_2indep_onetail`; `"unpooled"` — the
  same with the unpooled variance under the null; `"cohen-h"` — Cohen's h on the arcsine
  scale, as statsmodels' `NormalIndPower` (both tails counted);
- two means: Student's t solved on the noncentral t distribution, as `TTestIndPower`;
- paired / one-sample means: the one-sample t on the differences (`TTestPower`);
- margin of error of one proportion: n = z² p (1 - p) / E², rounded up;
- paired binary (McNemar), from the discordant fraction ψ = P(pair disagrees) and the
  difference δ in pass rate: the power of the exact conditional binomial test the merge
  gate runs, summed over the discordant counts (`method="exact"`, the default), or the
  normal approximation n = (z_α √ψ + z_β √(ψ - δ²))² / δ² (Connor 1987, `"connor"`,
  also the exact search's starting point);
- evals with K repeats per case (Miller 2024, "Adding Error Bars to Evals", §5):
  n = (z_α + z_β)² (ω² + σ²_base/K_base + σ²_head/K_head) / δ², where ω is the standard
  deviation across cases of the difference of the two versions' expected case scores and σ
  the standard deviation of one sample's score around its case's expected score.

Conventions: `ratio` is n_treatment / n_control and `n` is the control arm; effects are
absolute (`mde`) or relative to the baseline (`relative_mde`), signed (a negative effect is a
decrease); `alternative` is "two-sided" or "one-sided" (the test looks in the direction of
the effect). Bad arguments raise `ConfigError` (exit 2 from the CLI).

Ranges are checked where the inputs enter: `n` at most `MAX_N` units, `ratio` within
[1/`MAX_RATIO`, `MAX_RATIO`], a duration at most `MAX_DAYS`. An effect too small for any n up
to `MAX_N` in either arm raises `EffectTooSmall` (a `ConfigError`) before a solver runs: the
required n is first computed in overflow-safe closed form (`_units_needed`), so solvers only
see problems whose answer lies inside their bracket (checked again before brentq).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from scipy import integrate, optimize, stats

from promptyard.errors import ConfigError
from promptyard.stats._base import (
    Result,
    Sided,
    check_alpha_power,
    check_positive,
    check_probability,
    check_sided,
    one_of,
    shown,
)

ProportionMethod = Literal["pooled", "unpooled", "cohen-h"]
PROPORTION_METHODS: tuple[ProportionMethod, ...] = ("pooled", "unpooled", "cohen-h")
MAX_N = 1e10  # units in one arm; beyond this the effect is not detectable in practice
MAX_RATIO = 1e6  # n_treatment / n_control (and its inverse): beyond this no arm is a control
MAX_DAYS = 36_525  # a duration over 100 years is not a plan
MAX_REPEATS = 1_000_000  # samples per case per version in an eval plan


class EffectTooSmall(ConfigError):
    """No realistic sample (at most `MAX_N` units per arm) detects the effect."""


@dataclass(frozen=True)
class SampleSize(Result):
    """The units needed to detect an effect with the requested power.

    Fields: `test` (two-proportions | two-means | paired-t | one-sample-t | margin | mcnemar |
    eval), `method`, `n` (the control arm for two-arm designs; otherwise units, pairs or
    cases), `n_treatment` (two-arm designs), `n_total`, `n_exact` (before rounding up; for
    method `exact`, the normal approximation the search for n starts from),
    `alpha`, `power` (requested), `achieved_power` (of the rounded n), `alternative`,
    `effect` (absolute, signed, in the metric's units), `effect_size` (standardised, when the
    test has one), `assumptions` (every other input), `daily_traffic` and `days` (set by
    `with_traffic`).
    """

    test: str
    method: str
    n: int
    n_treatment: int | None
    n_total: int
    n_exact: float
    alpha: float
    power: float | None
    achieved_power: float | None
    alternative: str
    effect: float
    effect_size: float | None
    assumptions: dict[str, Any] = field(default_factory=dict)
    daily_traffic: float | None = None
    days: int | None = None

    def with_traffic(self, daily_traffic: float | None) -> SampleSize:
        """The same result with the duration at `daily_traffic` units per day (all arms)."""
        if daily_traffic is None:
            return self
        check_positive("daily traffic", daily_traffic)
        days = self.n_total / daily_traffic  # a float division overflows to inf, never raises
        if days > MAX_DAYS:
            raise ConfigError(
                f"at {daily_traffic:g} units per day the {self.n_total:,} units would take "
                f"{days:.3g} days, more than {MAX_DAYS // 365} years; plan for more daily "
                "traffic or a larger effect"
            )
        return dataclasses.replace(self, daily_traffic=daily_traffic, days=math.ceil(days))


@dataclass(frozen=True)
class DetectableEffect(Result):
    """The smallest effect `n` units detect with the requested power (the inverse problem).

    `effect` is absolute and positive (its size), `relative_effect` is relative to the
    baseline when there is one, `effect_size` is standardised when the test has one.
    """

    test: str
    method: str
    n: int
    n_treatment: int | None
    n_total: int
    alpha: float
    power: float | None
    alternative: str
    effect: float
    relative_effect: float | None
    effect_size: float | None
    assumptions: dict[str, Any] = field(default_factory=dict)


# --- shared helpers ------------------------------------------------------------------------


def _z_alpha(alpha: float, alternative: Sided) -> float:
    return float(stats.norm.isf(alpha / 2 if alternative == "two-sided" else alpha))


def _check_ratio(ratio: float) -> float:
    """A ratio n_treatment / n_control within [1/MAX_RATIO, MAX_RATIO]."""
    check_positive("ratio (n_treatment / n_control)", ratio)
    if not 1 / MAX_RATIO <= ratio <= MAX_RATIO:
        raise ConfigError(
            f"ratio (n_treatment / n_control) must be between {1 / MAX_RATIO:g} and "
            f"{MAX_RATIO:g}, got {shown(ratio)}; give the arms' relative sizes, e.g. 1 for "
            "an even split"
        )
    return float(ratio)


def _check_n(name: str, n: float, minimum: float = 1) -> float:
    """A sample size between `minimum` and MAX_N (larger n are not samples anyone draws)."""
    if (
        isinstance(n, bool)
        or not isinstance(n, int | float)
        or not math.isfinite(n)
        or not minimum <= n <= MAX_N
    ):
        raise ConfigError(f"{name} must be between {minimum:g} and {MAX_N:g} units, got {shown(n)}")
    return float(n)


def _units_needed(z: float, spread: float, effect: float) -> float:
    """(z · spread / effect)², the normal-approximation n, without overflow or division by 0.

    inf when the effect is too small for any float n: `x ** 2` raises OverflowError and
    `effect ** 2` underflows to 0, while a float division that overflows gives inf.
    """
    if effect == 0:
        return math.inf
    root = abs(z * spread) / abs(effect)
    return root * root


def _too_small(n: float, what: str, fix: str) -> NoReturn:
    needed = f" (about {n:.3g})" if math.isfinite(n) else ""
    raise EffectTooSmall(f"{what}: more than {MAX_N:.3g} units would be needed{needed}; {fix}")


def _feasible(
    n_exact: float,
    *,
    ratio: float = 1.0,
    what: str = "the effect is too small to detect",
    fix: str = "plan for a larger effect",
) -> float:
    """`n_exact` (the control arm), or `EffectTooSmall` when either arm exceeds MAX_N."""
    largest = n_exact * max(1.0, ratio)
    if math.isnan(largest) or largest > MAX_N:
        _too_small(largest, what, fix)
    return n_exact


def _root(
    fn: Callable[[float], float], target: float, lo: float, hi: float, *, xtol: float = 1e-14
) -> float:
    """The x in [lo, hi] where the increasing `fn` reaches `target`.

    The bracket is checked first, so that a problem without a root in it (or a power that
    cannot be computed) is a ConfigError, never brentq's "f(a) and f(b) must have different
    signs"; callers bound their inputs so that this does not happen.
    """
    f_lo, f_hi = fn(lo) - target, fn(hi) - target
    if not (math.isfinite(f_lo) and math.isfinite(f_hi)) or f_lo > 0 or f_hi < 0:
        raise ConfigError(
            f"the power cannot be solved for these inputs (power {f_lo + target:.3g} to "
            f"{f_hi + target:.3g} between {lo:.3g} and {hi:.3g}, target {target:g}); use "
            "less extreme values"
        )
    if f_lo == 0:
        return lo
    if f_hi == 0:
        return hi
    return float(optimize.brentq(lambda x: fn(x) - target, lo, hi, xtol=xtol, rtol=1e-14))


def _solve_increasing(
    fn: Callable[[float], float], target: float, lo: float, hi: float, limit: float
) -> float:
    """The x in [lo, limit] where the increasing `fn` reaches `target` (lo when fn(lo) does)."""
    if fn(lo) >= target:
        return lo
    hi = min(max(hi, lo), limit)
    while fn(hi) < target:  # stops on NaN too: `_root` reports it
        if hi >= limit:
            _too_small(limit, "the effect is too small to detect", "plan for a larger effect")
        lo, hi = hi, min(hi * 4, limit)
    return _root(fn, target, lo, hi, xtol=1e-12)


def _round_up_two_arm(
    n_exact: float, ratio: float, power_of: Callable[[int, int], float], target: float, minimum: int
) -> tuple[int, int, float]:
    """Round both arms up, then add units until the achieved power reaches the target."""
    n_control = max(minimum, math.ceil(n_exact - 1e-9))
    while True:
        n_treatment = max(minimum, math.ceil(ratio * n_control - 1e-9))
        achieved = power_of(n_control, n_treatment)
        if achieved >= target or n_control > MAX_N:
            return n_control, n_treatment, achieved
        n_control += 1


def _round_up_one_arm(
    n_exact: float, power_of: Callable[[int], float], target: float, minimum: int
) -> tuple[int, float]:
    n = max(minimum, math.ceil(n_exact - 1e-9))
    achieved = power_of(n)
    while achieved < target and n <= MAX_N:
        n += 1
        achieved = power_of(n)
    return n, achieved


def _sample_size(
    test: str,
    method: str,
    n_exact: float,
    achieved: float | None,
    *,
    n: int,
    n_treatment: int | None = None,
    alpha: float,
    power: float | None,
    alternative: str,
    effect: float,
    effect_size: float | None,
    assumptions: dict[str, Any],
) -> SampleSize:
    """A `SampleSize`: `n_total` counts both arms (`n` alone without `n_treatment`)."""
    return SampleSize(
        test=test,
        method=method,
        n=n,
        n_treatment=n_treatment,
        n_total=n + (n_treatment or 0),
        n_exact=n_exact,
        alpha=alpha,
        power=power,
        achieved_power=achieved,
        alternative=alternative,
        effect=effect,
        effect_size=effect_size,
        assumptions=assumptions,
    )


def _detectable_effect(
    test: str,
    method: str,
    n: float,
    *,
    ratio: float | None = None,
    alpha: float,
    power: float | None,
    alternative: str,
    effect: float,
    relative_effect: float | None = None,
    effect_size: float | None,
    assumptions: dict[str, Any],
) -> DetectableEffect:
    """A `DetectableEffect` for `n` units, rounded up; `ratio` adds an arm of `ratio · n`."""
    n_control = math.ceil(n)
    n_treatment = None if ratio is None else math.ceil(ratio * n)
    return DetectableEffect(
        test=test,
        method=method,
        n=n_control,
        n_treatment=n_treatment,
        n_total=n_control + (n_treatment or 0),
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=effect,
        relative_effect=relative_effect,
        effect_size=effect_size,
        assumptions=assumptions,
    )


# --- two proportions -----------------------------------------------------------------------


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


# --- t tests: two means, paired, one sample ------------------------------------------------


def resolve_effect_size(
    *,
    effect_size: float | None = None,
    mde: float | None = None,
    sd: float | None = None,
    baseline: float | None = None,
    relative_mde: float | None = None,
) -> tuple[float, float | None, dict[str, Any]]:
    """(standardised effect d, absolute effect or None, assumptions) from the given inputs.

    Give `effect_size` (Cohen's d), or `mde` with `sd`, or `relative_mde` with `baseline`
    and `sd`.
    """
    given = [effect_size is not None, mde is not None, relative_mde is not None]
    if sum(given) != 1:
        raise ConfigError(
            "give exactly one of an effect size (Cohen's d), an absolute effect (mde, with "
            "sd) or a relative effect (with baseline and sd)"
        )
    if effect_size is not None:
        _check_effect_size(effect_size)
        if sd is not None:
            check_positive("sd", sd)
        return float(effect_size), _absolute(effect_size, sd), {"sd": sd}
    if sd is None:
        raise ConfigError("an absolute or relative effect needs the standard deviation (sd)")
    check_positive("sd", sd)
    if mde is not None:
        mde = _check_effect(mde)
        return _standardised(mde, sd), mde, {"sd": sd}
    assert relative_mde is not None
    if baseline is None or not math.isfinite(baseline) or baseline == 0:
        raise ConfigError("a relative effect needs a non-zero baseline mean")
    _check_effect(relative_mde, "the relative effect")
    absolute = baseline * relative_mde
    if not math.isfinite(absolute):
        raise ConfigError(
            f"a relative effect of {relative_mde:g} on a baseline of {baseline:g} is not a "
            "finite number; use smaller values"
        )
    assumptions = {"sd": sd, "baseline": baseline, "relative_mde": relative_mde}
    return _standardised(absolute, sd), absolute, assumptions


def _check_effect(value: float, what: str = "the effect (mde)") -> float:
    """A finite, non-zero effect (how small is `_feasible`'s question)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value == 0
    ):
        raise ConfigError(f"{what} must be a non-zero number, got {shown(value)}")
    return float(value)


def _check_effect_size(effect_size: float) -> float:
    return _check_effect(effect_size, "the effect size")


def _absolute(d: float, sd: float | None) -> float | None:
    """The effect in the metric's units: d · sd (None without an sd), refused on overflow."""
    if sd is None:
        return None
    effect = d * sd
    if not math.isfinite(effect):
        raise ConfigError(f"an sd of {sd:g} is too large: the effect in its units overflows")
    return effect


def _standardised(effect: float, sd: float) -> float:
    """effect / sd, refused when it overflows (an effect of 0 is left to `_feasible`)."""
    d = effect / sd
    if not math.isfinite(d):
        raise ConfigError(
            f"an effect of {effect:g} with an sd of {sd:g} is not a finite effect size; "
            "check the units of the effect and the sd"
        )
    return d


def _t_power(d: float, df: float, nc: float, alpha: float, alternative: Sided) -> float:
    nc = abs(nc)
    if df > 1e7:
        # The t is normal here (and scipy's noncentral t returns NaN at such df).
        return _normal_power(nc, _z_alpha(alpha, alternative), alternative)
    crit = float(stats.t.isf(alpha / 2 if alternative == "two-sided" else alpha, df))
    near = _quiet_nct(stats.nct.sf, crit, df, nc)
    if near is None:
        # Far in the tail (huge nc, tiny df) boost's series may not converge; there the
        # power is that of the normal shift, ~0 or ~1.
        near = float(stats.norm.cdf(nc - crit))
    if alternative == "one-sided":
        return near
    far = _quiet_nct(stats.nct.cdf, -crit, df, nc)
    if far is None:
        far = _far_tail(crit, df, nc)
    return near + far


def _far_tail(crit: float, df: float, nc: float) -> float:
    """P(T < −crit) for T ~ nct(df, nc ≥ 0), where scipy's series gives NaN (df = 1, ...).

    T < −crit < 0 needs Z + nc < 0, so it is at most Φ(−nc): 0 when that is negligible,
    else E_V[Φ(−crit·√(V/df) − nc)] over V ~ χ²(df) by quadrature.
    """
    if stats.norm.cdf(-nc) < 1e-15:
        return 0.0

    def integrand(v: float) -> float:
        log = stats.norm.logcdf(-crit * math.sqrt(v / df) - nc) + stats.chi2.logpdf(v, df)
        return math.exp(log) if math.isfinite(log) else 0.0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, _ = integrate.quad(integrand, 0, math.inf, epsabs=1e-15, limit=200)
    return min(max(float(value), 0.0), float(stats.norm.cdf(-nc)))


def _quiet_nct(fn: Callable[..., Any], x: float, df: float, nc: float) -> float | None:
    """`fn(x, df, nc)` of scipy's noncentral t, or None where it is NaN or warns."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        value = float(fn(x, df, nc))
    if math.isnan(value) or any(issubclass(w.category, RuntimeWarning) for w in caught):
        return None
    return value


def _two_means_power(d: float, n_c: float, n_t: float, alpha: float, alt: Sided) -> float:
    return _t_power(d, n_c + n_t - 2, d * math.sqrt(n_c * n_t / (n_c + n_t)), alpha, alt)


def _one_sample_power(d: float, n: float, alpha: float, alt: Sided) -> float:
    return _t_power(d, n - 1, d * math.sqrt(n), alpha, alt)


def two_means_power(
    effect_size: float,
    n_control: float,
    *,
    ratio: float = 1.0,
    alpha: float = 0.05,
    alternative: Sided = "two-sided",
) -> float:
    """Power of the two-sample t-test (noncentral t) for Cohen's d = `effect_size`."""
    check_alpha_power(alpha)
    _check_effect_size(effect_size)
    ratio = _check_ratio(ratio)
    n_c = _check_n("n_control", n_control, 2 / (1 + ratio) + 1e-9)
    return _two_means_power(effect_size, n_c, ratio * n_c, alpha, check_sided(alternative))


def two_means_sample_size(
    *,
    effect_size: float | None = None,
    mde: float | None = None,
    sd: float | None = None,
    baseline: float | None = None,
    relative_mde: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Sided = "two-sided",
) -> SampleSize:
    """Units per arm for a two-sample t-test, solved on the noncentral t (as TTestIndPower)."""
    d, absolute, assumptions = resolve_effect_size(
        effect_size=effect_size, mde=mde, sd=sd, baseline=baseline, relative_mde=relative_mde
    )
    check_alpha_power(alpha, power)
    ratio = _check_ratio(ratio)
    alternative = check_sided(alternative)
    z = _z_alpha(alpha, alternative) + float(stats.norm.ppf(power))
    # The normal approximation (a lower bound of the t-test's n) refuses hopeless effects
    # before the noncentral t is solved.
    approx = _feasible(_units_needed(z, math.sqrt((1 + ratio) / ratio), d), ratio=ratio)
    n_exact = _solve_increasing(
        lambda n: _two_means_power(d, n, ratio * n, alpha, alternative),
        power,
        lo=3 / (1 + ratio),  # one degree of freedom
        hi=max(approx * 1.5, 4.0),
        limit=MAX_N,
    )
    n_exact = _feasible(n_exact, ratio=ratio)
    n_c, n_t, achieved = _round_up_two_arm(
        n_exact,
        ratio,
        lambda a, b: _two_means_power(d, a, b, alpha, alternative),
        power,
        minimum=2,
    )
    return _sample_size(
        "two-means",
        "noncentral-t",
        n_exact,
        achieved,
        n=n_c,
        n_treatment=n_t,
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=absolute if absolute is not None else d,
        effect_size=d,
        assumptions={**assumptions, "ratio": ratio},
    )


def _solve_effect_size(power_of_d: Callable[[float], float], target: float) -> float:
    """The standardised effect at which the increasing `power_of_d` reaches `target`."""
    hi = 1.0
    while power_of_d(hi) < target:
        if hi > 1e4:
            raise ConfigError("too few units to reach the requested power for any effect")
        hi *= 2
    return _root(power_of_d, target, 1e-12, hi)


def two_means_detectable_effect(
    n_control: float,
    *,
    sd: float | None = None,
    baseline: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Sided = "two-sided",
) -> DetectableEffect:
    """The smallest difference of means (Cohen's d, and absolute with `sd`) n units detect."""
    check_alpha_power(alpha, power)
    ratio = _check_ratio(ratio)
    n_c = _check_n("n", n_control, 2)
    alternative = check_sided(alternative)
    if sd is not None:
        check_positive("sd", sd)
    d = _solve_effect_size(
        lambda x: _two_means_power(x, n_c, ratio * n_c, alpha, alternative), power
    )
    absolute = _absolute(d, sd)
    return _detectable_effect(
        "two-means",
        "noncentral-t",
        n_c,
        ratio=ratio,
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=absolute if absolute is not None else d,
        relative_effect=absolute / baseline if absolute is not None and baseline else None,
        effect_size=d,
        assumptions={"sd": sd, "baseline": baseline, "ratio": ratio},
    )


def one_sample_t_power(
    effect_size: float, n: float, *, alpha: float = 0.05, alternative: Sided = "two-sided"
) -> float:
    """Power of the one-sample (or paired) t-test for d = `effect_size` with n units (pairs)."""
    check_alpha_power(alpha)
    _check_effect_size(effect_size)
    return _one_sample_power(effect_size, _check_n("n", n, 2), alpha, check_sided(alternative))


def paired_t_sample_size(
    *,
    effect_size: float | None = None,
    mde: float | None = None,
    sd: float | None = None,
    baseline: float | None = None,
    relative_mde: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Sided = "two-sided",
    test: Literal["paired-t", "one-sample-t"] = "paired-t",
) -> SampleSize:
    """Pairs (or units, for a one-sample test) needed by the t-test on the differences.

    For paired designs `sd` is the standard deviation of the paired differences and
    `effect_size` is d_z = mean difference / sd of differences (as TTestPower).
    """
    d, absolute, assumptions = resolve_effect_size(
        effect_size=effect_size, mde=mde, sd=sd, baseline=baseline, relative_mde=relative_mde
    )
    check_alpha_power(alpha, power)
    alternative = check_sided(alternative)
    z = _z_alpha(alpha, alternative) + float(stats.norm.ppf(power))
    approx = _feasible(_units_needed(z, 1.0, d))  # refuses hopeless effects before solving
    n_exact = _solve_increasing(
        lambda n: _one_sample_power(d, n, alpha, alternative),
        power,
        lo=2.0,
        hi=max(approx * 1.5, 4.0),
        limit=MAX_N,
    )
    n, achieved = _round_up_one_arm(
        n_exact, lambda k: _one_sample_power(d, k, alpha, alternative), power, minimum=2
    )
    return _sample_size(
        test,
        "noncentral-t",
        n_exact,
        achieved,
        n=n,
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=absolute if absolute is not None else d,
        effect_size=d,
        assumptions=assumptions,
    )


def one_sample_t_sample_size(**kwargs: Any) -> SampleSize:
    """Units for a one-sample t-test; the arguments of `paired_t_sample_size`."""
    return paired_t_sample_size(**kwargs, test="one-sample-t")


def paired_t_detectable_effect(
    n: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Sided = "two-sided",
) -> DetectableEffect:
    """The smallest mean paired difference (d_z, and absolute with `sd`) n pairs detect."""
    check_alpha_power(alpha, power)
    n = _check_n("n", n, 2)
    alternative = check_sided(alternative)
    if sd is not None:
        check_positive("sd", sd)
    d = _solve_effect_size(lambda x: _one_sample_power(x, n, alpha, alternative), power)
    absolute = _absolute(d, sd)
    return _detectable_effect(
        "paired-t",
        "noncentral-t",
        n,
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=absolute if absolute is not None else d,
        effect_size=d,
        assumptions={"sd": sd},
    )


# --- margin of error -----------------------------------------------------------------------


def margin_sample_size(p: float, margin: float, *, confidence: float = 0.95) -> SampleSize:
    """Units to estimate one proportion near `p` within ±`margin`: n = z²p(1−p)/E², rounded up."""
    check_probability("the expected proportion", p)
    check_probability("the margin", margin)
    check_probability("confidence", confidence)
    z = float(stats.norm.isf((1 - confidence) / 2))
    n_exact = _feasible(
        _units_needed(z, math.sqrt(p * (1 - p)), margin),
        what=f"a margin of ±{margin:g} is too narrow to reach",
        fix="allow a wider margin",
    )
    n = max(1, math.ceil(n_exact - 1e-9))
    return _sample_size(
        "margin",
        "normal",
        n_exact,
        None,
        n=n,
        alpha=round(1 - confidence, 12),
        power=None,
        alternative="two-sided",
        effect=margin,
        effect_size=None,
        assumptions={
            "p": p,
            "margin": margin,
            "confidence": confidence,
            "z": z,
            "achieved_margin": z * math.sqrt(p * (1 - p) / n),
        },
    )


def margin_of_error(p: float, n: float, *, confidence: float = 0.95) -> DetectableEffect:
    """The ± margin of a proportion near `p` estimated from n units: z·√(p(1−p)/n)."""
    check_probability("the expected proportion", p)
    check_probability("confidence", confidence)
    n = _check_n("n", n)
    z = float(stats.norm.isf((1 - confidence) / 2))
    margin = z * math.sqrt(p * (1 - p) / n)
    return _detectable_effect(
        "margin",
        "normal",
        n,
        alpha=round(1 - confidence, 12),
        power=None,
        alternative="two-sided",
        effect=margin,
        relative_effect=margin / p,
        effect_size=None,
        assumptions={"p": p, "confidence": confidence, "z": z},
    )


# --- McNemar (paired pass/fail) ------------------------------------------------------------

McNemarPowerMethod = Literal["exact", "connor"]
MCNEMAR_METHODS: tuple[McNemarPowerMethod, ...] = ("exact", "connor")
# Above this many pairs the exact test and Connor's normal approximation agree to well
# within the rounding of n, and the exact sum would cost O(√n) binomial tails per n tried.
MAX_EXACT_PAIRS = 1_000_000


def _check_discordant(discordant: float, mde: float) -> None:
    check_probability("the discordant fraction", discordant)
    if not math.isfinite(mde) or mde == 0 or abs(mde) >= 1:
        raise ConfigError(
            f"the difference in pass rate must be in (-1, 1) and non-zero, got {shown(mde)}"
        )
    if abs(mde) > discordant:
        raise ConfigError(
            f"a difference of {abs(mde):g} in pass rate needs at least that share of "
            f"discordant pairs; the discordant fraction {discordant:g} is smaller"
        )


def _check_mcnemar_method(method: str) -> McNemarPowerMethod:
    return one_of("method", method, MCNEMAR_METHODS)


def _connor_power(psi: float, delta: float, n: float, alpha: float, alt: Sided) -> float:
    z_a = _z_alpha(alpha, alt)
    spread = math.sqrt(max(psi - delta * delta, 1e-300))
    shift = abs(delta) * math.sqrt(n)
    power = stats.norm.cdf((shift - z_a * math.sqrt(psi)) / spread)
    if alt == "two-sided":
        power += stats.norm.cdf((-shift - z_a * math.sqrt(psi)) / spread)
    return float(power)


def _exact_mcnemar_power(psi: float, delta: float, n: int, alpha: float, alt: Sided) -> float:
    """Power of the exact (conditional binomial) McNemar test with n pairs.

    The discordant count M ~ Bin(n, ψ); given M = m, the pairs against the change C ~
    Bin(m, q) with q = (ψ − |δ|) / (2ψ), and the test at level α rejects when C ≤ c_m, the
    largest c with P(Bin(m, ½) ≤ c) ≤ α (α/2 two-sided, which also rejects C ≥ m − c_m):
    power = Σ_m P(M = m) · P(reject | m). Terms where P(M = m) < 1e-16 are left out.
    """
    import numpy as np

    low = int(stats.binom.ppf(1e-16, n, psi))
    high = int(stats.binom.isf(1e-16, n, psi))
    m = np.arange(max(low - 1, 0), min(high + 1, n) + 1)
    weight = stats.binom.pmf(m, n, psi)
    level = alpha / 2 if alt == "two-sided" else alpha
    crit = stats.binom.ppf(level, m, 0.5)  # smallest c with P(C ≤ c) ≥ level
    crit = np.where(stats.binom.cdf(crit, m, 0.5) <= level, crit, crit - 1)
    crit = np.where(m > 0, crit, -1)
    q = max(psi - abs(delta), 0.0) / (2 * psi)
    reject = np.where(crit >= 0, stats.binom.cdf(crit, m, q), 0.0)
    if alt == "two-sided":
        reject = reject + np.where(crit >= 0, stats.binom.sf(m - crit - 1, m, q), 0.0)
    return float(min(1.0, np.sum(weight * reject)))


def _mcnemar_power(
    psi: float,
    delta: float,
    n: float,
    alpha: float,
    alt: Sided,
    method: McNemarPowerMethod = "exact",
) -> float:
    if method == "connor" or n > MAX_EXACT_PAIRS:
        return _connor_power(psi, delta, n, alpha, alt)
    return _exact_mcnemar_power(psi, delta, math.ceil(n - 1e-9), alpha, alt)


def mcnemar_power(
    discordant: float,
    mde: float,
    n: float,
    *,
    alpha: float = 0.05,
    alternative: Sided = "two-sided",
    method: McNemarPowerMethod = "exact",
) -> float:
    """Power of McNemar's test with n pairs (a fractional n counts as the next whole pair).

    `method="exact"`: of the exact conditional binomial test the merge gate runs (a sum
    over the discordant counts; Connor's approximation above `MAX_EXACT_PAIRS` pairs,
    where they agree); `"connor"`: the normal approximation (Connor 1987).
    """
    _check_discordant(discordant, mde)
    check_alpha_power(alpha)
    method = _check_mcnemar_method(method)
    n = _check_n("n", n)
    return _mcnemar_power(discordant, mde, n, alpha, check_sided(alternative), method)


def _method_used(method: McNemarPowerMethod, n: float) -> str:
    return "exact" if method == "exact" and n <= MAX_EXACT_PAIRS else "connor"


def mcnemar_sample_size(
    discordant: float,
    mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Sided = "two-sided",
    method: McNemarPowerMethod = "exact",
) -> SampleSize:
    """Pairs (golden cases) McNemar's test needs to detect a change `mde` in pass rate.

    `discordant` is the expected share of cases whose outcome differs between the two
    versions (pass→fail plus fail→pass); it must be at least |mde|. With `method="exact"`
    (the default) n is the smallest number of pairs at which the exact test the gate runs
    reaches `power`, searched from Connor's n (`n_exact`); its power is nearly, not
    strictly, increasing in n (the test is discrete). `"connor"` gives Connor's n rounded
    up.
    """
    _check_discordant(discordant, mde)
    check_alpha_power(alpha, power)
    alternative = check_sided(alternative)
    method = _check_mcnemar_method(method)
    z_a, z_b = _z_alpha(alpha, alternative), float(stats.norm.ppf(power))
    psi, delta = float(discordant), float(mde)
    spread = z_a * math.sqrt(psi) + z_b * math.sqrt(max(psi - delta * delta, 0.0))
    n_exact = _feasible(_units_needed(1.0, spread, delta))

    def power_of(k: float) -> float:
        return _mcnemar_power(psi, delta, k, alpha, alternative, method)

    if _method_used(method, n_exact) == "exact":
        n, achieved = _smallest_n(power_of, power, max(1, math.ceil(n_exact - 1e-9)))
    else:
        n, achieved = _round_up_one_arm(n_exact, power_of, power, minimum=1)
    return _sample_size(
        "mcnemar",
        _method_used(method, n),
        n_exact,
        achieved,
        n=n,
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=delta,
        effect_size=None,
        assumptions={"discordant": psi},
    )


def _smallest_n(power_of: Callable[[int], float], target: float, start: int) -> tuple[int, float]:
    """The first n where power_of(n) ≥ target, from `start`: gallop, bisect, then step down.

    For a discrete test the power saw-tooths slightly around an increasing trend; the
    search returns an n whose power reaches the target and whose predecessor's does not.
    """
    lo, hi = start, start
    while power_of(hi) < target:
        lo, hi = hi, min(max(hi + 1, math.ceil(hi * 1.25)), int(MAX_N))
        if lo >= MAX_N:
            _too_small(MAX_N, "the effect is too small to detect", "plan for a larger effect")
    if hi == start:  # the approximation over-estimates: walk down
        while hi > 1 and power_of(hi - 1) >= target:
            hi -= 1
        return hi, power_of(hi)
    while hi - lo > 1:  # power_of(lo) < target <= power_of(hi)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power_of(mid) >= target else (mid, hi)
    return hi, power_of(hi)


def mcnemar_detectable_effect(
    discordant: float,
    n: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Sided = "two-sided",
    method: McNemarPowerMethod = "exact",
) -> DetectableEffect:
    """The smallest change in pass rate n pairs detect, given the discordant fraction."""
    check_probability("the discordant fraction", discordant)
    check_alpha_power(alpha, power)
    n = _check_n("n", n)
    alternative = check_sided(alternative)
    method = _check_mcnemar_method(method)

    def power_at(d: float) -> float:
        return _mcnemar_power(discordant, d, n, alpha, alternative, method)

    edge = discordant * (1 - 1e-12)
    if power_at(edge) < power:
        raise ConfigError(
            f"{n:g} pairs cannot reach power {power:g} with a discordant fraction of "
            f"{discordant:g}; add cases"
        )
    delta = _root(power_at, power, min(1e-12, edge / 2), edge)
    return _detectable_effect(
        "mcnemar",
        _method_used(method, n),
        n,
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=delta,
        effect_size=None,
        assumptions={"discordant": discordant},
    )


# --- evals with repeats (Miller 2024) ------------------------------------------------------


def _eval_variance(
    between_sd: float,
    within_sd: float,
    repeats: int,
    head_within_sd: float | None,
    head_repeats: int | None,
) -> tuple[float, dict[str, Any]]:
    for name, value in (("between-case sd", between_sd), ("within-case sd", within_sd)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"the {name} must be zero or positive, got {shown(value)}")
    head_sd = within_sd if head_within_sd is None else head_within_sd
    head_k = repeats if head_repeats is None else head_repeats
    for name, k in (("repeats", repeats), ("head repeats", head_k)):
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_REPEATS:
            raise ConfigError(
                f"{name} must be a whole number from 1 to {MAX_REPEATS:,}, got {shown(k)}"
            )
    if head_sd < 0 or not math.isfinite(head_sd):
        raise ConfigError(
            f"the head's within-case sd must be zero or positive, got {shown(head_sd)}"
        )
    # Products, not `** 2`: a huge sd overflows to inf (refused below) instead of raising.
    variance = between_sd * between_sd + within_sd * within_sd / repeats
    variance += head_sd * head_sd / head_k
    if variance <= 0 and (between_sd or within_sd or head_sd):
        raise ConfigError(
            f"the sds (between {between_sd:g}, within {within_sd:g}) are too small: their "
            "variance underflows to 0; give them in the score's units"
        )
    if variance <= 0:
        raise ConfigError("the between- and within-case sds cannot both be zero")
    if not math.isfinite(variance):
        raise ConfigError(
            f"the sds (between {between_sd:g}, within {within_sd:g}) are too large: their "
            "variance overflows; give them in the score's units"
        )
    return variance, {
        "between_sd": between_sd,
        "within_sd": within_sd,
        "repeats": repeats,
        "head_within_sd": head_sd,
        "head_repeats": head_k,
        "case_sd": math.sqrt(variance),
    }


def _normal_power(shift: float, z_a: float, alternative: Sided) -> float:
    power = stats.norm.cdf(abs(shift) - z_a)
    if alternative == "two-sided":
        power += stats.norm.cdf(-abs(shift) - z_a)
    return float(power)


def eval_power(
    mde: float,
    n: float,
    *,
    between_sd: float,
    within_sd: float,
    repeats: int = 1,
    head_within_sd: float | None = None,
    head_repeats: int | None = None,
    alpha: float = 0.05,
    alternative: Sided = "two-sided",
) -> float:
    """Power of a paired eval comparison on n cases with K repeats (Miller 2024)."""
    _check_effect(mde)
    variance, _ = _eval_variance(between_sd, within_sd, repeats, head_within_sd, head_repeats)
    check_alpha_power(alpha)
    alternative = check_sided(alternative)
    n = _check_n("n", n)
    return _normal_power(mde * math.sqrt(n / variance), _z_alpha(alpha, alternative), alternative)


def eval_sample_size(
    mde: float,
    *,
    between_sd: float,
    within_sd: float,
    repeats: int = 1,
    head_within_sd: float | None = None,
    head_repeats: int | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Sided = "two-sided",
) -> SampleSize:
    """Golden cases needed to detect a change `mde` in mean score between two prompt versions.

    Each case is run `repeats` times per version (`head_repeats` for the head when it
    differs). `between_sd` is ω, the sd across cases of the difference between the versions'
    expected case scores; `within_sd` is σ, the sd of one sample around its case's expected
    score (for pass/fail scores σ² = E[p_i(1 − p_i)] ≤ p(1 − p)). Miller (2024):
    n = (z_α + z_β)² (ω² + σ²_base/K_base + σ²_head/K_head) / δ².
    """
    _check_effect(mde)
    variance, assumptions = _eval_variance(
        between_sd, within_sd, repeats, head_within_sd, head_repeats
    )
    check_alpha_power(alpha, power)
    alternative = check_sided(alternative)
    z_a = _z_alpha(alpha, alternative)
    z = z_a + float(stats.norm.ppf(power))
    n_exact = _feasible(_units_needed(z, math.sqrt(variance), mde))
    n, achieved = _round_up_one_arm(
        n_exact,
        lambda k: _normal_power(mde * math.sqrt(k / variance), z_a, alternative),
        power,
        minimum=2,
    )
    assumptions["model_calls"] = n * (assumptions["repeats"] + assumptions["head_repeats"])
    return _sample_size(
        "eval",
        "miller-2024",
        n_exact,
        achieved,
        n=n,
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=float(mde),
        effect_size=float(mde) / math.sqrt(variance),
        assumptions=assumptions,
    )


def eval_detectable_effect(
    n: float,
    *,
    between_sd: float,
    within_sd: float,
    repeats: int = 1,
    head_within_sd: float | None = None,
    head_repeats: int | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Sided = "two-sided",
) -> DetectableEffect:
    """The smallest change in mean score n cases with K repeats detect (Miller 2024)."""
    variance, assumptions = _eval_variance(
        between_sd, within_sd, repeats, head_within_sd, head_repeats
    )
    check_alpha_power(alpha, power)
    alternative = check_sided(alternative)
    n = _check_n("n", n)
    z_a = _z_alpha(alpha, alternative)
    shift = _solve_effect_size(lambda s: _normal_power(s, z_a, alternative), power)
    effect = shift * math.sqrt(variance / n)
    return _detectable_effect(
        "eval",
        "miller-2024",
        n,
        alpha=alpha,
        power=power,
        alternative=alternative,
        effect=effect,
        effect_size=effect / math.sqrt(variance),
        assumptions=assumptions,
    )


@dataclass(frozen=True)
class EvalVariance(Result):
    """Variance components of a pilot eval, the inputs of `eval_sample_size` (Miller 2024).

    `between_sd` (ω) is estimated as √max(0, Var(d̄_i) − mean(s²_base,i/K_base,i) −
    mean(s²_head,i/K_head,i)), where d̄_i is the difference of the case means and s²_i the
    within-case sample variance; `within_sd_*` is √mean(s²_i) over cases with ≥ 2 samples.
    """

    n_cases: int
    base_repeats: float
    head_repeats: float
    mean_difference: float
    between_sd: float
    within_sd_base: float
    within_sd_head: float


def eval_variance_components(
    base: Mapping[str, Sequence[float]], head: Mapping[str, Sequence[float]]
) -> EvalVariance:
    """Estimate ω and σ from a pilot: per case id, the scores of each repeat of each version.

    Cases present on one side only are ignored; at least 2 shared cases are needed.
    """
    import numpy as np

    shared = [case for case in base if case in head and len(base[case]) and len(head[case])]
    if len(shared) < 2:
        raise ConfigError("need at least 2 cases scored by both versions to estimate variance")

    def parts(side: Mapping[str, Sequence[float]]) -> tuple[Any, Any, Any]:
        means, within, counts = [], [], []
        for case in shared:
            values = np.asarray(side[case], dtype=float)
            means.append(values.mean())
            counts.append(values.size)
            within.append(values.var(ddof=1) if values.size > 1 else np.nan)
        return np.array(means), np.array(within), np.array(counts, dtype=float)

    mean_b, var_b, k_b = parts(base)
    mean_h, var_h, k_h = parts(head)
    diffs = mean_h - mean_b

    def mean_or_zero(values: Any) -> float:
        finite = values[np.isfinite(values)]
        return float(finite.mean()) if finite.size else 0.0

    noise = mean_or_zero(var_b / k_b) + mean_or_zero(var_h / k_h)
    omega2 = max(0.0, float(diffs.var(ddof=1)) - noise)
    return EvalVariance(
        n_cases=len(shared),
        base_repeats=float(k_b.mean()),
        head_repeats=float(k_h.mean()),
        mean_difference=float(diffs.mean()),
        between_sd=math.sqrt(omega2),
        within_sd_base=math.sqrt(mean_or_zero(var_b)),
        within_sd_head=math.sqrt(mean_or_zero(var_h)),
    )
