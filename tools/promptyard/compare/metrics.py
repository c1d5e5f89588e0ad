"""Statistics per metric for one eval: base, head, delta, 95% interval, p-value and test.

Paired (base and head on the same cases, from `promptyard.stats`):

- `pass_rate`: McNemar's exact test on the per-case verdicts, with the Agresti–Min
  interval of the paired difference;
- `mean_score` and every named assertion `metric`: a paired t-test — the exact sign-flip
  test when the scores take few values (pass/fail: then it is McNemar's exact test) — or
  the exact Wilcoxon signed-rank test (`gates.score.test`), with a seeded paired
  bootstrap interval (`paired_score_test`); with repeats, per-case means and the
  clustered standard error of the difference (`paired_repeated`);
- `repeat_pass_rate` (repeats only): the share of passing repeats, clustered by case;
- `error_rate`: McNemar's exact test on the per-case error flags;
- `latency_p50_ms` / `latency_p95_ms`: head / base ratio and a case-resampling bootstrap
  interval of the difference;
- `cost_per_case_usd`: head / base ratio and a bootstrap interval of the difference.

Every p-value and interval is two-sided; each tested metric also carries `p_regression`,
the one-sided p-value of the regression direction (head below base for pass rate and
scores, above it for errors). The gates decide significance with that one: they ask only
whether the change made things worse, as the "cases needed" power analysis does.

Head only (an added prompt, or no base): the head values, a Wilson interval for the pass
rate, no test.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from promptyard.compare.model import MetricResult, Unit
from promptyard.compare.paired import CaseOutcome
from promptyard.stats import mcnemar, paired_bootstrap, paired_repeated, paired_score_test

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
BUILTIN = (
    "pass_rate",
    "mean_score",
    "repeat_pass_rate",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "cost_per_case_usd",
)


def metric_key(name: str) -> str:
    """The key of a named assertion metric (prefixed only if it collides with a built-in)."""
    return f"metric:{name}" if name in BUILTIN else name


def _ci(low: float | None, high: float | None) -> tuple[float, float] | None:
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return None
    return (float(low), float(high))


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q * 100)) if len(values) else None


def _ratio(base: float | None, head: float | None) -> float | None:
    """head / base; infinite when the base is 0 and the head is not (a cost that appears
    from nothing is as large a change as there is), None when both are 0."""
    if base is None or head is None:
        return None
    if base <= 0:
        return math.inf if head > 0 else None
    return head / base


# --- paired ------------------------------------------------------------------------------


def _score_metric(
    name: str,
    label: str,
    base: Sequence[CaseOutcome],
    head: Sequence[CaseOutcome],
    values: dict[str, tuple[list[float], list[float]]],
    *,
    repeat: int,
    test: str,
    unit: Unit = "score",
) -> MetricResult:
    """A score-like metric from per-repeat values: case id -> (base values, head values)."""
    pairs = {cid: v for cid, v in values.items() if v[0] and v[1]}
    b = [float(np.mean(v[0])) for v in pairs.values()]
    h = [float(np.mean(v[1])) for v in pairs.values()]
    n = len(pairs)
    base_mean, head_mean = _mean(b), _mean(h)
    delta = head_mean - base_mean if base_mean is not None and head_mean is not None else None
    ci: tuple[float, float] | None = None
    p: float | None = None
    p_worse: float | None = None
    used = "n/a"
    if n >= 2 and repeat > 1:
        by_case = ({cid: v[0] for cid, v in pairs.items()}, {cid: v[1] for cid, v in pairs.items()})
        result = paired_repeated(*by_case)
        ci, p, used = _ci(result.ci_low, result.ci_high), result.p_value, result.test
        p_worse = paired_repeated(*by_case, alternative="less").p_value
    elif n >= 2:
        chosen = "wilcoxon" if test == "wilcoxon" else "paired-t"
        tested = paired_score_test(b, h, test=chosen)
        boot = paired_bootstrap(b, h, n_resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
        ci, p = _ci(boot.ci_low, boot.ci_high), tested.p_value
        p_worse = paired_score_test(b, h, test=chosen, alternative="less").p_value  # head worse
        used = f"{tested.test} + bootstrap"
    elif n == 1:
        used = "one case: no test"
    return MetricResult(
        name,
        label,
        unit,
        "higher",
        base_mean,
        head_mean,
        delta,
        ci,
        p,
        used,
        n,
        p_regression=p_worse,
    )


def _row_quantile(values: np.ndarray, q: float) -> np.ndarray:
    """Quantile q of each row, ignoring NaN (numpy's linear interpolation), vectorised:
    `np.nanpercentile(axis=1)` loops over rows in Python."""
    ordered = np.sort(values, axis=1)  # NaN sorts last
    counts = np.sum(~np.isnan(values), axis=1)
    position = np.maximum(counts - 1, 0) * q
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, np.maximum(counts - 1, 0))
    rows = np.arange(values.shape[0])
    result: np.ndarray = ordered[rows, low] + (ordered[rows, high] - ordered[rows, low]) * (
        position - low
    )
    result[counts == 0] = np.nan
    return result


def _latency_interval(
    base: list[list[float]], head: list[list[float]], q: float
) -> tuple[float, float] | None:
    """Bootstrap interval of head − base at quantile q, resampling cases (with their repeats)."""
    n = len(base)
    if n < 2:
        return None
    width = max(1, max(len(r) for r in base), max(len(r) for r in head))
    b = np.full((n, width), np.nan)
    h = np.full((n, width), np.nan)
    for i, (rb, rh) in enumerate(zip(base, head, strict=True)):
        b[i, : len(rb)] = rb
        h[i, : len(rh)] = rh
    resamples = max(200, min(BOOTSTRAP_RESAMPLES, 4_000_000 // (n * width)))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    index = rng.integers(0, n, size=(resamples, n))
    bs = b[index].reshape(resamples, -1)
    hs = h[index].reshape(resamples, -1)
    d = _row_quantile(hs, q) - _row_quantile(bs, q)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None
    low, high = np.percentile(d, [2.5, 97.5])
    return (float(low), float(high))


def paired_metrics(
    base: Sequence[CaseOutcome],
    head: Sequence[CaseOutcome],
    *,
    repeat: int,
    score_test: str,
    errors: tuple[Sequence[bool], Sequence[bool]] | None = None,
) -> dict[str, MetricResult]:
    """Every metric of an eval from the paired cases (`base[i]` and `head[i]` are one case).

    `errors` (base flags, head flags) are the per-case error flags of every case both sides
    ran, for the error rate: the paired cases leave out a base that errored, so they cannot
    show the base's errors (default: the paired cases' flags)."""
    with warnings.catch_warnings():
        # scipy warns about precision on nearly constant differences; the result stands
        # and a warning line in the middle of a CI log helps nobody.
        warnings.simplefilter("ignore", RuntimeWarning)
        return _paired_metrics(base, head, repeat=repeat, score_test=score_test, errors=errors)


def _paired_metrics(
    base: Sequence[CaseOutcome],
    head: Sequence[CaseOutcome],
    *,
    repeat: int,
    score_test: str,
    errors: tuple[Sequence[bool], Sequence[bool]] | None,
) -> dict[str, MetricResult]:
    metrics: dict[str, MetricResult] = {}
    if len(base) == 0:
        return metrics
    metrics["pass_rate"] = _pass_rate_metric(base, head)
    metrics.update(_score_metrics(base, head, repeat=repeat, score_test=score_test))
    base_errors, head_errors = errors or ([c.errored for c in base], [c.errored for c in head])
    if len(base_errors):
        metrics["error_rate"] = _error_rate_metric(base_errors, head_errors)
    metrics.update(_latency_metrics(base, head))
    cost = _cost_metric(base, head)
    if cost is not None:
        metrics["cost_per_case_usd"] = cost
    return metrics


def _pass_rate_metric(base: Sequence[CaseOutcome], head: Sequence[CaseOutcome]) -> MetricResult:
    """McNemar on the cases' pass/fail; the one-sided p asks whether head passes fewer."""
    base_pass, head_pass = [c.passed for c in base], [c.passed for c in head]
    passes = mcnemar(base_pass, head_pass)
    worse = mcnemar(base_pass, head_pass, alternative="less")  # head passes fewer cases
    return MetricResult(
        "pass_rate", "pass rate", "rate", "higher",
        passes.base_rate, passes.head_rate, passes.difference,
        _ci(passes.ci_low, passes.ci_high), passes.p_value, passes.test, len(base),
        p_regression=worse.p_value,
    )  # fmt: skip


