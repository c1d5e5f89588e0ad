"""The controller's statistics: a healthy canary looked at again and again is aborted at most
alpha of the time (seeded simulation), a harmful one almost always; the counting of
Prometheus series handles late series and counter resets."""

from __future__ import annotations

import numpy as np
from scipy import stats

from promptyard.rollout.analysis import Side, cumulative, error_rate, latency_p95, quality
from promptyard.rollout.prometheus import Series
from promptyard.serving.gateway.observe import LATENCY_BUCKETS
from promptyard.spec.environment import DropThreshold, RatioThreshold

LOOKS = 60
ALPHA = 0.05


def simulated_side(
    rng: np.random.Generator,
    per_look: int,
    *,
    error: float,
    check_pass: float = 0.9,
    slow: float = 1.0,
) -> Side:
    n = rng.poisson(per_look, LOOKS)
    errors = rng.binomial(n, error)
    checks_passed = rng.binomial(n, check_pass)
    buckets = {}
    latencies = [rng.lognormal(np.log(0.2 * slow), 0.5, k) for k in n]
    for le in (*LATENCY_BUCKETS, np.inf):
        buckets[le] = np.cumsum([np.sum(x <= le) for x in latencies]).astype(float)
    zeros = np.zeros(LOOKS)
    return Side(
        requests=np.cumsum(n).astype(float),
        errors=np.cumsum(errors).astype(float),
        cost=zeros,
        cost_squared=zeros,
        answered=np.cumsum(n - errors).astype(float),
        checks_passed=np.cumsum(checks_passed).astype(float),
        checks_failed=np.cumsum(n - checks_passed).astype(float),
        buckets=buckets,
    )


def aborted(canary: Side, stable: Side) -> bool:
    """The controller's rule with three metrics: each at alpha / 3, over every look."""
    results = [
        error_rate(canary, stable, RatioThreshold(max_ratio=1.5), ALPHA / 3),
        quality(canary, stable, DropThreshold(max_drop=0.03), ALPHA / 3),
        latency_p95(canary, stable, RatioThreshold(max_ratio=1.5), ALPHA / 3),
    ]
    return any(r.significant for r in results)


def test_a_healthy_canary_is_falsely_aborted_at_most_alpha_of_the_time() -> None:
    rng = np.random.default_rng(20240515)
    runs = 300
    false_aborts = 0
    naive_aborts = 0
    for _ in range(runs):
        canary = simulated_side(rng, 10, error=0.02)
        stable = simulated_side(rng, 90, error=0.02)
        false_aborts += aborted(canary, stable)
        # What a fixed-sample z test of the error rates would say, read at every look.
        p_c = canary.errors / canary.requests
        p_s = stable.errors / stable.requests
        pooled = (canary.errors + stable.errors) / (canary.requests + stable.requests)
        se = np.sqrt(pooled * (1 - pooled) * (1 / canary.requests + 1 / stable.requests))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (p_c - p_s) / se
        naive_aborts += bool(np.any(stats.norm.sf(z[canary.requests >= 30]) < ALPHA))
    assert false_aborts / runs <= ALPHA
    # Peeking with a fixed-sample test would abort healthy canaries far more often.
    assert naive_aborts / runs > 2 * ALPHA


def test_harmful_canaries_are_aborted() -> None:
    rng = np.random.default_rng(7)
    for harm in (
        {"error": 0.08},  # 4x the stable error rate
        {"error": 0.02, "check_pass": 0.8},  # quality drops 0.1
        {"error": 0.02, "slow": 3.0},  # three times slower
    ):
        caught = sum(
            aborted(simulated_side(rng, 20, **harm), simulated_side(rng, 80, error=0.02))
            for _ in range(20)
        )
        assert caught >= 18, harm


def test_cumulative_counts_late_series_and_resets() -> None:
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    present = Series({"status": "200"}, [(0, 100), (1, 110), (2, 5), (3, 9), (4, 9)])  # restart
    late = Series({"status": "200"}, [(2, 4), (4, 6)])  # appeared after the start, gap at 3
    assert cumulative([present, late], times).tolist() == [0, 10, 19, 23, 25]
