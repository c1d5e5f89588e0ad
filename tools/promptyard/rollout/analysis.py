"""Canary against stable, per metric, with an always-valid sequential test (mSPRT).

The controller looks again and again, so a fixed-sample p-value would abort healthy canaries
far more often than alpha. Each metric is therefore tested with the mixture SPRT of
`promptyard.stats.sequential`, over every look since the canary's version was first pinned
(one look per `analysis.interval`, rebuilt from Prometheus's history at each tick, so the
controller needs no memory). Its p-value is the running minimum over looks and stays valid
however often it is read; `alpha` is split evenly over the metrics (Bonferroni), so the chance
of aborting a healthy canary over the whole rollout is at most `alpha`.

What is tested (one-sided: only harm aborts), at each look, from the counts since the start:

- **error_rate** (`max_ratio` r): the non-inferiority difference p_canary - r * p_stable,
  against 0; its variance is the sum of the binomial variances (r^2 on the stable side),
  from Agresti-Caffo adjusted proportions so that it is never 0.
  Testing the difference rather than the ratio keeps the test defined when the stable
  version makes no errors. An error is an answer with status 5xx or 422 (the version refused
  the request's variables); other 4xx are the client's.
- **latency_p95** (r): T = r x the stable p95 (from its histogram, as histogram_quantile
  does); under the null "canary p95 <= T" at most 5% of canary requests are slower than T.
  Tested: the canary's share above T (linear within a bucket) minus 0.05, with the null
  variance 0.05 * 0.95 / n. The stable p95 is treated as known (it has the larger share of
  traffic until the last step).
- **cost_per_request** (r): the ratio of mean cost per answered request minus r, with its
  delta-method variance (the gateway exports the sum of squared costs for the per-request
  variance); the mixing scale is r - 1.
- **quality** (`max_drop` d): the drop in the online checks' pass rate, p_stable - p_canary,
  against d (every check counts once; the checks of one answer are treated as independent).

A look counts once each side has `BURN_IN` units and a positive variance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promptyard.rollout.prometheus import Series
from promptyard.spec.environment import DropThreshold, RatioThreshold
from promptyard.stats.sequential import BURN_IN, msprt_sequence

ERROR_STATUS = ("5", "422")  # status prefixes counted as failures of the version
P95_SHARE = 0.05
LATENCY_TAU = 0.05  # mixing scale of the exceedance share: from 5% to about 10% slower
ERROR_TAU = 0.02  # mixing scale of error-rate differences: two percentage points
MIN_QUALITY_TAU = 0.01
MIN_COST_RATIO_VARIANCE = 1e-12


@dataclass
class Side:
    """Cumulative counts of one side (canary or stable) at each look, since the start."""

    requests: np.ndarray  # answered or failed requests
    errors: np.ndarray
    cost: np.ndarray  # USD
    cost_squared: np.ndarray
    answered: np.ndarray  # requests that returned 2xx (cost is per answered request)
    checks_passed: np.ndarray
    checks_failed: np.ndarray
    buckets: dict[float, np.ndarray] = field(default_factory=dict)  # le -> cumulative count


@dataclass(frozen=True)
class MetricResult:
    """One metric's verdict: the figures, the tested quantity and its always-valid test."""

    metric: str
    threshold: str  # e.g. "x1.5" or "drop 0.03"
    canary: float | None  # the metric's value for the canary, since the start
    stable: float | None
    estimate: float | None  # the tested quantity at the last look (harm when above `null`)
    null: float
    interval: tuple[float, float] | None  # always-valid (1 - alpha) interval of `estimate`
    p_value: float
    alpha: float  # this metric's share of the analysis alpha
    looks: int
    canary_n: int
    stable_n: int
    note: str = ""

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    def describe(self) -> str:
        """`error_rate 0.41 vs 0.01 (x1.5): p=0.0002 < 0.0125`, for logs and commits."""
        if self.canary is None or self.stable is None:
            return f"{self.metric}: {self.note or 'no data'}"
        figures = f"{self.metric} {_fmt(self.canary)} vs {_fmt(self.stable)} ({self.threshold})"
        if not self.looks:
            return f"{figures}: {self.note or 'no look yet'}"
        sign = "<" if self.significant else ">="
        return f"{figures}: p={self.p_value:.3g} {sign} {self.alpha:.3g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "threshold": self.threshold,
            "canary": self.canary,
            "stable": self.stable,
            "estimate": self.estimate,
            "null": self.null,
            "interval": list(self.interval) if self.interval else None,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "significant": self.significant,
            "looks": self.looks,
            "canary_n": self.canary_n,
            "stable_n": self.stable_n,
            "note": self.note,
        }


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# --- from Prometheus series to cumulative counts ---------------------------------------------


