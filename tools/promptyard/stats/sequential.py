"""Always-valid p-values for experiments watched continuously (`sequential: true`).

The mixture sequential probability ratio test (mSPRT) with a normal mixing distribution
(Johari, Koomen, Pekelis & Walsh, "Always Valid Inference", 2017/2022). For an estimate θ̂
of the difference with variance V and a N(θ₀, τ²) mixture over the alternative:

    Λ = √(V / (V + τ²)) · exp(τ² (θ̂ − θ₀)² / (2 V (V + τ²)))

and the always-valid p-value after each look is the running minimum of min(1, 1/Λ). It
may be checked after every unit without inflating the false-positive rate. τ is the scale
of effects one expects; `promptyard` uses the metric's absolute minimum detectable effect.

One-sided (`alternative="greater"` or `"less"`): the mixture is the half-normal on that
side of θ₀ (density 2·φ_τ), which gives Λ₁ = 2 · Λ · Φ(±τ (θ̂ − θ₀) / √(V (V + τ²))) — Λ
times twice the posterior probability of that side. It is still a mixture of likelihood
ratios, so 1/Λ₁ stays always-valid, and it rejects sooner than the two-sided test when the
effect lies on the tested side (guardrails use it to look for harm only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from promptyard.errors import ConfigError
from promptyard.stats._base import Alternative, Result, check_alternative, check_positive

BURN_IN = 30  # units per arm before the first look (see msprt_two_sample_stream)

METHODS = {
    "two-sided": "msprt-normal-mixture",
    "greater": "msprt-half-normal-mixture",
    "less": "msprt-half-normal-mixture",
}


@dataclass(frozen=True)
class SequentialResult(Result):
    """An mSPRT always-valid p-value.

    `p_value` is the running minimum over `looks` looks; `last_look_p_value` is the value
    of the last look alone; `estimate` and `variance` are those of the last look; `tau` the
    mixing standard deviation; `alternative` two-sided, or the side a one-sided test looks at
    (greater: the estimate above `null`).
    """

    p_value: float
    last_look_p_value: float
    looks: int
    estimate: float
    variance: float
    tau: float
    null: float
    method: str = "msprt-normal-mixture"
    alternative: str = "two-sided"


def msprt_log_likelihood_ratio(
    estimate: Any,
    variance: Any,
    tau: float,
    null: float = 0.0,
    alternative: Alternative = "two-sided",
) -> Any:
    """log Λ of the normal-mixture SPRT (works on numbers and numpy arrays).

    One-sided alternatives use the half-normal mixture on their side of `null`.
    """
    alternative = check_alternative(alternative)
    v = np.asarray(variance, dtype=float)
    t2 = tau * tau
    gap = np.asarray(estimate, dtype=float) - null
    log_lr = 0.5 * np.log(v / (v + t2)) + t2 * gap * gap / (2 * v * (v + t2))
    if alternative == "two-sided":
        return log_lr
    side = 1.0 if alternative == "greater" else -1.0
    # log Φ in its own function: the tail of the wrong side stays finite, not log(0).
    return np.log(2.0) + log_lr + special.log_ndtr(side * tau * gap / np.sqrt(v * (v + t2)))


def msprt_sequence(
    estimates: Sequence[float],
    variances: Sequence[float],
    *,
    tau: float,
    null: float = 0.0,
    alternative: Alternative = "two-sided",
) -> SequentialResult:
    """The always-valid p-value after a sequence of looks (estimate, variance at each)."""
    check_positive("tau", tau)
    alternative = check_alternative(alternative)
    est = np.asarray(estimates, dtype=float)
    var = np.asarray(variances, dtype=float)
    if est.shape != var.shape or est.ndim != 1 or est.size == 0:
        raise ConfigError("need one variance per estimate, and at least one look")
    if np.any(~np.isfinite(var)) or np.any(var <= 0) or np.any(~np.isfinite(est)):
        raise ConfigError("every look needs a finite estimate and a positive variance")
    log_lr = msprt_log_likelihood_ratio(est, var, tau, null, alternative)
    p = np.minimum(1.0, np.exp(-log_lr))
    return SequentialResult(
        p_value=float(p.min()),
        last_look_p_value=float(p[-1]),
        looks=int(est.size),
        estimate=float(est[-1]),
        variance=float(var[-1]),
        tau=float(tau),
        null=float(null),
        method=METHODS[alternative],
        alternative=alternative,
    )


def msprt_p_value(
    estimate: float,
    variance: float,
    *,
    tau: float,
    null: float = 0.0,
    alternative: Alternative = "two-sided",
) -> SequentialResult:
    """The always-valid p-value of one look."""
    return msprt_sequence([estimate], [variance], tau=tau, null=null, alternative=alternative)


def msprt_two_sample_stream(
    values: Sequence[float],
    is_treatment: Sequence[bool],
    *,
    tau: float,
    binary: bool = False,
    min_per_arm: int = BURN_IN,
    alternative: Alternative = "two-sided",
) -> SequentialResult:
    """Always-valid p-value of treatment − control, looking after every unit in arrival order.

    `values[i]` is unit i's metric and `is_treatment[i]` its arm (rows in the order the
    units arrived). The variance of each arm is p(1 − p) for binary metrics and the sample
    variance otherwise. Looks start once each arm has `min_per_arm` units (a burn-in: the
    plug-in variance of a handful of units is too noisy, and without it the false-positive
    rate exceeds alpha) and a non-zero variance. `alternative="less"` asks only whether the
    treatment is below the control (`"greater"`: above).
    """
    check_positive("tau", tau)
    x = np.asarray(values, dtype=float)
    arm = np.asarray(is_treatment, dtype=bool)
    if x.shape != arm.shape or x.ndim != 1:
        raise ConfigError("need one arm flag per value")
    if not np.all(np.isfinite(x)):
        raise ConfigError("values must be finite")

    def running(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, mean, sample_var = _running_moments(x, mask)
        return n, mean, mean * (1 - mean) if binary else sample_var

    n_t, mean_t, var_t = running(arm)
    n_c, mean_c, var_c = running(~arm)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = var_t / n_t + var_c / n_c
    looks = (n_t >= min_per_arm) & (n_c >= min_per_arm) & np.isfinite(variance) & (variance > 0)
    if not np.any(looks):
        raise ConfigError(
            f"the sequential test needs at least {min_per_arm} units with varying outcomes "
            "in each arm"
        )
    return msprt_sequence(
        (mean_t - mean_c)[looks], variance[looks], tau=tau, alternative=alternative
    )


def _running_moments(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, mean, sample variance) of the units of one arm after each arrival.

    Welford's update, vectorised: M2_k = M2_{k−1} + (x_k − mean_{k−1})(x_k − mean_k) sums
    terms that are never negative, and the running means come from sums of the values
    minus the arm's mean. Σx² − (Σx)²/n cancels catastrophically when the mean is large
    against the spread (values of sd 1 around 1e8 lose every digit). NaN before the arm's
    first unit (mean) or second unit (variance).
    """
    own = x[mask]
    n = np.cumsum(mask)
    if own.size == 0:
        nan = np.full(x.shape, np.nan)
        return n, nan, nan
    shift = own.mean()
    k = np.arange(1, own.size + 1)
    mean = shift + np.cumsum(own - shift) / k
    before = np.concatenate(([own[0]], mean[:-1]))  # the mean before unit k (term 0 at k=1)
    m2 = np.cumsum((own - before) * (own - mean))
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = m2 / (k - 1)
    index = np.maximum(n - 1, 0)
    started = n > 0
    return (
        n,
        np.where(started, mean[index], np.nan),
        np.where(n > 1, variance[index], np.nan),
    )
