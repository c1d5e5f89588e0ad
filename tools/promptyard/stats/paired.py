"""Paired tests: base vs head on the same cases (what the merge gate runs).

Arguments come in the order (base, head), one value per case in the same case order, and
every difference is `head − base`; `alternative="less"` tests that head is below base (a
regression), `"greater"` that it is above, `"two-sided"` either.

- pass/fail per case: `mcnemar(base, head)` (or `mcnemar_from_counts` / `mcnemar_from_table`)
  — exact binomial test on the discordant pairs by default, or chi-square with or without
  continuity correction; with a confidence interval of the difference in pass rate;
- scores per case: `paired_t(base, head)`, `wilcoxon(base, head)` (exact over the
  non-zero differences), `sign_flip(base, head)` (exact permutation test of the mean, for
  scores with few distinct values), `paired_score_test` (the one the merge gate runs), and
  `paired_bootstrap(base, head)` (seeded, reproducible interval of the mean difference);
- repeated samples per case: `paired_repeated(base, head)` pairs the per-case means
  (mapping case id -> scores of each repeat) and gives the clustered standard error of the
  difference; `clustered_mean(values, clusters)` is the clustered (cluster-robust) standard
  error of one mean (Miller 2024, "Adding Error Bars to Evals", §3);
- cases needed to detect a drop: `mcnemar_cases_needed(base, head, drop)` and
  `paired_t_cases_needed(base, head, drop)` estimate the variance from the observed pairs
  and return a `SampleSize` (see `promptyard.stats.power`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from promptyard.errors import ConfigError
from promptyard.stats._base import (
    Alternative,
    Result,
    as_float_array,
    check_alternative,
    check_count,
    check_probability,
    check_seed,
    shown,
)
from promptyard.stats.power import SampleSize, mcnemar_sample_size, paired_t_sample_size
from promptyard.stats.power._base import _sample_size

McNemarMethod = Literal["exact", "chi2"]


@dataclass(frozen=True)
class PairedBinaryResult(Result):
    """McNemar's test on paired pass/fail outcomes.

    `regressions` = cases base passed and head failed, `improvements` = the reverse.
    `difference` = head pass rate − base pass rate; `ci_low`/`ci_high` its interval at
    `confidence` (Agresti–Min 2005: Wald after adding 0.5 to each cell of the 2×2 table).
    `test` is mcnemar-exact, mcnemar-chi2 or mcnemar-chi2-cc (continuity corrected);
    `statistic` is the chi-square of a two-sided chi2 test, the signed z of a one-sided one
    (the correction moves toward the null on the tested side), or, for the exact test, the
    improvements count.
    """

    test: str
    n: int
    both_pass: int
    regressions: int
    improvements: int
    both_fail: int
    base_rate: float
    head_rate: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    statistic: float
    p_value: float
    alternative: str


@dataclass(frozen=True)
class PairedContinuousResult(Result):
    """A paired test on per-case scores (`difference` is the mean of head − base).

    `test` is paired-t, wilcoxon, sign-flip-exact or bootstrap; `ci_low`/`ci_high` are None
    when the test has no interval (Wilcoxon); `statistic`, `p_value`, `df`, `se` are None
    when not applicable; `method` details how the p-value or interval was computed.
    """

    test: str
    n: int
    base_mean: float
    head_mean: float
    difference: float
    median_difference: float
    ci_low: float | None
    ci_high: float | None
    confidence: float
    statistic: float | None
    p_value: float | None
    alternative: str
    df: float | None = None
    se: float | None = None
    method: str | None = None


@dataclass(frozen=True)
class ClusteredMean(Result):
    """A mean over repeated samples with its clustered standard error.

    `se` = √(Σ_c (Σ_{i∈c} (x_i − x̄))²) / N (Miller 2024, eq. for clustered SE);
    `naive_se` treats every sample as independent; `design_effect` = (se / naive_se)².
    The interval is normal at `confidence`.
    """

    mean: float
    se: float
    naive_se: float
    design_effect: float | None
    n_observations: int
    n_clusters: int
    ci_low: float
    ci_high: float
    confidence: float


@dataclass(frozen=True)
class PairedRepeatedResult(Result):
    """Base vs head with several samples per case: the difference of per-case means.

    `difference` = mean over cases of (head case mean − base case mean); `se` its clustered
    standard error (the sd of the per-case differences / √cases); interval and p-value from
    the t distribution with cases − 1 degrees of freedom. `between_sd` and `within_sd_*`
    are the variance components `promptyard.stats.power.eval_sample_size` takes.
    """

    test: str
    n_cases: int
    n_base: int
    n_head: int
    unpaired_cases: int
    base_mean: float
    head_mean: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    statistic: float
    p_value: float
    df: float
    alternative: str
    between_sd: float
    within_sd_base: float
    within_sd_head: float


# --- McNemar -------------------------------------------------------------------------------


def _as_outcomes(name: str, values: Sequence[bool] | Any) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ConfigError(f"{name}: expected a flat list of pass/fail outcomes")
    if array.dtype != bool:
        if not np.all(np.isin(array, [0, 1])):
            raise ConfigError(f"{name}: pass/fail outcomes must be true/false or 1/0")
        array = array.astype(bool)
    return array


def _paired_arrays(base: Any, head: Any, *, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    b = as_float_array("base", base)
    h = as_float_array("head", head)
    if b.size != h.size:
        raise ConfigError(f"base has {b.size} values and head {h.size}; pair them by case first")
    if b.size < minimum:
        raise ConfigError(f"need at least {minimum} paired cases, got {b.size}")
    return b, h


def mcnemar(
    base: Sequence[bool],
    head: Sequence[bool],
    *,
    method: McNemarMethod = "exact",
    correction: bool = True,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> PairedBinaryResult:
    """McNemar's test on per-case pass/fail outcomes of base and head (same case order)."""
    b = _as_outcomes("base", base)
    h = _as_outcomes("head", head)
    if b.size != h.size:
        raise ConfigError(f"base has {b.size} outcomes and head {h.size}; pair them by case first")
    return mcnemar_from_counts(
        both_pass=int(np.sum(b & h)),
        regressions=int(np.sum(b & ~h)),
        improvements=int(np.sum(~b & h)),
        both_fail=int(np.sum(~b & ~h)),
        method=method,
        correction=correction,
        alternative=alternative,
        confidence=confidence,
    )