def cumulative(series: list[Series], times: np.ndarray) -> np.ndarray:
    """The summed increase of `series` from times[0] to each look time, counter resets included.

    A series present at times[0] starts from its value there; one that appears later started
    at 0 after the start. A look a series has no point for keeps its last value.
    """
    total = np.zeros(times.size)
    index = {round(t, 3): i for i, t in enumerate(times)}
    for one in series:
        values = np.full(times.size, np.nan)
        for t, v in one.points:
            i = index.get(round(t, 3))
            if i is not None:
                values[i] = v
        seen = ~np.isnan(values)
        if not seen.any():
            continue
        first = int(np.argmax(seen))
        increase = np.zeros(times.size)
        previous = values[first]
        running = 0.0 if first == 0 else values[first]  # appeared later: counted from 0
        increase[first] = running
        for i in range(first + 1, times.size):
            if np.isnan(values[i]):
                increase[i] = running
                continue
            delta = values[i] - previous
            running += values[i] if delta < 0 else delta  # a drop is a restart from 0
            previous = values[i]
            increase[i] = running
        total += increase
    return total


def side_from_series(queried: dict[str, list[Series]], times: np.ndarray) -> Side:
    """A side's cumulative counts from the raw series of `query_plan` (by query name)."""
    requests = queried.get("requests", [])

    def by_status(keep: Callable[[str], bool]) -> np.ndarray:
        return cumulative([s for s in requests if keep(s.labels.get("status", ""))], times)

    buckets: dict[float, list[Series]] = {}
    for s in queried.get("latency", []):
        le = s.labels.get("le", "")
        bound = math.inf if le == "+Inf" else float(le)
        buckets.setdefault(bound, []).append(s)
    checks = queried.get("quality", [])
    return Side(
        requests=cumulative(requests, times),
        errors=by_status(lambda status: status.startswith(ERROR_STATUS)),
        answered=by_status(lambda status: status.startswith("2")),
        cost=cumulative(queried.get("cost", []), times),
        cost_squared=cumulative(queried.get("cost_squared", []), times),
        checks_passed=cumulative([s for s in checks if s.labels.get("result") == "pass"], times),
        checks_failed=cumulative([s for s in checks if s.labels.get("result") == "fail"], times),
        buckets={le: cumulative(found, times) for le, found in sorted(buckets.items())},
    )


# The raw series each side needs, by name: (metric name, extra matcher).
QUERIES: dict[str, str] = {
    "requests": "promptyard_gateway_requests_total",
    "latency": "promptyard_gateway_request_seconds_bucket",
    "cost": "promptyard_gateway_cost_usd_total",
    "cost_squared": "promptyard_gateway_cost_usd_squared_total",
    "quality": "promptyard_gateway_online_checks_total",
}
NEEDS: dict[str, tuple[str, ...]] = {
    "error_rate": ("requests",),
    "latency_p95": ("requests", "latency"),
    "cost_per_request": ("requests", "cost", "cost_squared"),
    "quality": ("requests", "quality"),
}


# --- the tests ---------------------------------------------------------------------------------


