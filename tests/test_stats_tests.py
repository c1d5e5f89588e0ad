"""Two-sample tests, Bayesian comparison, sequential p-values, SRM and Holm."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from scipy import stats

from promptyard.errors import ConfigError
from promptyard.stats import bayes, multiple, sequential, srm, twosample

REL = 1e-4


# --- two samples -----------------------------------------------------------------------------


def test_two_proportion_ztest_reference() -> None:
    # Issue 4: counts [5, 12] of [83, 99] -> z = -1.4078, p = 0.1592 (first minus second):
    # treatment 5/83 against control 12/99.
    result = twosample.two_proportions_ztest(12, 99, 5, 83)
    assert result.statistic == pytest.approx(-1.4078, rel=REL)
    assert result.p_value == pytest.approx(0.159181, rel=REL)
    assert round(result.p_value, 4) == 0.1592
    assert result.difference == pytest.approx(5 / 83 - 12 / 99)
    assert result.ci_low < result.difference < result.ci_high
    one_sided = twosample.two_proportions_ztest(12, 99, 5, 83, alternative="less")
    assert one_sided.p_value == pytest.approx(result.p_value / 2, rel=1e-9)


def test_two_proportion_ztest_bad_input() -> None:
    with pytest.raises(ConfigError, match="exceed"):
        twosample.two_proportions_ztest(10, 5, 1, 5)
    with pytest.raises(ConfigError, match="at least one unit"):
        twosample.two_proportions_ztest(0, 0, 1, 5)
    no_successes = twosample.two_proportions_ztest(0, 50, 0, 50)
    assert no_successes.p_value == 1.0


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    control, treatment = rng.normal(10, 2, 50), rng.normal(11, 4, 70)
    result = twosample.welch_t(control, treatment)
    reference = stats.ttest_ind(treatment, control, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    interval = reference.confidence_interval()
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))


def test_relative_lift_delta_method() -> None:
    lift = twosample.relative_lift(10.0, 0.5, 12.0, 0.6)
    assert lift.lift == pytest.approx(0.2)
    se = math.sqrt(0.6**2 / 100 + 144 * 0.25 / 10**4)
    assert lift.se == pytest.approx(se)
    assert lift.ci_low == pytest.approx(0.2 - 1.959963984540054 * se)
    assert twosample.relative_lift(0.0, 0.1, 1.0, 0.1).lift is None


def test_lift_over_a_negative_control_keeps_the_sign_of_the_difference() -> None:
    # Issue 19.5: a control mean of −10 improving to −5 printed a lift of −50% (t/c − 1);
    # (t − c)/|c| says +50%. The delta-method se is the same for either sign of c.
    lift = twosample.relative_lift(-10.0, 0.5, -5.0, 0.6)
    assert lift.lift == pytest.approx(0.5)
    se = math.sqrt(0.6**2 / 100 + 25 * 0.25 / 10**4)
    assert lift.se == pytest.approx(se, rel=1e-12)
    assert (lift.ci_low, lift.ci_high) == pytest.approx((0.5 - 1.959964 * se, 0.5 + 1.959964 * se))
    # A seeded simulation: the delta-method se of (t − c)/|c| matches the spread of the
    # lift over draws of the two means.
    rng = np.random.default_rng(21)
    c, t = rng.normal(-10, 0.5, 200_000), rng.normal(-5, 0.6, 200_000)
    assert np.std((t - c) / np.abs(c)) == pytest.approx(se, rel=0.02)
    # Through Welch's test on data with a negative mean.
    result = twosample.welch_t([-12.0, -8.0, -10.0, -10.5], [-4.0, -6.0, -5.0, -5.5])
    assert result.lift.lift == pytest.approx((-5.125 + 10.125) / 10.125)


def test_rate_lift_interval_stops_at_minus_100_percent() -> None:
    # Issue 21.5: 6/20 → 1/20, the delta-method lower bound is −117%; a rate cannot fall
    # below 0, so the lift cannot fall below −100%.
    result = twosample.two_proportions_ztest(6, 20, 1, 20)
    p_c, p_t = 0.3, 0.05
    se = math.sqrt((p_t * (1 - p_t) / 20) / p_c**2 + p_t**2 * (p_c * (1 - p_c) / 20) / p_c**4)
    z = stats.norm.isf(0.025)
    assert result.lift.lift == pytest.approx(p_t / p_c - 1)
    assert result.lift.se == pytest.approx(se, rel=1e-12)
    assert p_t / p_c - 1 - z * se < -1.15  # what the normal interval would say
    assert result.lift.ci_low == -1.0
    assert result.lift.ci_high == pytest.approx(p_t / p_c - 1 + z * se, rel=1e-12)


# --- Bayesian ---------------------------------------------------------------------------------


def test_prob_beta_greater_large_counts_in_chunks() -> None:
    # 1.5 million terms: summed in chunks; agrees with the normal approximation.
    a1, b1, a2, b2 = 1_500_001, 8_500_001, 1_497_001, 8_503_001
    exact = bayes.prob_beta_greater(a1, b1, a2, b2)
    m1, m2 = a1 / (a1 + b1), a2 / (a2 + b2)
    v1 = m1 * (1 - m1) / (a1 + b1 + 1)
    v2 = m2 * (1 - m2) / (a2 + b2 + 1)
    assert exact == pytest.approx(stats.norm.cdf((m1 - m2) / math.sqrt(v1 + v2)), abs=2e-3)


def test_prob_beta_greater_closed_form() -> None:
    # X ~ Beta(2, 1) (density 2x) beats a uniform with probability ∫ 2x·x dx = 2/3.
    assert bayes.prob_beta_greater(2, 1, 1, 1) == pytest.approx(2 / 3, rel=1e-12)
    assert bayes.prob_beta_greater(1, 1, 2, 1) == pytest.approx(1 / 3, rel=1e-12)
    assert bayes.prob_beta_greater(1.5, 2.5, 0.5, 1.5) is None


def test_beta_binomial_exact_matches_monte_carlo() -> None:
    result = bayes.beta_binomial(120, 1000, 140, 1000)
    assert result.method == "exact"
    rng = np.random.default_rng(99)
    c = rng.beta(result.control_alpha, result.control_beta, 1_000_000)
    t = rng.beta(result.treatment_alpha, result.treatment_beta, 1_000_000)
    assert result.prob_treatment_better == pytest.approx(np.mean(t > c), abs=2e-3)
    assert result.expected_loss_treatment == pytest.approx(np.mean(np.maximum(c - t, 0)), rel=0.02)
    assert result.expected_loss_control - result.expected_loss_treatment == pytest.approx(
        result.difference
    )
    assert result.ci_low < result.difference < result.ci_high


def test_beta_binomial_symmetry_and_monte_carlo_fallback() -> None:
    same = bayes.beta_binomial(50, 100, 50, 100)
    assert same.prob_treatment_better == pytest.approx(0.5, abs=1e-9)
    jeffreys = bayes.beta_binomial(120, 1000, 140, 1000, prior_alpha=0.5, prior_beta=0.5, seed=3)
    assert jeffreys.method == "monte-carlo"
    assert jeffreys == bayes.beta_binomial(
        120, 1000, 140, 1000, prior_alpha=0.5, prior_beta=0.5, seed=3
    )
    assert jeffreys.prob_treatment_better == pytest.approx(0.907, abs=0.01)
    with pytest.raises(ConfigError):
        bayes.beta_binomial(5, 3, 1, 3)


def test_gaussian_posterior_closed_form() -> None:
    result = bayes.gaussian_posterior(1.0, 0.1, 1.2, 0.1)
    sd = math.sqrt(0.02)
    assert result.prob_treatment_better == pytest.approx(stats.norm.cdf(0.2 / sd))
    loss = sd * stats.norm.pdf(0.2 / sd) - 0.2 * stats.norm.cdf(-0.2 / sd)
    assert result.expected_loss_treatment == pytest.approx(loss)
    assert result.expected_loss_control == pytest.approx(loss + 0.2)


def test_prob_best_is_seeded_and_sums_to_one() -> None:
    result = bayes.prob_best_beta([120, 140, 130], [1000, 1000, 1000], seed=1)
    probs = result.probabilities
    assert sum(probs) == pytest.approx(1.0)
    assert probs.index(max(probs)) == 1
    assert result == bayes.prob_best_beta([120, 140, 130], [1000, 1000, 1000], seed=1)
    assert result.method == "monte-carlo" and result.draws == 100_000
    assert result.standard_error == pytest.approx(
        max(math.sqrt(p * (1 - p) / 100_000) for p in probs)
    )
    lower = bayes.prob_best_gaussian([5.0, 4.0], [0.1, 0.1], higher_is_better=False)
    assert lower.probabilities[1] == pytest.approx(stats.norm.cdf(1 / math.sqrt(0.02)))


def test_two_variants_get_the_exact_probability_analyze_reports() -> None:
    # Issue 21.5: allocate said 0.95551 (Monte Carlo) where analyze said 0.95491 (exact).
    # Reference: P(X1 > X0) for Beta(1 + 40, 1 + 160) vs Beta(1 + 55, 1 + 145) by quadrature.
    from scipy import integrate

    a0, b0, a1, b1 = 41, 161, 56, 146
    reference = integrate.quad(
        lambda x: stats.beta.pdf(x, a1, b1) * stats.beta.cdf(x, a0, b0), 0, 1, epsabs=1e-13
    )[0]
    best = bayes.prob_best_beta([40, 55], [200, 200])
    assert best.method == "exact" and best.standard_error == 0.0
    assert best.probabilities[1] == pytest.approx(reference, abs=1e-10)
    analyzed = bayes.beta_binomial(40, 200, 55, 200)
    assert best.probabilities[1] == analyzed.prob_treatment_better
    lower = bayes.prob_best_beta([40, 55], [200, 200], higher_is_better=False)
    assert lower.probabilities == pytest.approx([reference, 1 - reference], abs=1e-10)
    gaussian = bayes.prob_best_gaussian([1.0, 1.3], [0.2, 0.1])
    assert gaussian.probabilities[1] == pytest.approx(stats.norm.cdf(0.3 / math.hypot(0.2, 0.1)))


# --- sequential ------------------------------------------------------------------------------


def test_msprt_single_look_literal() -> None:
    # log Λ = ½·ln(1/2) + 1·4 / (2·1·2) = 1 − 0.34657; p = exp(−log Λ)
    result = sequential.msprt_p_value(2.0, 1.0, tau=1.0)
    assert result.p_value == pytest.approx(math.exp(-(1 + 0.5 * math.log(0.5))), rel=1e-12)
    assert sequential.msprt_p_value(0.0, 1.0, tau=1.0).p_value == 1.0


def test_msprt_running_minimum() -> None:
    result = sequential.msprt_sequence([3.0, 0.0], [1.0, 1.0], tau=1.0)
    assert result.p_value < result.last_look_p_value == 1.0
    assert result.looks == 2


def test_msprt_always_valid_under_the_null() -> None:
    # Looking after every unit must not inflate false positives beyond alpha.
    rng = np.random.default_rng(2024)
    runs = 400
    for binary, tau in ((False, 1.0), (False, 0.2), (True, 0.05)):
        rejections = 0
        for _ in range(runs):
            arm = rng.random(1500) < 0.5
            values = (rng.random(1500) < 0.3).astype(float) if binary else rng.normal(0, 1, 1500)
            result = sequential.msprt_two_sample_stream(values, arm, tau=tau, binary=binary)
            rejections += result.p_value <= 0.05
        assert rejections / runs <= 0.05


def test_msprt_detects_a_real_effect() -> None:
    rng = np.random.default_rng(7)
    arm = rng.random(4000) < 0.5
    values = (rng.random(4000) < np.where(arm, 0.36, 0.30)).astype(float)
    result = sequential.msprt_two_sample_stream(values, arm, tau=0.03, binary=True)
    assert result.p_value < 0.01
    assert result.estimate == pytest.approx(0.06, abs=0.03)
    with pytest.raises(ConfigError, match="varying outcomes"):
        sequential.msprt_two_sample_stream([1.0, 1.0, 1.0, 1.0], [True, False, True, False], tau=1)


def test_msprt_stream_variance_is_stable_far_from_zero() -> None:
    # Issue 21.3: Σx² − (Σx)²/n loses every digit for values of sd 1 around 1e8 (p 0.898
    # instead of 0.005). Reference: each look's two-pass variance (mean first, then the
    # squared deviations) of the prefix, through msprt_sequence.
    rng = np.random.default_rng(5)
    arm = rng.random(300) < 0.5
    values = rng.normal(0, 1, 300) + np.where(arm, 0.5, 0.0) + 1e8
    estimates, variances = [], []
    for end in range(1, values.size + 1):
        t, c = values[:end][arm[:end]], values[:end][~arm[:end]]
        if t.size >= 30 and c.size >= 30:
            estimates.append(float(np.mean(t - 1e8) - np.mean(c - 1e8)))
            variances.append(float(np.var(t, ddof=1) / t.size + np.var(c, ddof=1) / c.size))
    expected = sequential.msprt_sequence(estimates, variances, tau=0.3)
    result = sequential.msprt_two_sample_stream(values, arm, tau=0.3)
    assert result.looks == expected.looks
    assert result.p_value == pytest.approx(expected.p_value, rel=1e-6)
    assert result.p_value < 0.05  # the decision the data support
    shifted_back = sequential.msprt_two_sample_stream(values - 1e8, arm, tau=0.3)
    assert result.p_value == pytest.approx(shifted_back.p_value, rel=1e-6)


@pytest.mark.parametrize("estimate", [-2.5, -0.4, 0.0, 0.7, 3.0])
def test_one_sided_msprt_is_the_half_normal_mixture(estimate: float) -> None:
    # Λ₁ = ∫ over the tested side of 2·φ_τ(θ) · L(θ)/L(0), integrated numerically.
    from scipy import integrate

    variance, tau = 0.8, 1.3

    def ratio(theta: float) -> float:
        return (
            2
            * stats.norm.pdf(theta, scale=tau)
            * math.exp((2 * theta * estimate - theta * theta) / (2 * variance))
        )

    for alternative, (low, high) in (("greater", (0, math.inf)), ("less", (-math.inf, 0))):
        expected = integrate.quad(ratio, low, high, epsabs=0, epsrel=1e-12)[0]
        result = sequential.msprt_p_value(estimate, variance, tau=tau, alternative=alternative)
        assert result.p_value == pytest.approx(min(1.0, 1 / expected), rel=1e-9)
        assert result.method == "msprt-half-normal-mixture"
        assert result.alternative == alternative
    two_sided = sequential.msprt_p_value(estimate, variance, tau=tau)
    assert two_sided.alternative == "two-sided" and two_sided.method == "msprt-normal-mixture"
    with pytest.raises(ConfigError, match="alternative"):
        sequential.msprt_p_value(estimate, variance, tau=tau, alternative="lower")  # type: ignore[arg-type]


def test_one_sided_msprt_looks_at_one_side_only() -> None:
    rng = np.random.default_rng(11)
    arm = rng.random(4000) < 0.5
    # The treatment is worse (a lower rate): "less" finds it sooner than the two-sided test,
    # "greater" does not find it at all.
    values = (rng.random(4000) < np.where(arm, 0.27, 0.30)).astype(float)
    args = (values, arm)
    two = sequential.msprt_two_sample_stream(*args, tau=0.03, binary=True)
    less = sequential.msprt_two_sample_stream(*args, tau=0.03, binary=True, alternative="less")
    greater = sequential.msprt_two_sample_stream(
        *args, tau=0.03, binary=True, alternative="greater"
    )
    assert less.p_value < two.p_value
    assert less.p_value < 0.05
    assert greater.p_value > 0.5
    # Always valid: under the null, looking after every unit stays within alpha.
    runs, rejections = 300, 0
    for _ in range(runs):
        arm = rng.random(1500) < 0.5
        result = sequential.msprt_two_sample_stream(
            rng.normal(0, 1, 1500), arm, tau=0.2, alternative="less"
        )
        rejections += result.p_value <= 0.05
    assert rejections / runs <= 0.05


# --- SRM and Holm ---------------------------------------------------------------------------


def test_srm_reference_values() -> None:
    flagged = srm.srm_check({"a": 4800, "b": 5200}, {"a": 50, "b": 50})
    assert flagged.statistic == pytest.approx(16.0, rel=REL)
    # Issue 4: p = 6.33e-5 (exactly 6.3342e-5).
    assert flagged.p_value == pytest.approx(6.3342e-5, rel=REL)
    assert f"{flagged.p_value:.2e}" == "6.33e-05"
    assert flagged.flagged
    fine = srm.srm_check({"a": 5000, "b": 5200}, {"a": 50, "b": 50})
    assert not fine.flagged
    assert fine.p_value == pytest.approx(0.04767, rel=1e-3)


def test_srm_unequal_weights_and_missing_variant() -> None:
    ok = srm.srm_check({"a": 9000, "b": 1000}, {"a": 90, "b": 10})
    assert ok.statistic == pytest.approx(0.0) and not ok.flagged
    missing = srm.srm_check({"a": 100}, {"a": 50, "b": 50})
    assert missing.observed == [100, 0] and missing.flagged
    with pytest.raises(ConfigError, match="no weight"):
        srm.srm_check({"a": 1, "z": 1}, {"a": 50, "b": 50})


def test_holm() -> None:
    assert multiple.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert multiple.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert multiple.holm([]) == []
    with pytest.raises(ConfigError):
        multiple.holm([1.5])


def test_every_public_name_resolves() -> None:
    import promptyard.stats as package

    for name in package.__all__:
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError):
        package.no_such_function  # noqa: B018


# --- NaN, infinite and fractional inputs to the API (issue 21.4) ----------------------------

BAD_NUMBERS = {
    "beta-binomial NaN successes": (
        lambda: bayes.beta_binomial(math.nan, 10, 5, 10),
        "control successes must be a whole",
    ),
    "beta-binomial fractional successes": (
        lambda: bayes.beta_binomial(3, 10, 5.5, 10),
        "treatment successes must be a whole",
    ),
    "beta-binomial infinite n": (
        lambda: bayes.beta_binomial(3, math.inf, 5, 10),
        "control units must be a whole",
    ),
    "gaussian NaN mean": (
        lambda: bayes.gaussian_posterior(math.nan, 1, 0, 1),
        "control mean must be a finite",
    ),
    "gaussian infinite se": (
        lambda: bayes.gaussian_posterior(0, 1, 0, math.inf),
        "treatment se must be a finite",
    ),
    "gaussian overflowing difference": (
        lambda: bayes.gaussian_posterior(-1.7e308, 1, 1.7e308, 1),
        "overflows",
    ),
    "prob-best NaN successes": (
        lambda: bayes.prob_best_beta([math.nan, 1], [10, 10]),
        "variant 1 successes",
    ),
    "prob-best infinite trials": (
        lambda: bayes.prob_best_beta([1, 1], [10, math.inf]),
        "variant 2 units",
    ),
    "prob-best negative prior": (
        lambda: bayes.prob_best_beta([1, 1], [10, 10], prior_alpha=-1),
        "prior alpha",
    ),
    "srm fractional count": (
        lambda: srm.srm_check({"a": 10.7, "b": 10}, {"a": 1, "b": 1}),
        "got 10.7",
    ),
    "srm NaN count": (lambda: srm.srm_check({"a": math.nan, "b": 10}, {"a": 1, "b": 1}), "nan"),
    "srm infinite count": (
        lambda: srm.srm_check({"a": 5, "b": math.inf}, {"a": 1, "b": 1}),
        "variant 'b'",
    ),
}


@pytest.mark.parametrize("call, message", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_nan_infinite_or_fractional_inputs_are_config_errors(call: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        call()


def test_whole_counts_given_as_floats_still_work() -> None:
    # 10.0 units are 10 units: the same answer as the int, exactly (chi-square reference).
    as_float = srm.srm_check({"a": 4800.0, "b": 5200.0}, {"a": 50, "b": 50})
    assert as_float.p_value == pytest.approx(stats.chi2.sf(16.0, 1), rel=1e-12)
    assert bayes.beta_binomial(3.0, 10.0, 5, 10) == bayes.beta_binomial(3, 10, 5, 10)


# --- small counts and rates at 0% / 100% (issue 19.4) -----------------------------------------


def _boschloo_by_brute_force(x_c: int, n_c: int, x_t: int, n_t: int) -> float:
    """sup over the common rate π of P(Fisher's one-sided p ≤ observed), on a fine grid."""
    import itertools

    def fisher_less(a: int, b: int) -> float:  # P(treatment count ≥ b | margins)
        return stats.hypergeom.sf(b - 1, n_c + n_t, a + b, n_t)

    observed = fisher_less(x_c, x_t)
    tables = [
        (a, b) for a, b in itertools.product(range(n_c + 1), range(n_t + 1))
        if fisher_less(a, b) <= observed + 1e-12
    ]  # fmt: skip
    grid = np.linspace(0, 1, 20_001)
    probability = sum(
        stats.binom.pmf(a, n_c, grid) * stats.binom.pmf(b, n_t, grid) for a, b in tables
    )
    return float(np.max(probability))


def test_tiny_or_boundary_counts_get_the_exact_test_and_newcombes_interval() -> None:
    # 0/2 vs 2/2: the z-test said p = 0.046 and [+100, +100] pp.
    from statsmodels.stats.proportion import confint_proportions_2indep

    result = twosample.two_proportions_test(0, 2, 2, 2)
    assert result.test == "boschloo-exact"
    assert result.p_value == pytest.approx(0.125, abs=1e-9)  # two-sided: 2 × 1/16
    greater = twosample.two_proportions_test(0, 2, 2, 2, alternative="greater")
    assert greater.p_value == pytest.approx(_boschloo_by_brute_force(0, 2, 2, 2), abs=1e-6)
    assert stats.fisher_exact([[0, 2], [2, 0]]).pvalue == pytest.approx(1 / 3)  # more conservative
    newcombe = confint_proportions_2indep(2, 2, 0, 2, method="newcomb", compare="diff")
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(newcombe), abs=1e-12)
    assert result.ci_low == pytest.approx(0.0700, abs=1e-4) and result.ci_high == 1.0
    # A small table off the boundary, against the brute-force supremum and statsmodels.
    small = twosample.two_proportions_test(2, 15, 7, 14, alternative="greater")
    assert small.test == "boschloo-exact"
    assert small.p_value == pytest.approx(_boschloo_by_brute_force(2, 15, 7, 14), abs=1e-6)
    newcombe = confint_proportions_2indep(7, 14, 2, 15, method="newcomb", compare="diff")
    assert (small.ci_low, small.ci_high) == pytest.approx(tuple(newcombe), abs=1e-12)
    # Large arms with an empty one: Fisher (Boschloo's search would be slow).
    empty = twosample.two_proportions_test(0, 5000, 3, 5000)
    assert empty.test == "fisher-exact"
    assert empty.p_value == pytest.approx(stats.fisher_exact([[0, 3], [5000, 4997]]).pvalue)
    # Plenty of data, nothing at the boundary: the z-test as before.
    assert twosample.two_proportions_test(300, 1000, 350, 1000).test == "two-proportions-z"