def _score_metrics(
    base: Sequence[CaseOutcome], head: Sequence[CaseOutcome], *, repeat: int, score_test: str
) -> dict[str, MetricResult]:
    """The mean score, the pass rate per repeat (with repeats) and every named metric."""
    pairs = list(zip(base, head, strict=True))
    metrics = {
        "mean_score": _score_metric(
            "mean_score",
            "mean score",
            base,
            head,
            {b.case_id: (b.scores, h.scores) for b, h in pairs},
            repeat=repeat,
            test=score_test,
        )
    }
    if repeat > 1:
        metrics["repeat_pass_rate"] = _score_metric(
            "repeat_pass_rate",
            "pass rate per repeat",
            base,
            head,
            {
                b.case_id: ([float(x) for x in b.pass_flags], [float(x) for x in h.pass_flags])
                for b, h in pairs
            },
            repeat=repeat,
            test=score_test,
            unit="rate",
        )
    for name in sorted({m for c in (*base, *head) for m in c.metric_scores}):
        key = metric_key(name)
        metrics[key] = _score_metric(
            key,
            name,
            base,
            head,
            {
                b.case_id: (b.metric_scores.get(name, []), h.metric_scores.get(name, []))
                for b, h in pairs
            },
            repeat=repeat,
            test=score_test,
        )
    return metrics