def _sequential(
    metric: str,
    threshold: str,
    figures: tuple[float | None, float | None],
    estimates: np.ndarray,
    variances: np.ndarray,
    valid: np.ndarray,
    *,
    tau: float,
    null: float,
    alpha: float,
    sizes: tuple[int, int],
) -> MetricResult:
    canary, stable = figures
    looks = valid & np.isfinite(estimates) & np.isfinite(variances) & (variances > 0)
    if canary is None or stable is None or not looks.any():
        note = (
            "no data"
            if canary is None or stable is None
            else f"no look yet (each side needs {BURN_IN} and varying outcomes)"
        )
        return MetricResult(
            metric, threshold, canary, stable, None, null, None, 1.0, alpha, 0, *sizes, note=note
        )
    result = msprt_sequence(
        estimates[looks], variances[looks], tau=tau, null=null, alternative="greater"
    )
    return MetricResult(
        metric,
        threshold,
        canary,
        stable,
        result.estimate,
        null,
        always_valid_interval(result.estimate, result.variance, tau, alpha),
        result.p_value,
        alpha,
        result.looks,
        *sizes,
    )


def always_valid_interval(
    estimate: float, variance: float, tau: float, alpha: float
) -> tuple[float, float]:
    """The (1 - alpha) confidence sequence of the normal-mixture SPRT at one look: every
    null the two-sided test would not reject."""
    t2 = tau * tau
    half = math.sqrt(
        variance
        * (variance + t2)
        / t2
        * (2 * math.log(1 / alpha) + math.log((variance + t2) / variance))
    )
    return estimate - half, estimate + half


def _last(values: np.ndarray) -> float:
    return float(values[-1]) if values.size else 0.0


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


@dataclass(frozen=True)
class _Proportions:
    """Two sides' proportions at each look, and the variance of canary - weight * stable."""

    canary: np.ndarray
    stable: np.ndarray
    variance: np.ndarray
    valid: np.ndarray
    figures: tuple[float | None, float | None]
    sizes: tuple[int, int]


def _proportions(
    hits_c: np.ndarray, n_c: np.ndarray, hits_s: np.ndarray, n_s: np.ndarray, weight: float
) -> _Proportions:
    p_c, p_s = _ratio(hits_c, n_c), _ratio(hits_s, n_s)
    # The variance from Agresti-Caffo's adjusted proportions (one hit and one miss added per
    # side): never 0, so a canary failing every request against a stable that never fails
    # is still judged (the raw binomial variance is 0 there and no look would count).
    a_c, a_s = (hits_c + 1) / (n_c + 2), (hits_s + 1) / (n_s + 2)
    variance = a_c * (1 - a_c) / (n_c + 2) + weight * weight * a_s * (1 - a_s) / (n_s + 2)
    return _Proportions(
        p_c,
        p_s,
        variance,
        (n_c >= BURN_IN) & (n_s >= BURN_IN),
        (
            None if _last(n_c) == 0 else float(p_c[-1]),
            None if _last(n_s) == 0 else float(p_s[-1]),
        ),
        (int(_last(n_c)), int(_last(n_s))),
    )


def error_rate(canary: Side, stable: Side, t: RatioThreshold, alpha: float) -> MetricResult:
    r = t.max_ratio
    p = _proportions(canary.errors, canary.requests, stable.errors, stable.requests, r)
    return _sequential(
        "error_rate",
        f"x{r:g}",
        p.figures,
        p.canary - r * p.stable,
        p.variance,
        p.valid,
        tau=ERROR_TAU,
        null=0.0,
        alpha=alpha,
        sizes=p.sizes,
    )


def _quantile(buckets: dict[float, np.ndarray], q: float, look: int) -> float | None:
    """histogram_quantile at one look (linear within the bucket; the lowest starts at 0)."""
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        return None
    total = buckets[math.inf][look]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le][look]
        if count >= rank:
            if le == math.inf:
                return lower  # beyond the last finite bucket: its upper bound, as Prometheus
            if count == below:
                return le
            return float(lower + (le - lower) * (rank - below) / (count - below))
        lower, below = le, count
    return None


