"""Paired tests for base vs head on the same golden cases (what the merge gate calls)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from promptyard.errors import ConfigError
from promptyard.stats import paired as T
from promptyard.stats.power import mcnemar_sample_size, paired_t_sample_size

REL = 1e-4
TABLE = [[101, 121], [59, 33]]  # rows: base pass/fail; columns: head pass/fail


def _outcomes(table: list[list[int]]) -> tuple[list[bool], list[bool]]:
    base: list[bool] = []
    head: list[bool] = []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            base += [i == 0] * count
            head += [j == 0] * count
    return base, head


# --- McNemar -------------------------------------------------------------------------------


def test_mcnemar_exact_reference() -> None:
    result = T.mcnemar_from_table(TABLE)
    # Issue 4: p = 4.434e-6 (statsmodels: 4.4344492637551645e-06).
    assert result.p_value == pytest.approx(4.43445e-6, rel=REL)
    assert f"{result.p_value:.3e}" == "4.434e-06"
    assert result.test == "mcnemar-exact"
    assert (result.regressions, result.improvements, result.n) == (121, 59, 314)


def test_mcnemar_chi_square_reference_with_and_without_correction() -> None:
    corrected = T.mcnemar_from_table(TABLE, method="chi2")
    assert corrected.statistic == pytest.approx(20.6722, rel=REL)
    assert corrected.test == "mcnemar-chi2-cc"
    assert corrected.p_value == pytest.approx(stats.chi2.sf(20.6722222, 1), rel=REL)
    plain = T.mcnemar_from_table(TABLE, method="chi2", correction=False)
    assert plain.statistic == pytest.approx(62**2 / 180, rel=1e-12)  # 21.3556
    assert plain.p_value < corrected.p_value


def test_mcnemar_one_sided_for_regression_gates() -> None:
    # 121 regressions vs 59 improvements: head is worse.
    less = T.mcnemar_from_table(TABLE, alternative="less")
    greater = T.mcnemar_from_table(TABLE, alternative="greater")
    two = T.mcnemar_from_table(TABLE)
    assert less.p_value == pytest.approx(two.p_value / 2, rel=1e-9)
    assert less.p_value == pytest.approx(stats.binom.cdf(59, 180, 0.5), rel=1e-9)
    assert greater.p_value > 0.99
    chi_less = T.mcnemar_from_table(TABLE, method="chi2", alternative="less")
    assert chi_less.p_value == pytest.approx(stats.norm.cdf(-math.sqrt(20.6722222)), rel=1e-6)


def test_mcnemar_one_sided_continuity_correction_moves_toward_the_null() -> None:
    # Issue 21.2: 5 regressions, 10 improvements, "is head worse?" — the corrected normal
    # p is Φ((10 − 5 + 1)/√15) = 0.939, next to the exact binomial 0.941 (it was 0.849).
    counts = {"both_pass": 50, "regressions": 5, "improvements": 10, "both_fail": 35}
    less = T.mcnemar_from_counts(**counts, method="chi2", alternative="less")
    assert less.p_value == pytest.approx(stats.norm.cdf(6 / math.sqrt(15)), rel=1e-12)
    assert less.p_value == pytest.approx(0.9393, abs=1e-4)
    assert stats.binom.cdf(10, 15, 0.5) == pytest.approx(0.9408, abs=1e-4)
    greater = T.mcnemar_from_counts(**counts, method="chi2", alternative="greater")
    assert greater.p_value == pytest.approx(stats.norm.sf(4 / math.sqrt(15)), rel=1e-12)
    for alternative in ("less", "greater", "two-sided"):
        none = T.mcnemar_from_counts(
            both_pass=3, regressions=0, improvements=0, both_fail=2, method="chi2",
            alternative=alternative,
        )  # fmt: skip
        assert none.p_value == 1.0
    # Against the exact binomial tail on every table up to 40 + 40 discordant pairs: the
    # correction keeps the one-sided p within 0.023 (the worst is one discordant pair).
    for b in range(41):
        for c in range(41):
            if b + c == 0:
                continue
            for side in ("less", "greater"):
                approx = T.mcnemar_from_counts(
                    both_pass=0, regressions=b, improvements=c, both_fail=1, method="chi2",
                    alternative=side,
                ).p_value  # fmt: skip
                exact = stats.binomtest(c, b + c, 0.5, alternative=side).pvalue
                assert abs(approx - exact) < 0.023, (b, c, side)


def test_mcnemar_difference_and_interval() -> None:
    result = T.mcnemar_from_table(TABLE)
    assert result.base_rate == pytest.approx(222 / 314)
    assert result.head_rate == pytest.approx(160 / 314)
    assert result.difference == pytest.approx((59 - 121) / 314)
    assert result.ci_low < result.difference < result.ci_high < 0
    # Agresti–Min: Wald after adding 0.5 to each cell.
    d = (59.5 - 121.5) / 316
    se = math.sqrt(181 - 62**2 / 316) / 316
    assert result.ci_low == pytest.approx(d - 1.959963984540054 * se, rel=1e-9)


def test_mcnemar_on_outcome_lists_matches_table() -> None:
    base, head = _outcomes(TABLE)
    from_lists = T.mcnemar(base, head)
    assert from_lists == T.mcnemar_from_table(TABLE)
    assert T.mcnemar([1, 0, 1], [1, 0, 1]).p_value == 1.0  # no discordant pair


def test_mcnemar_bad_input() -> None:
    with pytest.raises(ConfigError, match="pair them"):
        T.mcnemar([True, False], [True])
    with pytest.raises(ConfigError, match="true/false"):
        T.mcnemar([2, 0], [1, 0])
    with pytest.raises(ConfigError, match="2×2"):
        T.mcnemar_from_table([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ConfigError, match="alternative"):
        T.mcnemar_from_table(TABLE, alternative="smaller")
    with pytest.raises(ConfigError, match="at least one"):
        T.mcnemar_from_table([[0, 0], [0, 0]])


# --- scores ----------------------------------------------------------------------------------

BASE = [0.8, 0.6, 0.9, 0.7, 0.5, 0.95, 0.4, 0.85, 0.75, 0.65]
HEAD = [0.7, 0.65, 0.8, 0.6, 0.45, 0.9, 0.3, 0.8, 0.7, 0.5]


def test_paired_t_matches_scipy_with_interval() -> None:
    result = T.paired_t(BASE, HEAD)
    reference = stats.ttest_rel(HEAD, BASE)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.difference == pytest.approx(np.mean(np.subtract(HEAD, BASE)))
    assert result.ci_low < result.difference < result.ci_high < 0
    assert result.df == 9
    less = T.paired_t(BASE, HEAD, alternative="less")
    assert less.p_value == pytest.approx(result.p_value / 2, rel=1e-9)


def test_paired_t_constant_shift() -> None:
    result = T.paired_t([1, 2, 3], [0, 1, 2])
    assert result.p_value == 0.0 and result.ci_low == result.ci_high == -1.0
    same = T.paired_t([1, 2, 3], [1, 2, 3])
    assert same.p_value == 1.0


def test_wilcoxon_matches_scipy() -> None:
    result = T.wilcoxon(BASE, HEAD)
    # The differences tie as written (0.8 − 0.7 and 0.9 − 0.8 are both −0.1): scipy's exact
    # permutation distribution of the rounded differences; on the raw floats scipy breaks
    # those ties by rounding noise (0.0176 instead of 0.0117).
    reference = stats.wilcoxon(
        np.round(np.subtract(HEAD, BASE), 12), method=stats.PermutationMethod(n_resamples=np.inf)
    )
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.statistic == reference.statistic
    assert result.ci_low is None
    assert T.wilcoxon([1, 1], [1, 1]).p_value == 1.0


def test_paired_bootstrap_is_seeded() -> None:
    a = T.paired_bootstrap(BASE, HEAD, seed=7)
    b = T.paired_bootstrap(BASE, HEAD, seed=7)
    c = T.paired_bootstrap(BASE, HEAD, seed=8)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.ci_low < a.difference < a.ci_high
    constant = T.paired_bootstrap([1, 2, 3], [2, 3, 4])
    assert constant.ci_low == constant.ci_high == 1.0


@pytest.mark.filterwarnings("ignore")  # scipy warns about the BCa interval it cannot compute
def test_paired_bootstrap_falls_back_to_percentile_when_bca_fails() -> None:
    # One tiny non-zero difference among zeros: BCa's acceleration is 0/0, its bounds NaN.
    base, head = [0.0] * 11, [0.0] * 10 + [1e-300]
    d = np.subtract(head, base)
    bca = stats.bootstrap(
        (d,), np.mean, n_resamples=999, method="BCa", rng=np.random.default_rng(3)
    ).confidence_interval
    assert math.isnan(bca.low) or math.isnan(bca.high)
    result = T.paired_bootstrap(base, head, n_resamples=999, seed=3)
    level = T.expanded_confidence(0.95, 11)
    assert (
        result.method == f"percentile at {level:.4g} (expanded for n = 11), 999 resamples, seed 3"
    )
    percentile = stats.bootstrap(
        (d,),
        np.mean,
        n_resamples=999,
        method="percentile",
        confidence_level=level,
        rng=np.random.default_rng(3),
    ).confidence_interval
    assert (result.ci_low, result.ci_high) == (percentile.low, percentile.high)
    assert result.ci_low <= result.difference <= result.ci_high
    # Data BCa handles keeps BCa.
    assert T.paired_bootstrap(BASE, HEAD, n_resamples=999).method.startswith("BCa at ")


def test_paired_scores_bad_input() -> None:
    with pytest.raises(ConfigError, match="pair them"):
        T.paired_t([1, 2, 3], [1, 2])
    with pytest.raises(ConfigError, match="at least 2"):
        T.paired_t([1], [2])
    with pytest.raises(ConfigError, match="NaN"):
        T.paired_t([1, float("nan")], [1, 2])


# --- repeated samples -------------------------------------------------------------------------


def test_clustered_mean_formula() -> None:
    values = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    clusters = ["a", "a", "b", "b", "c", "c"]
    result = T.clustered_mean(values, clusters)
    mean = 0.5
    sums = [1.0, -1.0, 0.0]  # per-cluster sums of residuals
    assert result.se == pytest.approx(math.sqrt(sum(s * s for s in sums)) / 6)
    assert result.naive_se == pytest.approx(math.sqrt(6 * 0.25) / 6)
    assert result.design_effect == pytest.approx((result.se / result.naive_se) ** 2)
    assert result.mean == mean and result.n_clusters == 3
    singletons = T.clustered_mean([1.0, 2.0, 4.0], ["a", "b", "c"])
    assert singletons.se == pytest.approx(singletons.naive_se)


def test_paired_repeated_pairs_case_means() -> None:
    rng = np.random.default_rng(3)
    base = {f"c{i}": list(rng.random(3)) for i in range(30)}
    head = {f"c{i}": list(rng.random(3) - 0.1) for i in range(30)}
    head["only-head"] = [1.0]
    result = T.paired_repeated(base, head)
    means_b = [np.mean(base[f"c{i}"]) for i in range(30)]
    means_h = [np.mean(head[f"c{i}"]) for i in range(30)]
    reference = stats.ttest_rel(means_h, means_b)
    assert result.n_cases == 30 and result.unpaired_cases == 1
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.difference == pytest.approx(np.mean(np.subtract(means_h, means_b)))
    assert result.n_base == result.n_head == 90
    assert result.ci_low < result.difference < result.ci_high


def test_eval_variance_components_recovers_simulation() -> None:
    from promptyard.stats.power import eval_variance_components

    rng = np.random.default_rng(11)
    n, k, omega, sigma = 4000, 4, 0.2, 0.3
    shift = rng.normal(0, omega, n)
    base = {str(i): list(rng.normal(0, sigma, k)) for i in range(n)}
    head = {str(i): list(shift[i] + rng.normal(0, sigma, k)) for i in range(n)}
    parts = eval_variance_components(base, head)
    assert parts.between_sd == pytest.approx(omega, rel=0.1)
    assert parts.within_sd_base == pytest.approx(sigma, rel=0.05)
    assert parts.within_sd_head == pytest.approx(sigma, rel=0.05)


# --- cases needed -----------------------------------------------------------------------------


def test_cases_needed_uses_observed_discordance() -> None:
    base = [True] * 90 + [False] * 10
    head = [True] * 85 + [False] * 5 + [True] * 2 + [False] * 8
    result = T.mcnemar_cases_needed(base, head, 0.03)
    expected = mcnemar_sample_size(0.07, -0.03, alternative="one-sided")
    assert result.n == expected.n
    assert result.assumptions["observed_discordant"] == pytest.approx(0.07)
    # Never below the drop itself: no discordance observed still plans with psi = drop.
    none = T.mcnemar_cases_needed([True] * 10, [True] * 10, 0.05)
    assert none.assumptions["discordant"] == pytest.approx(0.05)


def test_paired_t_cases_needed() -> None:
    result = T.paired_t_cases_needed(BASE, HEAD, 0.02)
    sd = float(np.std(np.subtract(HEAD, BASE), ddof=1))
    expected = paired_t_sample_size(mde=-0.02, sd=sd, alternative="one-sided")
    assert result.n == expected.n
    assert result.assumptions["observed_cases"] == 10
    flat = T.paired_t_cases_needed([1, 2], [1, 2], 0.1)
    assert flat.n == 2 and flat.assumptions["sd"] == 0.0


def test_results_are_json_ready() -> None:
    import json

    data = T.mcnemar_from_table(TABLE).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert isinstance(data["p_value"], float)


# --- exact tests over the non-zero differences (issue 19.1, 19.2) ---------------------------


def test_wilcoxon_ignores_unchanged_cases_when_choosing_exact() -> None:
    # 4 flips among 14 cases: scipy's `auto` counts the 10 zeros, goes normal, says 0.023;
    # the exact conditional p over the 4 non-zero differences is 1/16.
    base, head = [1] * 14, [1] * 10 + [0] * 4
    result = T.wilcoxon(base, head, alternative="less")
    assert result.p_value == 0.0625 and result.method == "wilcox, exact"
    assert stats.wilcoxon(np.subtract(head, base), alternative="less").pvalue < 0.03


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_wilcoxon_exact_matches_scipy_exact_modes(alternative: str) -> None:
    rng = np.random.default_rng(4)
    for size in (1, 5, 12, 25):
        d = np.round(rng.normal(0.2, 1, size), 6)
        padded = np.concatenate([d, np.zeros(7)])  # unchanged cases do not count
        result = T.wilcoxon(np.zeros(padded.size), padded, alternative=alternative)
        expected = stats.wilcoxon(d, alternative=alternative, method="exact").pvalue
        assert result.p_value == pytest.approx(expected, rel=1e-10, abs=1e-15)
        # Ties in |d|: the conditional permutation distribution, midranks.
        tied = np.round(d[:12], 0)
        tied = tied[tied != 0]
        if tied.size:
            exact = stats.wilcoxon(
                tied, alternative=alternative, method=stats.PermutationMethod(n_resamples=np.inf)
            ).pvalue
            ours = T.wilcoxon(np.zeros(tied.size), tied, alternative=alternative).p_value
            assert ours == pytest.approx(exact, rel=1e-10)


def test_wilcoxon_beyond_the_exact_limit_is_the_normal_approximation() -> None:
    rng = np.random.default_rng(8)
    d = rng.normal(0.05, 1, T.MAX_EXACT_SIGNED_RANKS + 1)
    result = T.wilcoxon(np.zeros(d.size), d)
    assert result.method == "wilcox, normal approximation"
    assert result.p_value == pytest.approx(stats.wilcoxon(d, method="approx").pvalue)


def test_binary_scores_get_mcnemars_exact_p() -> None:
    # 3 of 30 cases flip 1 → 0: the paired t says 0.042 (one-sided), McNemar's exact 0.125.
    base, head = [1.0] * 30, [1.0] * 27 + [0.0] * 3
    assert stats.ttest_rel(head, base, alternative="less").pvalue == pytest.approx(0.0416, abs=1e-4)
    for alternative in ("less", "two-sided", "greater"):
        result = T.paired_score_test(base, head, alternative=alternative)
        expected = T.mcnemar(
            [b == 1 for b in base], [h == 1 for h in head], alternative=alternative
        )
        assert result.test == "sign-flip-exact"
        assert result.p_value == expected.p_value
    assert T.paired_score_test(base, head, alternative="less").p_value == 0.125
    assert T.paired_score_test(base, head, test="wilcoxon", alternative="less").p_value == 0.125


def test_sign_flip_matches_enumerating_every_flip() -> None:
    # Rubric scores in {0, 0.5, 1}: differences of 0.5 and 1, enumerated over all 2^12 flips.
    import itertools

    base = [1, 1, 0.5, 1, 0.5, 0, 1, 1, 0.5, 1, 1, 0.5, 1, 0]
    head = [0.5, 0, 0.5, 1, 0, 0.5, 0, 1, 0, 0.5, 0.5, 1, 0.5, 0]
    d = np.subtract(head, base)
    nonzero = d[d != 0]
    observed = nonzero.sum()
    sums = np.array(
        [
            np.dot(signs, np.abs(nonzero))
            for signs in itertools.product((1, -1), repeat=nonzero.size)
        ]
    )
    expected = {
        "less": np.mean(sums <= observed + 1e-12),
        "greater": np.mean(sums >= observed - 1e-12),
        "two-sided": np.mean(np.abs(sums) >= abs(observed) - 1e-12),
    }
    for alternative, p in expected.items():
        result = T.paired_score_test(base, head, alternative=alternative)
        assert result.test == "sign-flip-exact"
        assert result.p_value == pytest.approx(p, rel=1e-12), alternative
    # Many distinct score values: the t-test, as asked.
    rng = np.random.default_rng(2)
    b, h = rng.random(30), rng.random(30)
    assert T.paired_score_test(b, h).test == "paired-t"


def test_bootstrap_interval_holds_its_level_for_small_samples() -> None:
    # Issue 19: with no change at n = 20, the plain BCa interval missed 0 in 8.7% of runs
    # (nominal 5%). The expanded level (Hesterberg 2015) keeps it near 5%: a seeded
    # simulation of 1,000 runs (± 1.4% at 2 sd around 5%).
    import warnings

    assert T.expanded_confidence(0.95, 20) == pytest.approx(
        1 - 2 * stats.norm.cdf(math.sqrt(20 / 19) * stats.t.ppf(0.025, 19)), rel=1e-12
    )
    rng = np.random.default_rng(20)
    misses = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for run in range(1000):
            base = rng.normal(0.6, 0.2, 20)
            head = base + rng.normal(0, 0.1, 20)  # no change on average
            result = T.paired_bootstrap(base, head, n_resamples=1000, seed=run)
            misses += not result.ci_low <= 0 <= result.ci_high
    assert misses / 1000 <= 0.07
    assert "expanded for n = 20" in result.method


@pytest.mark.parametrize(
    "table, message",
    [
        ([[1, 2.7], [3, 4]], r"cell \[0\]\[1\] must be a whole number ≥ 0, got 2.7"),
        ([[1, 2], [3, math.nan]], r"cell \[1\]\[1\] .* got nan"),
        ([[1, -2], [3, 4]], r"cell \[0\]\[1\] .* got -2"),
    ],
)
def test_mcnemar_table_refuses_non_integer_cells(table: list[list[float]], message: str) -> None:
    # Issue 19: int() truncated 2.7 regressions to 2, as mcnemar_from_counts never did.
    with pytest.raises(ConfigError, match=message):
        T.mcnemar_from_table(table)
    with pytest.raises(ConfigError, match="regressions must be a whole number"):
        T.mcnemar_from_counts(both_pass=1, regressions=2.5, improvements=1, both_fail=1)
    # Whole numbers stored as floats are counts: the exact binomial p of 2 vs 3.
    as_floats = T.mcnemar_from_table([[1.0, 2.0], [3.0, 4.0]])
    assert as_floats.p_value == pytest.approx(stats.binomtest(3, 5, 0.5).pvalue, rel=1e-12)
