"""McNemar (paired pass/fail): exact conditional binomial power, or Connor (1987)."""

from __future__ import annotations

import math
from collections.abc import Callable
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
    _detectable_effect,
    _feasible,
    _root,
    _round_up_one_arm,
    _sample_size,
    _too_small,
    _units_needed,
    _z_alpha,
)

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