def _share_above(buckets: dict[float, np.ndarray], limit: float, look: int) -> float | None:
    """The share of observations above `limit` at one look (linear within the bucket)."""
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        return None
    total = buckets[math.inf][look]
    if total <= 0:
        return None
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le][look]
        if limit <= le:
            if le == math.inf:
                at_limit = below
            else:
                at_limit = below + (count - below) * (limit - lower) / (le - lower)
            return float(1 - at_limit / total)
        lower, below = le, count
    return 0.0


def latency_p95(canary: Side, stable: Side, t: RatioThreshold, alpha: float) -> MetricResult:
    r = t.max_ratio
    looks = canary.requests.size
    estimates = np.full(looks, np.nan)
    n_c = canary.buckets.get(math.inf, np.zeros(looks))
    n_s = stable.buckets.get(math.inf, np.zeros(looks))
    for look in range(looks):
        q_s = _quantile(stable.buckets, 0.95, look)
        share = None if q_s is None else _share_above(canary.buckets, r * q_s, look)
        if share is not None:
            estimates[look] = share - P95_SHARE
    with np.errstate(divide="ignore"):
        variance = P95_SHARE * (1 - P95_SHARE) / n_c
    valid = (n_c >= BURN_IN) & (n_s >= BURN_IN)
    last = looks - 1
    q_c = _quantile(canary.buckets, 0.95, last) if looks else None
    q_s = _quantile(stable.buckets, 0.95, last) if looks else None
    return _sequential(
        "latency_p95",
        f"x{r:g}",
        (q_c, q_s),
        estimates,
        variance,
        valid,
        tau=LATENCY_TAU,
        null=0.0,
        alpha=alpha,
        sizes=(int(_last(n_c)), int(_last(n_s))),
    )


def cost_per_request(canary: Side, stable: Side, t: RatioThreshold, alpha: float) -> MetricResult:
    r = t.max_ratio

    def moments(side: Side) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = side.answered
        mean = _ratio(side.cost, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.maximum(side.cost_squared - n * mean * mean, 0) / (n - 1)
        return n, mean, var

    n_c, m_c, v_c = moments(canary)
    n_s, m_s, v_s = moments(stable)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimates = m_c / m_s - r
        # delta method for the ratio of two independent means; floored, so that identical
        # costs on both sides (a deterministic ratio) are still judged
        variance = v_c / n_c / (m_s * m_s) + (m_c * m_c) * v_s / n_s / m_s**4
        variance = np.maximum(variance, MIN_COST_RATIO_VARIANCE)
    valid = (n_c >= BURN_IN) & (n_s >= BURN_IN) & (m_s > 0)
    has_cost = _last(canary.cost) > 0 or _last(stable.cost) > 0
    figures = (
        float(m_c[-1]) if has_cost and _last(n_c) else None,
        float(m_s[-1]) if has_cost and _last(n_s) else None,
    )
    return _sequential(
        "cost_per_request",
        f"x{r:g}",
        figures,
        estimates,
        variance,
        valid,
        tau=r - 1,
        null=0.0,
        alpha=alpha,
        sizes=(int(_last(n_c)), int(_last(n_s))),
    )


def quality(canary: Side, stable: Side, t: DropThreshold, alpha: float) -> MetricResult:
    p = _proportions(
        canary.checks_passed,
        canary.checks_passed + canary.checks_failed,
        stable.checks_passed,
        stable.checks_passed + stable.checks_failed,
        1.0,
    )
    return _sequential(
        "quality",
        f"drop {t.max_drop:g}",
        p.figures,
        p.stable - p.canary,
        p.variance,
        p.valid,
        tau=max(t.max_drop, MIN_QUALITY_TAU),
        null=t.max_drop,
        alpha=alpha,
        sizes=p.sizes,
    )


# metric name -> its test (canary, stable, threshold, alpha) -> result
TESTS: dict[str, Callable[..., MetricResult]] = {
    "error_rate": error_rate,
    "latency_p95": latency_p95,
    "cost_per_request": cost_per_request,
    "quality": quality,
}