def mcnemar_from_table(
    table: Sequence[Sequence[int]],
    *,
    method: McNemarMethod = "exact",
    correction: bool = True,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> PairedBinaryResult:
    """McNemar's test on a 2×2 table: rows = base (pass, fail), columns = head (pass, fail).

    So `table[0][1]` counts regressions (base pass, head fail) and `table[1][0]`
    improvements.
    """
    cells = np.asarray(table)
    if cells.shape != (2, 2):
        raise ConfigError(
            "the McNemar table must be 2×2: [[pass/pass, pass/fail], [fail/pass, fail/fail]]"
        )
    names = (("both_pass", "regressions"), ("improvements", "both_fail"))
    counts = {
        names[i][j]: check_count(f"McNemar table cell [{i}][{j}]", cells[i, j].item())
        for i in range(2)
        for j in range(2)
    }  # never int(): 2.7 regressions are not 2
    return mcnemar_from_counts(
        **counts,
        method=method,
        correction=correction,
        alternative=alternative,
        confidence=confidence,
    )


def mcnemar_from_counts(
    *,
    both_pass: int,
    regressions: int,
    improvements: int,
    both_fail: int,
    method: McNemarMethod = "exact",
    correction: bool = True,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> PairedBinaryResult:
    """McNemar's test from the four counts of the paired 2×2 table."""
    both_pass, regressions, improvements, both_fail = (
        check_count(f"McNemar count {name}", value)
        for name, value in (
            ("both_pass", both_pass),
            ("regressions", regressions),
            ("improvements", improvements),
            ("both_fail", both_fail),
        )
    )
    n = both_pass + regressions + improvements + both_fail
    if n == 0:
        raise ConfigError("McNemar's test needs at least one paired case")
    alternative = check_alternative(alternative)
    check_probability("confidence", confidence)
    b, c = regressions, improvements
    discordant = b + c
    if method == "exact":
        test = "mcnemar-exact"
        statistic = float(c)
        # Under H0 each discordant pair is an improvement with probability 1/2.
        p = 1.0 if discordant == 0 else stats.binomtest(c, discordant, 0.5, alternative).pvalue
    elif method == "chi2":
        test = "mcnemar-chi2-cc" if correction else "mcnemar-chi2"
        statistic, p = _mcnemar_normal(b, c, correction, alternative)
    else:
        raise ConfigError(f"McNemar method must be exact or chi2, got {method!r}")
    low, high = _paired_difference_interval(b, c, n, confidence)
    return PairedBinaryResult(
        test=test,
        n=n,
        both_pass=both_pass,
        regressions=b,
        improvements=c,
        both_fail=both_fail,
        base_rate=(both_pass + b) / n,
        head_rate=(both_pass + c) / n,
        difference=(c - b) / n,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        statistic=float(statistic),
        p_value=float(min(1.0, p)),
        alternative=alternative,
    )


def _mcnemar_normal(b: int, c: int, correction: bool, alternative: str) -> tuple[float, float]:
    """(statistic, p) of McNemar's normal approximation; C ~ Bin(b + c, 1/2) under H0.

    Two-sided: the chi-square (|c − b| − 1)² / (b + c). One-sided: the signed z, with the
    continuity correction moving c half a unit toward the null on the tested side —
    P(C ≤ c) ≈ Φ((c − b + 1)/√(b + c)), P(C ≥ c) ≈ Φ̄((c − b − 1)/√(b + c)).
    """
    discordant = b + c
    if discordant == 0:
        return 0.0, 1.0
    shift = 1 if correction else 0
    if alternative == "two-sided":
        gap = max(abs(c - b) - shift, 0)
        statistic = gap * gap / discordant
        return statistic, float(stats.chi2.sf(statistic, 1))
    if alternative == "less":
        z = (c - b + shift) / math.sqrt(discordant)
        return z, float(stats.norm.cdf(z))
    z = (c - b - shift) / math.sqrt(discordant)
    return z, float(stats.norm.sf(z))


def _paired_difference_interval(b: int, c: int, n: int, confidence: float) -> tuple[float, float]:
    """Agresti–Min (2005) interval for a difference of paired proportions."""
    z = float(stats.norm.isf((1 - confidence) / 2))
    b_adj, c_adj, n_adj = b + 0.5, c + 0.5, n + 2
    diff = (c_adj - b_adj) / n_adj
    se = math.sqrt(max((b_adj + c_adj) - (c_adj - b_adj) ** 2 / n_adj, 0.0)) / n_adj
    return max(-1.0, diff - z * se), min(1.0, diff + z * se)


# --- continuous scores ---------------------------------------------------------------------


def paired_t(
    base: Sequence[float],
    head: Sequence[float],
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> PairedContinuousResult:
    """Student's paired t-test on per-case scores (scipy `ttest_rel`), with its interval."""
    b, h = _paired_arrays(base, head, minimum=2)
    alternative = check_alternative(alternative)
    check_probability("confidence", confidence)
    d = h - b
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    if se == 0:  # every case moved by the same amount: no sampling noise to test against
        p = 1.0 if mean == 0 else _certain(mean, alternative)
        statistic = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        low = high = mean
    else:
        result = stats.ttest_rel(h, b, alternative=alternative)
        interval = result.confidence_interval(confidence_level=confidence)
        statistic, p = float(result.statistic), float(result.pvalue)
        low, high = float(interval.low), float(interval.high)
    return PairedContinuousResult(
        test="paired-t",
        n=int(d.size),
        base_mean=float(b.mean()),
        head_mean=float(h.mean()),
        difference=mean,
        median_difference=float(np.median(d)),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        statistic=statistic,
        p_value=p,
        alternative=alternative,
        df=float(d.size - 1),
        se=se,
    )


def _certain(mean: float, alternative: str) -> float:
    """The p-value of a non-zero difference with zero variance."""
    if alternative == "two-sided":
        return 0.0
    return 0.0 if (mean < 0) == (alternative == "less") else 1.0


# The exact signed-rank distribution is a convolution over n(n + 1) doubled rank sums: up to
# this many non-zero differences it costs well under a second; beyond, the normal
# approximation (with the tie correction) is as good as exact.
MAX_EXACT_SIGNED_RANKS = 500


def _tie_keys(nonzero: np.ndarray) -> np.ndarray:
    """|d| rounded to 12 digits of the largest: 0.7 − 0.6 and 0.4 − 0.3 are one tie."""
    magnitude = np.abs(nonzero)
    keys: np.ndarray = np.round(magnitude / magnitude.max(), 12) if magnitude.size else magnitude
    return keys


def _signed_rank_exact(nonzero: np.ndarray) -> tuple[float, float, float]:
    """(W⁺, P(W⁺ ≤ observed), P(W⁺ ≥ observed)) over the 2ⁿ sign flips of the differences.

    Ranks of |d| with ties averaged (the conditional test given the ties): doubled, they are
    whole numbers, so the distribution is built by convolution, one difference at a time.
    """
    doubled = np.rint(2 * stats.rankdata(_tie_keys(nonzero))).astype(np.int64)
    distribution = np.zeros(int(doubled.sum()) + 1)
    distribution[0] = 1.0
    reach = 0
    for rank in doubled:  # each difference adds its rank with probability 1/2
        reach += int(rank)
        shifted = distribution[: reach - rank + 1].copy()
        distribution[: reach + 1] *= 0.5
        distribution[rank : reach + 1] += 0.5 * shifted
    observed = int(doubled[nonzero > 0].sum())
    below = float(min(1.0, distribution[: observed + 1].sum()))
    above = float(min(1.0, distribution[observed:].sum()))
    return observed / 2, below, above


def _tail_p_value(below: float, above: float, alternative: str) -> float:
    """The p-value of a statistic symmetric under H0 from its two tail probabilities."""
    if alternative == "less":
        return below
    if alternative == "greater":
        return above
    return min(1.0, 2 * min(below, above))


def wilcoxon(
    base: Sequence[float],
    head: Sequence[float],
    *,
    alternative: Alternative = "two-sided",
    zero_method: Literal["wilcox", "pratt", "zsplit"] = "wilcox",
    confidence: float = 0.95,
) -> PairedContinuousResult:
    """Wilcoxon signed-rank test on per-case scores (head − base).

    With `zero_method="wilcox"` (the default) cases with no change are dropped and the
    p-value is exact — the distribution of W⁺ over every sign flip of the non-zero
    differences, ties in |d| given midranks (the conditional test) — for up to
    `MAX_EXACT_SIGNED_RANKS` of them, else the normal approximation with the tie
    correction (scipy). Counting the unchanged cases in that choice, as scipy's `auto` does,
    made 4 flips among 14 cases "significant" (0.023 instead of the exact 0.0625). Other
    zero methods keep scipy's rank both ways. |d| equal to 12 digits are ties (0.8 − 0.7
    and 0.9 − 0.8 differ in floating point only). When every case is unchanged the p-value
    is 1. `method` names the zero method and whether the p-value is exact; `statistic` is
    scipy's (W⁺, or min(W⁺, W⁻) two-sided).
    """
    b, h = _paired_arrays(base, head, minimum=1)
    alternative = check_alternative(alternative)
    check_probability("confidence", confidence)
    d = h - b
    nonzero = d[d != 0]
    if nonzero.size == 0:
        statistic, p, method = 0.0, 1.0, "no-change"
    elif zero_method == "wilcox" and nonzero.size <= MAX_EXACT_SIGNED_RANKS:
        plus, below, above = _signed_rank_exact(nonzero)
        p, method = _tail_p_value(below, above, alternative), "wilcox, exact"
        # scipy's statistic: W⁺ one-sided, min(W⁺, W⁻) two-sided.
        minus = nonzero.size * (nonzero.size + 1) / 2 - plus
        statistic = min(plus, minus) if alternative == "two-sided" else plus
    else:
        data = nonzero if zero_method == "wilcox" else d
        result = stats.wilcoxon(
            data, zero_method=zero_method, alternative=alternative, method="approx"
        )
        statistic, p = float(result.statistic), float(result.pvalue)
        method = f"{zero_method}, normal approximation"
    return PairedContinuousResult(
        test="wilcoxon",
        n=int(d.size),
        base_mean=float(b.mean()),
        head_mean=float(h.mean()),
        difference=float(d.mean()),
        median_difference=float(np.median(d)),
        ci_low=None,
        ci_high=None,
        confidence=confidence,
        statistic=statistic,
        p_value=p,
        alternative=alternative,
        method=method,
    )


# Scores with at most this many distinct values (pass/fail, a 1-5 rubric, ...) are tested
# by the exact sign-flip test; beyond, by the t-test they were asked for.
MAX_SCORE_LEVELS = 10
MAX_SIGN_FLIP_SUPPORT = 20_000_000  # values of the exact distribution, built group by group


def _sign_flip_distribution(nonzero: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, probabilities) of Σ ±|d_i| over every sign flip, or None when too large.

    The differences are grouped by magnitude v (count m): the group adds v·(2K − m) with
    K ~ Bin(m, 1/2). Sums that agree to 1e-9 of the largest one are merged.
    """
    _, group, counts = np.unique(_tie_keys(nonzero), return_inverse=True, return_counts=True)
    magnitudes = np.bincount(group, weights=np.abs(nonzero)) / counts
    scale = float(np.sum(np.abs(nonzero)))
    values: np.ndarray = np.zeros(1)
    probabilities: np.ndarray = np.ones(1)
    for v, m in zip(magnitudes, counts, strict=True):
        if values.size * (m + 1) > MAX_SIGN_FLIP_SUPPORT:
            return None
        k = np.arange(m + 1)
        values = (values[:, None] + v * (2 * k - m)[None, :]).ravel()
        probabilities = (probabilities[:, None] * stats.binom.pmf(k, m, 0.5)[None, :]).ravel()
        keys = np.rint(values / scale * 1e9).astype(np.int64)
        merged, index = np.unique(keys, return_inverse=True)
        probabilities = np.bincount(index, weights=probabilities)
        values = merged * scale / 1e9
    return values, probabilities


def sign_flip(
    base: Sequence[float],
    head: Sequence[float],
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> PairedContinuousResult:
    """Exact sign-flip (permutation) test of the mean paired difference.

    Under "no change" each case's difference is as likely to be +d as −d; the p-value is
    the share of the 2ⁿ sign flips of the non-zero differences whose sum is as extreme as
    the observed one, computed exactly by magnitude groups. On pass/fail scores it is
    exactly McNemar's exact test, so the score and pass-rate gates agree on the same
    flips. The interval is the paired t interval (None when it cannot be computed); ConfigError
    when the exact distribution would be too large (scores with many distinct values: use
    `paired_t`).
    """
    b, h = _paired_arrays(base, head, minimum=2)
    alternative = check_alternative(alternative)
    check_probability("confidence", confidence)
    d = h - b
    nonzero = d[d != 0]
    total = float(nonzero.sum())
    if nonzero.size == 0:
        p = 1.0
    else:
        exact = _sign_flip_distribution(nonzero)
        if exact is None:
            raise ConfigError(
                "the exact sign-flip distribution of these differences is too large; "
                "use the paired t-test"
            )
        values, probabilities = exact
        up = int(np.sum(nonzero > 0))
        if np.unique(_tie_keys(nonzero)).size == 1:  # one magnitude (pass/fail): McNemar's
            below = float(stats.binom.cdf(up, nonzero.size, 0.5))
            above = float(stats.binom.sf(up - 1, nonzero.size, 0.5))
        else:
            tolerance = 1e-9 * float(np.sum(np.abs(nonzero)))
            below = float(min(1.0, probabilities[values <= total + tolerance].sum()))
            above = float(min(1.0, probabilities[values >= total - tolerance].sum()))
        p = _tail_p_value(below, above, alternative)
    interval = paired_t(base, head, confidence=confidence)
    return PairedContinuousResult(
        test="sign-flip-exact",
        n=int(d.size),
        base_mean=float(b.mean()),
        head_mean=float(h.mean()),
        difference=float(d.mean()),
        median_difference=float(np.median(d)),
        ci_low=interval.ci_low,
        ci_high=interval.ci_high,
        confidence=confidence,
        statistic=total,
        p_value=p,
        alternative=alternative,
        se=interval.se,
        method=f"{nonzero.size} non-zero differences, exact",
    )


def score_levels(base: Sequence[float], head: Sequence[float]) -> int:
    """How many distinct values the scores of both sides take together."""
    return int(np.unique(np.concatenate([np.asarray(base, float), np.asarray(head, float)])).size)


def paired_score_test(
    base: Sequence[float],
    head: Sequence[float],
    *,
    test: Literal["paired-t", "wilcoxon"] = "paired-t",
    alternative: Alternative = "two-sided",
) -> PairedContinuousResult:
    """The test the merge gate runs on per-case scores, chosen by what the scores are.

    `wilcoxon`: the signed-rank test (exact over the non-zero differences). `paired-t`:
    Student's paired t, unless the scores take at most `MAX_SCORE_LEVELS` distinct values
    (pass/fail, a rubric) — then the exact sign-flip test, which on 0/1 scores is McNemar's
    exact test (a t-test on 3 flips of 30 said p = 0.042 where McNemar says 0.125).
    """
    if test == "wilcoxon":
        return wilcoxon(base, head, alternative=alternative)
    if score_levels(base, head) <= MAX_SCORE_LEVELS:
        b, h = _paired_arrays(base, head, minimum=2)
        d = h - b
        if _sign_flip_distribution(d[d != 0]) is not None:
            return sign_flip(base, head, alternative=alternative)
    return paired_t(base, head, alternative=alternative)


def expanded_confidence(confidence: float, n: int) -> float:
    """Hesterberg's (2015) expanded bootstrap level: 1 − 2Φ(√(n/(n−1)) · t_{α/2, n−1})."""
    alpha = 1 - confidence
    return float(1 - 2 * stats.norm.cdf(math.sqrt(n / (n - 1)) * stats.t.ppf(alpha / 2, n - 1)))


def paired_bootstrap(
    base: Sequence[float],
    head: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
    method: Literal["BCa", "percentile", "basic"] = "BCa",
) -> PairedContinuousResult:
    """Bootstrap interval of the mean paired difference (cases resampled with their pair).

    Seeded: the same inputs and `seed` always give the same interval (scipy `bootstrap`).
    The bootstrap's level is expanded for the sample size (Hesterberg 2015): the interval
    is drawn at 1 − 2Φ(√(n/(n−1)) · t_{α/2, n−1}) instead of 1 − α, which for n = 20
    no-change pairs brings BCa's misses of 0 from 8.7% down to about the nominal 5% (n
    large: no change). `confidence` stays the level asked for; `method` names both.
    """
    b, h = _paired_arrays(base, head, minimum=2)
    check_probability("confidence", confidence)
    if not isinstance(n_resamples, int) or n_resamples < 100:
        raise ConfigError(f"n_resamples must be a whole number ≥ 100, got {shown(n_resamples)}")
    check_seed("seed", seed)
    d = h - b
    mean = float(d.mean())
    level = expanded_confidence(confidence, d.size)
    if np.ptp(d) == 0:  # every resample has the same mean
        low = high = mean
        used = "constant"
    else:
        # BCa can fail on odd data (a NaN bound): fall back to the percentile interval,
        # drawn from the same seed.
        for used in dict.fromkeys((method, "percentile")):
            result = stats.bootstrap(
                (d,),
                np.mean,
                confidence_level=level,
                n_resamples=n_resamples,
                method=used,
                rng=np.random.default_rng(seed),
            )
            interval = result.confidence_interval
            low, high = float(interval.low), float(interval.high)
            if math.isfinite(low) and math.isfinite(high):
                break
    return PairedContinuousResult(
        test="bootstrap",
        n=int(d.size),
        base_mean=float(b.mean()),
        head_mean=float(h.mean()),
        difference=mean,
        median_difference=float(np.median(d)),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        statistic=None,
        p_value=None,
        alternative="two-sided",
        method=f"{used} at {level:.4g} (expanded for n = {d.size}), {n_resamples} resamples, seed {seed}",
    )


# --- repeated samples ----------------------------------------------------------------------


def clustered_mean(
    values: Sequence[float], clusters: Sequence[Any], *, confidence: float = 0.95
) -> ClusteredMean:
    """Mean of repeated samples with the clustered standard error (samples of a case correlate).

    `clusters[i]` names the case of `values[i]` (e.g. the case id, one row per repeat).
    """
    x = as_float_array("values", values, minimum=2)
    labels = np.asarray(clusters)
    if labels.shape != x.shape:
        raise ConfigError(f"{x.size} values but {labels.size} cluster labels")
    check_probability("confidence", confidence)
    _, index = np.unique(labels, return_inverse=True)
    mean = float(x.mean())
    residual_sums = np.bincount(index, weights=x - mean)
    n = x.size
    se = math.sqrt(float(np.sum(residual_sums**2))) / n
    naive = math.sqrt(float(np.sum((x - mean) ** 2))) / n
    z = float(stats.norm.isf((1 - confidence) / 2))
    return ClusteredMean(
        mean=mean,
        se=se,
        naive_se=naive,
        design_effect=(se / naive) ** 2 if naive > 0 else None,
        n_observations=n,
        n_clusters=int(residual_sums.size),
        ci_low=mean - z * se,
        ci_high=mean + z * se,
        confidence=confidence,
    )


def paired_repeated(
    base: Mapping[str, Sequence[float]],
    head: Mapping[str, Sequence[float]],
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> PairedRepeatedResult:
    """Base vs head when each case was sampled several times: case id -> scores per repeat.

    Cases are paired by id; cases scored on one side only are counted in
    `unpaired_cases` and left out.
    """
    from promptyard.stats.power import eval_variance_components

    alternative = check_alternative(alternative)
    check_probability("confidence", confidence)
    shared = [case for case in base if case in head and len(base[case]) and len(head[case])]
    unpaired = len(set(base) ^ set(head)) + sum(
        1 for case in base if case in head and case not in shared
    )
    if len(shared) < 2:
        raise ConfigError(f"need at least 2 cases scored by both base and head, got {len(shared)}")
    base_means = np.array([np.mean(as_float_array(f"base[{c}]", base[c])) for c in shared])
    head_means = np.array([np.mean(as_float_array(f"head[{c}]", head[c])) for c in shared])
    d = head_means - base_means
    n = d.size
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n))
    df = float(n - 1)
    if se == 0:
        statistic = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0 else _certain(mean, alternative)
        low = high = mean
    else:
        statistic = mean / se
        if alternative == "two-sided":
            p = float(2 * stats.t.sf(abs(statistic), df))
        elif alternative == "less":
            p = float(stats.t.cdf(statistic, df))
        else:
            p = float(stats.t.sf(statistic, df))
        half = float(stats.t.isf((1 - confidence) / 2, df)) * se
        low, high = mean - half, mean + half
    parts = eval_variance_components({c: base[c] for c in shared}, {c: head[c] for c in shared})
    return PairedRepeatedResult(
        test="paired-clustered",
        n_cases=n,
        n_base=int(sum(len(base[c]) for c in shared)),
        n_head=int(sum(len(head[c]) for c in shared)),
        unpaired_cases=unpaired,
        base_mean=float(base_means.mean()),
        head_mean=float(head_means.mean()),
        difference=mean,
        se=se,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        statistic=float(statistic),
        p_value=p,
        df=df,
        alternative=alternative,
        between_sd=parts.between_sd,
        within_sd_base=parts.within_sd_base,
        within_sd_head=parts.within_sd_head,
    )


# --- cases needed --------------------------------------------------------------------------


def mcnemar_cases_needed(
    base: Sequence[bool],
    head: Sequence[bool],
    drop: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Literal["two-sided", "one-sided"] = "one-sided",
) -> SampleSize:
    """Cases McNemar's test needs to detect a pass-rate drop of `drop` at `power`.

    The discordant fraction is estimated from the observed pairs, and never taken below
    `drop` (a drop of D needs at least a share D of discordant cases).
    """
    b = _as_outcomes("base", base)
    h = _as_outcomes("head", head)
    if b.size != h.size or b.size == 0:
        raise ConfigError("base and head need the same, non-zero number of outcomes")
    check_probability("drop", drop)
    observed = float(np.mean(b != h))
    discordant = min(max(observed, drop), 1 - 1e-9)
    result = mcnemar_sample_size(
        discordant, -drop, alpha=alpha, power=power, alternative=alternative
    )
    return dataclasses.replace(
        result,
        assumptions={
            **result.assumptions,
            "observed_discordant": observed,
            "observed_cases": int(b.size),
        },
    )


def paired_t_cases_needed(
    base: Sequence[float],
    head: Sequence[float],
    drop: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Literal["two-sided", "one-sided"] = "one-sided",
) -> SampleSize:
    """Cases a paired t-test needs to detect a mean-score drop of `drop` at `power`.

    The sd of the paired differences is estimated from the observed pairs; when every
    observed difference is identical there is no noise to plan for and the minimum (2) is
    returned, with `assumptions["sd"] == 0`.
    """
    b, h = _paired_arrays(base, head, minimum=2)
    if not math.isfinite(drop) or drop <= 0:
        raise ConfigError(f"drop must be a positive number, got {shown(drop)}")
    sd = float(np.std(h - b, ddof=1))
    if sd == 0:
        return _sample_size(
            "paired-t",
            "noncentral-t",
            2.0,
            None,
            n=2,
            alpha=alpha,
            power=power,
            alternative=alternative,
            effect=-drop,
            effect_size=None,
            assumptions={"sd": 0.0, "observed_cases": int(b.size)},
        )
    result = paired_t_sample_size(
        mde=-drop, sd=sd, alpha=alpha, power=power, alternative=alternative
    )
    return dataclasses.replace(
        result, assumptions={**result.assumptions, "observed_cases": int(b.size)}
    )
