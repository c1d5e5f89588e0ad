"""Evals with K repeats per case (Miller 2024, "Adding Error Bars to Evals", §5)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats

from promptyard.errors import ConfigError
from promptyard.stats._base import (
    Result,
    Sided,
    check_alpha_power,
    check_sided,
    shown,
)
from promptyard.stats.power._base import (
    MAX_REPEATS,
    DetectableEffect,
    SampleSize,
    _check_effect,
    _check_n,
    _detectable_effect,
    _feasible,
    _normal_power,
    _round_up_one_arm,
    _sample_size,
    _solve_effect_size,
    _units_needed,
    _z_alpha,
)


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
