"""Bayesian comparison of variants: the probability treatment beats control, and the risk.

- `beta_binomial(...)` (binary metrics): Beta(prior + successes, prior + failures)
  posteriors. P(treatment > control) and both expected losses are exact (Evan Miller's
  closed form, "Formulas for Bayesian A/B testing") when one posterior alpha is a whole
  number, and Monte Carlo (seeded) otherwise; the credible interval of the difference is
  always Monte Carlo (seeded, so reproducible).
- `gaussian_posterior(...)` (continuous metrics): flat prior, normal posterior of each
  mean, N(mean, se²); everything in closed form.
- `prob_best_beta(...)` / `prob_best_gaussian(...)`: the probability each of several
  variants is the best (`ProbBest`; exact for two variants, else Monte Carlo, seeded) —
  Thompson-sampling allocation uses these.

"Expected loss of treatment" is E[max(control − treatment, 0)]: what shipping the treatment
costs on average if it is in fact worse (for a metric where higher is better).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from promptyard.errors import ConfigError
from promptyard.stats._base import (
    Result,
    check_count,
    check_finite,
    check_positive,
    check_probability,
    check_seed,
    shown,
)

MAX_EXACT_TERMS = 5_000_000
TERMS_PER_CHUNK = 1_000_000
CHUNK = 50_000


@dataclass(frozen=True)
class BetaBinomialResult(Result):
    """Beta-Binomial comparison of a rate (treatment vs control).

    Posteriors are Beta(`*_alpha`, `*_beta`). `prob_treatment_better` = P(p_t > p_c);
    `expected_loss_treatment` = E[max(p_c − p_t, 0)], `expected_loss_control` =
    E[max(p_t − p_c, 0)]; `method` says whether these were exact or Monte Carlo.
    `ci_low`/`ci_high`: equal-tailed credible interval of p_t − p_c (Monte Carlo, `seed`).
    """

    control_alpha: float
    control_beta: float
    treatment_alpha: float
    treatment_beta: float
    difference: float
    prob_treatment_better: float
    expected_loss_treatment: float
    expected_loss_control: float
    ci_low: float
    ci_high: float
    confidence: float
    method: str
    draws: int
    seed: int


@dataclass(frozen=True)
class GaussianPosteriorResult(Result):
    """Normal posterior of the difference of means (flat prior): N(`difference`, `sd`²)."""

    difference: float
    sd: float
    prob_treatment_better: float
    expected_loss_treatment: float
    expected_loss_control: float
    ci_low: float
    ci_high: float
    confidence: float


def _exact_greater(a1: float, b1: float, a2: float, b2: float) -> float | None:
    """P(X1 > X2), X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), when a1 is a manageable integer."""
    if a1 != int(a1) or a1 > MAX_EXACT_TERMS:
        return None
    total = 0.0
    for start in range(0, int(a1), TERMS_PER_CHUNK):  # bounded memory for large counts
        i = np.arange(start, min(int(a1), start + TERMS_PER_CHUNK), dtype=float)
        log_terms = (
            special.betaln(a2 + i, b2 + b1)
            - np.log(b1 + i)
            - special.betaln(1 + i, b1)
            - special.betaln(a2, b2)
        )
        total += float(np.exp(log_terms).sum())
    return min(1.0, max(0.0, total))


def prob_beta_greater(a1: float, b1: float, a2: float, b2: float) -> float | None:
    """P(X1 > X2) for independent X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), exactly.

    Needs a whole-number alpha on one side (closed form, sum of a-many terms); None when
    neither alpha is (then use Monte Carlo).
    """
    direct = _exact_greater(a1, b1, a2, b2)
    if direct is not None and (a1 <= a2 or a2 != int(a2)):
        return direct
    other = _exact_greater(a2, b2, a1, b1)
    if other is not None:
        return 1.0 - other
    return direct


def _beta_draws(alpha: float, beta: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    return rng.beta(alpha, beta, size=draws)


def _counts(name: str, successes: int, n: int) -> tuple[int, int]:
    """(successes, n) as whole numbers with 0 ≤ successes ≤ n, else a ConfigError."""
    successes = check_count(f"{name} successes", successes)
    n = check_count(f"{name} units", n)
    if n < successes:
        raise ConfigError(f"{name}: need 0 ≤ successes ≤ n, got {successes} of {n}")
    return successes, n


def beta_binomial(
    control_successes: int,
    control_n: int,
    treatment_successes: int,
    treatment_n: int,
    *,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
    confidence: float = 0.95,
    draws: int = 100_000,
    seed: int = 0,
) -> BetaBinomialResult:
    """P(treatment rate > control rate) and expected losses under Beta(prior) priors."""
    control_successes, control_n = _counts("control", control_successes, control_n)
    treatment_successes, treatment_n = _counts("treatment", treatment_successes, treatment_n)
    check_positive("prior alpha", prior_alpha)
    check_positive("prior beta", prior_beta)
    check_probability("confidence", confidence)
    if draws < 1000:
        raise ConfigError(f"draws must be at least 1000, got {draws}")
    ac, bc = prior_alpha + control_successes, prior_beta + control_n - control_successes
    at, bt = prior_alpha + treatment_successes, prior_beta + treatment_n - treatment_successes
    mean_c, mean_t = ac / (ac + bc), at / (at + bt)
    rng = np.random.default_rng(check_seed("seed", seed))
    sample_c = _beta_draws(ac, bc, draws, rng)
    sample_t = _beta_draws(at, bt, draws, rng)
    diff = sample_t - sample_c
    tail = (1 - confidence) / 2
    low, high = np.quantile(diff, [tail, 1 - tail])

    better = prob_beta_greater(at, bt, ac, bc)
    # E[p_c · 1(p_c > p_t)] = mean_c · P(Beta(ac + 1, bc) > p_t), and the same for p_t.
    upper = prob_beta_greater(ac + 1, bc, at, bt)
    lower = prob_beta_greater(ac, bc, at + 1, bt)
    if better is not None and upper is not None and lower is not None:
        method = "exact"
        loss_treatment = max(0.0, mean_c * upper - mean_t * lower)
    else:
        method = "monte-carlo"
        better = float(np.mean(diff > 0))
        loss_treatment = float(np.mean(np.maximum(-diff, 0)))
    return BetaBinomialResult(
        control_alpha=ac,
        control_beta=bc,
        treatment_alpha=at,
        treatment_beta=bt,
        difference=mean_t - mean_c,
        prob_treatment_better=better,
        expected_loss_treatment=loss_treatment,
        # E[max(x, 0)] − E[max(−x, 0)] = E[x]
        expected_loss_control=max(0.0, loss_treatment + mean_t - mean_c),
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        method=method,
        draws=draws,
        seed=seed,
    )


def gaussian_posterior(
    control_mean: float,
    control_se: float,
    treatment_mean: float,
    treatment_se: float,
    *,
    confidence: float = 0.95,
) -> GaussianPosteriorResult:
    """Normal posterior of treatment − control (flat prior): P(better) and expected losses."""
    check_probability("confidence", confidence)
    for name, value in (("control mean", control_mean), ("treatment mean", treatment_mean)):
        check_finite(name, value)
    for name, value in (("control se", control_se), ("treatment se", treatment_se)):
        if check_finite(name, value) < 0:
            raise ConfigError(f"{name} cannot be negative, got {shown(value)}")
    mu = float(treatment_mean) - float(control_mean)
    sd = math.hypot(control_se, treatment_se)
    if not (math.isfinite(mu) and math.isfinite(sd)):
        raise ConfigError(
            f"the difference of the means ({control_mean:g} and {treatment_mean:g}) or its "
            "standard error overflows; give the metric in smaller units"
        )
    if sd == 0:
        better = 1.0 if mu > 0 else 0.0 if mu < 0 else 0.5
        loss_t, loss_c = max(-mu, 0.0), max(mu, 0.0)
        low = high = mu
    else:
        ratio = mu / sd
        better = float(stats.norm.cdf(ratio))
        loss_t = float(sd * stats.norm.pdf(ratio) - mu * stats.norm.cdf(-ratio))
        loss_c = loss_t + mu
        z = float(stats.norm.isf((1 - confidence) / 2))
        low, high = mu - z * sd, mu + z * sd
    return GaussianPosteriorResult(
        difference=mu,
        sd=sd,
        prob_treatment_better=better,
        expected_loss_treatment=max(0.0, loss_t),
        expected_loss_control=max(0.0, loss_c),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
    )


@dataclass(frozen=True)
class ProbBest(Result):
    """The probability each variant is the best, in the order given (they sum to 1).

    `method` is `exact` (two variants: the closed form of P(X1 > X0), as
    `beta_binomial` and `gaussian_posterior` compute it) or `monte-carlo` (`draws` seeded
    draws from the posteriors); `standard_error` is the largest Monte Carlo standard error
    √(p(1 − p)/draws) of the probabilities (0 when exact).
    """

    probabilities: list[float]
    method: str
    draws: int | None
    standard_error: float


def _exact_pair(better: float, higher_is_better: bool) -> ProbBest:
    """Two variants: `better` = P(variant 2 > variant 1) in closed form."""
    second = better if higher_is_better else 1.0 - better
    return ProbBest([1.0 - second, second], "exact", None, 0.0)


MIN_DRAWS, MAX_DRAWS = 1_000, 100_000_000


def check_draws(draws: int) -> int:
    """A number of Monte Carlo draws from MIN_DRAWS to MAX_DRAWS (else a ConfigError)."""
    if isinstance(draws, bool) or not isinstance(draws, int) or not MIN_DRAWS <= draws <= MAX_DRAWS:
        raise ConfigError(
            f"draws must be a whole number from {MIN_DRAWS:,} to {MAX_DRAWS:,}, got {shown(draws)}"
        )
    return draws


def _prob_best(
    sampler: Callable[[int], np.ndarray], k: int, draws: int, higher_is_better: bool
) -> ProbBest:
    """Monte Carlo P(best); a draw where several variants tie for best is split among them
    (argmax would give it all to the first: 95/5 weights for identical arms)."""
    wins = np.zeros(k)
    done = 0
    while done < draws:
        size = min(CHUNK, draws - done)
        sample = sampler(size)
        score = sample if higher_is_better else -sample
        tied = score == score.max(axis=1, keepdims=True)
        wins += (tied / tied.sum(axis=1, keepdims=True)).sum(axis=0)
        done += size
    probabilities = [float(w / draws) for w in wins]
    error = max(math.sqrt(p * (1 - p) / draws) for p in probabilities)
    return ProbBest(probabilities, "monte-carlo", draws, error)


def prob_best_beta(
    successes: Sequence[int],
    trials: Sequence[int],
    *,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
    higher_is_better: bool = True,
    draws: int = 100_000,
    seed: int = 0,
) -> ProbBest:
    """P(each variant has the best rate) from Beta posteriors.

    Exact for two variants with a whole-number posterior alpha (as `beta_binomial`), else
    Monte Carlo (`draws`, seeded).
    """
    check_draws(draws)
    if len(successes) != len(trials) or len(successes) < 2:
        raise ConfigError("need successes and trials for at least 2 variants")
    pairs = [
        _counts(f"variant {i + 1}", *pair)
        for i, pair in enumerate(zip(successes, trials, strict=True))
    ]
    s = np.array([pair[0] for pair in pairs], dtype=float)
    n = np.array([pair[1] for pair in pairs], dtype=float)
    check_positive("prior alpha", prior_alpha)
    check_positive("prior beta", prior_beta)
    rng = np.random.default_rng(check_seed("seed", seed))
    a, b = prior_alpha + s, prior_beta + n - s
    if a.size == 2:
        better = prob_beta_greater(float(a[1]), float(b[1]), float(a[0]), float(b[0]))
        if better is not None:
            return _exact_pair(better, higher_is_better)
    return _prob_best(
        lambda size: rng.beta(a, b, size=(size, a.size)), a.size, draws, higher_is_better
    )


def prob_best_gaussian(
    means: Sequence[float],
    ses: Sequence[float],
    *,
    higher_is_better: bool = True,
    draws: int = 100_000,
    seed: int = 0,
) -> ProbBest:
    """P(each variant has the best mean) from normal posteriors.

    Exact for two variants (Φ of the standardised difference, as `gaussian_posterior`),
    else Monte Carlo (`draws`, seeded).
    """
    check_draws(draws)
    m = np.asarray(means, dtype=float)
    s = np.asarray(ses, dtype=float)
    if m.shape != s.shape or m.ndim != 1 or m.size < 2:
        raise ConfigError("need means and standard errors for at least 2 variants")
    if np.any(s < 0) or not np.all(np.isfinite(m)) or not np.all(np.isfinite(s)):
        raise ConfigError("means must be finite and standard errors finite and ≥ 0")
    rng = np.random.default_rng(check_seed("seed", seed))
    if m.size == 2:
        posterior = gaussian_posterior(float(m[0]), float(s[0]), float(m[1]), float(s[1]))
        return _exact_pair(posterior.prob_treatment_better, higher_is_better)
    return _prob_best(
        lambda size: rng.normal(m, s, size=(size, m.size)), m.size, draws, higher_is_better
    )
