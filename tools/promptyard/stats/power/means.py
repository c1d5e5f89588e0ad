"""t tests: two means, paired and one sample, on the noncentral t distribution."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Literal

from scipy import integrate, stats

from promptyard.errors import ConfigError
from promptyard.stats._base import (
    Sided,
    check_alpha_power,
    check_positive,
    check_sided,
)
from promptyard.stats.power._base import (
    MAX_N,
    DetectableEffect,
    SampleSize,
    _check_effect,
    _check_effect_size,
    _check_n,
    _check_ratio,
    _detectable_effect,
    _feasible,
    _normal_power,
    _round_up_one_arm,
    _round_up_two_arm,
    _sample_size,
    _solve_effect_size,
    _solve_increasing,
    _units_needed,
    _z_alpha,
)


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
