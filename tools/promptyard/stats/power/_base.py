"""What every power calculation shares: results, range checks, solvers and rounding."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from scipy import optimize, stats

from promptyard.errors import ConfigError
from promptyard.stats._base import (
    Result,
    Sided,
    check_positive,
    shown,
)

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


def _solve_effect_size(power_of_d: Callable[[float], float], target: float) -> float:
    """The standardised effect at which the increasing `power_of_d` reaches `target`."""
    hi = 1.0
    while power_of_d(hi) < target:
        if hi > 1e4:
            raise ConfigError("too few units to reach the requested power for any effect")
        hi *= 2
    return _root(power_of_d, target, 1e-12, hi)


def _normal_power(shift: float, z_a: float, alternative: Sided) -> float:
    power = stats.norm.cdf(abs(shift) - z_a)
    if alternative == "two-sided":
        power += stats.norm.cdf(-abs(shift) - z_a)
    return float(power)