def _error_rate_metric(base_errors: Sequence[bool], head_errors: Sequence[bool]) -> MetricResult:
    """McNemar on the error flags; the one-sided p asks whether head errs more."""
    erred = mcnemar(base_errors, head_errors)
    more = mcnemar(base_errors, head_errors, alternative="greater")  # head errs more
    return MetricResult(
        "error_rate", "error rate", "rate", "lower",
        erred.base_rate, erred.head_rate, erred.difference,
        _ci(erred.ci_low, erred.ci_high), erred.p_value, erred.test, len(base_errors),
        p_regression=more.p_value,
    )  # fmt: skip


def _latency_metrics(
    base: Sequence[CaseOutcome], head: Sequence[CaseOutcome]
) -> dict[str, MetricResult]:
    """Latency p50 and p95 over the cases timed on both sides (none when no case is)."""
    timed = [(b.latencies, h.latencies) for b, h in zip(base, head, strict=True)]
    timed = [(b, h) for b, h in timed if b and h]
    metrics: dict[str, MetricResult] = {}
    if not timed:
        return metrics
    all_b = [x for b, _ in timed for x in b]
    all_h = [x for _, h in timed for x in h]
    for q, key, label in ((0.5, "latency_p50_ms", "latency p50"), (0.95, "latency_p95_ms", "latency p95")):  # fmt: skip
        vb, vh = _percentile(all_b, q), _percentile(all_h, q)
        assert vb is not None and vh is not None
        metrics[key] = MetricResult(
            key, label, "ms", "lower", vb, vh, vh - vb,
            _latency_interval([b for b, _ in timed], [h for _, h in timed], q),
            None, "ratio + bootstrap", len(timed), _ratio(vb, vh),
        )  # fmt: skip
    return metrics


def _cost_metric(base: Sequence[CaseOutcome], head: Sequence[CaseOutcome]) -> MetricResult | None:
    """Mean cost per case over the cases priced on both sides (None when no case is)."""
    priced = [(b.cost, h.cost) for b, h in zip(base, head, strict=True)]
    costs = [(b, h) for b, h in priced if b is not None and h is not None]
    if not costs:
        return None
    cb = [b for b, _ in costs]
    ch = [h for _, h in costs]
    mb, mh = float(np.mean(cb)), float(np.mean(ch))
    ci = None
    if len(costs) >= 2:
        boot = paired_bootstrap(cb, ch, n_resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
        ci = _ci(boot.ci_low, boot.ci_high)
    return MetricResult(
        "cost_per_case_usd", "cost per case", "usd", "lower", mb, mh, mh - mb, ci,
        None, "ratio + bootstrap", len(costs), _ratio(mb, mh),
    )  # fmt: skip


# --- head only ---------------------------------------------------------------------------


def head_metrics(head: Sequence[CaseOutcome], *, repeat: int) -> dict[str, MetricResult]:
    """The head's metrics when there is no base to compare with."""
    from scipy import stats

    n = len(head)
    metrics: dict[str, MetricResult] = {}
    if n == 0:
        return metrics
    passed = sum(c.passed for c in head)
    interval = stats.binomtest(passed, n).proportion_ci(confidence_level=0.95, method="wilson")
    metrics["pass_rate"] = MetricResult(
        "pass_rate", "pass rate", "rate", "higher", None, passed / n, None,
        _ci(interval.low, interval.high), None, "wilson interval", n,
    )  # fmt: skip
    metrics["mean_score"] = MetricResult(
        "mean_score", "mean score", "score", "higher", None,
        float(np.mean([c.score for c in head])), None, None, None, "mean", n,
    )  # fmt: skip
    if repeat > 1:
        metrics["repeat_pass_rate"] = MetricResult(
            "repeat_pass_rate", "pass rate per repeat", "rate", "higher", None,
            float(np.mean([c.pass_fraction for c in head])), None, None, None, "mean", n,
        )  # fmt: skip
    for name in sorted({m for c in head for m in c.metric_scores}):
        values = [v for c in head if (v := c.metric(name)) is not None]
        key = metric_key(name)
        metrics[key] = MetricResult(
            key, name, "score", "higher", None, _mean(values), None, None, None, "mean",
            len(values),
        )  # fmt: skip
    metrics["error_rate"] = MetricResult(
        "error_rate", "error rate", "rate", "lower", None,
        sum(c.errored for c in head) / n, None, None, None, "share", n,
    )  # fmt: skip
    latencies = [x for c in head for x in c.latencies]
    if latencies:
        for q, key, label in ((0.5, "latency_p50_ms", "latency p50"), (0.95, "latency_p95_ms", "latency p95")):  # fmt: skip
            metrics[key] = MetricResult(
                key, label, "ms", "lower", None, _percentile(latencies, q), None, None, None,
                "percentile", len(latencies),
            )  # fmt: skip
    costs = [c.cost for c in head if c.cost is not None]
    if costs:
        metrics["cost_per_case_usd"] = MetricResult(
            "cost_per_case_usd", "cost per case", "usd", "lower", None, float(np.mean(costs)),
            None, None, None, "mean", len(costs),
        )  # fmt: skip
    return metrics
