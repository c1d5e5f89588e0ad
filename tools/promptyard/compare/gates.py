"""The merge gate: one small function per gate, registered in one table.

Each gate looks at one eval (`GateContext`: the metrics, the paired cases and the
`gates:` config of promptyard.yaml — the BASE's, when there is one: a pull request does not
set its own merge gate) and returns pass / warn / block with a one-line reason. A violated
gate returns its `action`; with `require_significance: true` it blocks only when the change
is also significant at `alpha` in the regression direction (a one-sided test: the gate asks
whether head is worse, as the power analysis behind "cases needed" does; otherwise it
warns). Ratio gates ignore differences under their absolute floor (`min_delta_ms`,
`min_delta_usd`); a base of 0 under a head above the floor is an infinite ratio. When a
dataset is too small for a gate's threshold to be detectable at `power`, the reason says so
and `cases_needed` gives the number of cases.

Gates that compare need a base (`needs_base=True`); the others also judge added prompts
and `check` without `--base`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from promptyard.compare import formatting as fmt
from promptyard.compare.model import EvalComparison, GateResult, MetricResult, Outcome
from promptyard.compare.paired import CaseOutcome
from promptyard.errors import ConfigError
from promptyard.plugins import register_once
from promptyard.spec.config import Gates

EPSILON = 1e-12


@dataclass
class GateContext:
    """What a gate sees: one eval's comparison and its cases.

    `base`/`head` are the paired cases in the same order (base None without a base); `head_all`
    every head case that has a result (added prompts and thresholds use all of them);
    `base_all` every base outcome by case id, the unpaired ones included (to say why a base
    case is missing).
    """

    prompt: str
    status: str
    evaluation: EvalComparison
    config: Gates
    base: list[CaseOutcome] | None
    head: list[CaseOutcome]
    head_all: list[CaseOutcome]
    base_all: Mapping[str, CaseOutcome] | None = None

    def metric(self, name: str) -> MetricResult | None:
        return self.evaluation.metrics.get(name)

    def result(
        self,
        gate: str,
        action: Literal["block", "warn"],
        outcome: Outcome,
        reason: str,
        *,
        metric: str | None = None,
        cases_needed: int | None = None,
    ) -> GateResult:
        return GateResult(
            gate, action, outcome, reason, metric, self.evaluation.dataset, cases_needed
        )


GateFunction = Callable[[GateContext], list[GateResult]]


@dataclass(frozen=True)
class RegisteredGate:
    name: str
    summary: str
    needs_base: bool
    check: GateFunction


GATES: dict[str, RegisteredGate] = {}


def gate(
    name: str, summary: str, *, needs_base: bool = False
) -> Callable[[GateFunction], GateFunction]:
    """Register a gate function under `name` (the key in the report)."""

    def register(fn: GateFunction) -> GateFunction:
        register_once(GATES, name, RegisteredGate(name, summary, needs_base, fn), "gate")
        return fn

    return register


def evaluate_gates(ctx: GateContext) -> list[GateResult]:
    """Every registered gate's results for one eval, in registry order."""
    results: list[GateResult] = []
    for registered in GATES.values():
        if registered.needs_base and ctx.base is None:
            continue
        results.extend(registered.check(ctx))
    return results


# --- helpers -----------------------------------------------------------------------------


def _violated(
    ctx: GateContext, action: Literal["block", "warn"], require: bool, metric: MetricResult
) -> tuple[Outcome, str]:
    """The outcome of a violated gate, and a note when significance decides it.

    Significance is one-sided, in the regression direction (`metric.p_regression`): the
    gate is about drops, and a two-sided p would ask for twice the evidence the power
    analysis ("cases needed") assumes."""
    alpha = ctx.config.alpha
    if not require:
        return action, ""
    p = metric.p_regression
    shown = f"one-sided p = {fmt.p_value(p)} for a drop"
    if p is not None and p < alpha:
        return action, f"; significant at α = {alpha:g} ({shown})"
    return "warn", f"; not significant at α = {alpha:g} ({shown}), so it does not block"


def _too_small(needed: int | None, n: int, what: str, power: float) -> str:
    if needed is None or needed <= n:
        return ""
    return (
        f"; dataset too small to detect a {what} at {power:.0%} power: "
        f"{needed} cases needed, {n} compared"
    )


def _cases_needed(fn: Callable[[], int]) -> int | None:
    try:
        return fn()
    except ConfigError:  # e.g. a drop the observed data cannot express
        return None


# --- the gates ---------------------------------------------------------------------------


@gate("pass_rate", "the pass rate may drop at most `max_drop` (McNemar)", needs_base=True)
def pass_rate_gate(ctx: GateContext) -> list[GateResult]:
    cfg = ctx.config.pass_rate
    metric = ctx.metric("pass_rate")
    if metric is None or metric.delta is None or ctx.base is None:
        return [ctx.result("pass_rate", cfg.action, "warn", "no case has results on both sides: nothing to compare")]  # fmt: skip
    from promptyard.stats import mcnemar_cases_needed

    base_pass = [c.passed for c in ctx.base]
    head_pass = [c.passed for c in ctx.head]
    needed = None
    if cfg.max_drop > 0:
        needed = _cases_needed(
            lambda: (
                mcnemar_cases_needed(
                    base_pass,
                    head_pass,
                    cfg.max_drop,
                    alpha=ctx.config.alpha,
                    power=ctx.config.power,
                ).n
            )
        )
    small = _too_small(needed, metric.n, f"{fmt.points(cfg.max_drop)} drop", ctx.config.power)
    regressions = sum(b and not h for b, h in zip(base_pass, head_pass, strict=True))
    drop = -metric.delta
    moved = f"{fmt.pct(metric.base)} → {fmt.pct(metric.head)}"
    test = f"two-sided p = {fmt.p_value(metric.p_value)}, McNemar exact"
    if drop > cfg.max_drop + EPSILON:
        outcome, sig = _violated(ctx, cfg.action, cfg.require_significance, metric)
        reason = (
            f"pass rate dropped {fmt.points(drop)} ({moved}), more than the allowed "
            f"{fmt.points(cfg.max_drop)}; {regressions} case(s) went pass → fail ({test}){sig}"
        )
    else:
        outcome = "pass"
        reason = (
            f"pass rate {moved} ({fmt.points(metric.delta, signed=True)}; allowed drop "
            f"{fmt.points(cfg.max_drop)}; {test})"
        )
    return [
        ctx.result(
            "pass_rate",
            cfg.action,
            outcome,
            reason + small,
            metric="pass_rate",
            cases_needed=needed if small else None,
        )
    ]


def _score_values(ctx: GateContext, metric: MetricResult) -> tuple[list[float], list[float]]:
    assert ctx.base is not None
    if metric.name == "mean_score":
        return [c.score for c in ctx.base], [c.score for c in ctx.head]
    b: list[float] = []
    h: list[float] = []
    for base, head in zip(ctx.base, ctx.head, strict=True):
        vb, vh = base.metric(metric.label), head.metric(metric.label)
        if vb is not None and vh is not None:
            b.append(vb)
            h.append(vh)
    return b, h


def _score_cases_needed(ctx: GateContext, b: list[float], h: list[float], drop: float) -> int:
    """Cases the score test needs to detect `drop`: pass/fail scores are tested like the
    pass rate (exact McNemar, via the sign-flip test), so they are planned like it too."""
    from promptyard.stats import mcnemar_cases_needed, paired_t_cases_needed

    alpha, power = ctx.config.alpha, ctx.config.power
    if set(b) | set(h) <= {0.0, 1.0}:
        passed = ([x == 1.0 for x in b], [x == 1.0 for x in h])
        needed: int = mcnemar_cases_needed(*passed, drop, alpha=alpha, power=power).n
    else:
        needed = paired_t_cases_needed(b, h, drop, alpha=alpha, power=power).n
    return needed


@gate(
    "score",
    "the mean score and each named metric may drop at most `max_drop` (paired t, exact "
    "sign-flip for few-valued scores, or exact Wilcoxon)",
    needs_base=True,
)
def score_gate(ctx: GateContext) -> list[GateResult]:
    cfg = ctx.config.score
    results = []
    scored = [m for m in ctx.evaluation.metrics.values() if m.unit == "score"]
    for metric in scored:
        if metric.delta is None:
            continue
        label = "mean score" if metric.name == "mean_score" else f"metric {metric.label!r}"
        b, h = _score_values(ctx, metric)
        needed = None
        if len(b) >= 2 and cfg.max_drop > 0:
            needed = _cases_needed(partial(_score_cases_needed, ctx, b, h, cfg.max_drop))
        small = _too_small(needed, metric.n, f"drop of {cfg.max_drop:g}", ctx.config.power)
        moved = f"{fmt.number(metric.base)} → {fmt.number(metric.head)}"
        test = f"two-sided p = {fmt.p_value(metric.p_value)}, {metric.test}"
        drop = -metric.delta
        if drop > cfg.max_drop + EPSILON:
            outcome, sig = _violated(ctx, cfg.action, cfg.require_significance, metric)
            reason = (
                f"{label} dropped {drop:.3f} ({moved}), more than the allowed "
                f"{cfg.max_drop:g} ({test}){sig}"
            )
        else:
            outcome = "pass"
            reason = f"{label} {moved} ({fmt.number(metric.delta, signed=True)}; allowed drop {cfg.max_drop:g}; {test})"  # fmt: skip
        results.append(
            ctx.result(
                "score",
                cfg.action,
                outcome,
                reason + small,
                metric=metric.name,
                cases_needed=needed if small else None,
            )
        )
    return results


@gate("error_rate", "at most `max` of the head's cases may end in an error")
def error_rate_gate(ctx: GateContext) -> list[GateResult]:
    cfg = ctx.config.error_rate
    cases = ctx.head_all
    if not cases:
        return []
    errored = [c for c in cases if c.errored]
    rate = len(errored) / len(cases)
    base = ""
    metric = ctx.metric("error_rate")
    if metric is not None and metric.base is not None:
        base = f" (base {fmt.pct(metric.base)})"
    shown = ", ".join(c.case_id for c in errored[:3])
    if rate > cfg.max + EPSILON:
        first = errored[0].error or "error"
        reason = (
            f"error rate {fmt.pct(rate)}{base} is over the allowed {fmt.pct(cfg.max)}: "
            f"{len(errored)} of {len(cases)} case(s) errored ({shown}{'…' if len(errored) > 3 else ''}; "
            f"first: {first[:160]})"
        )
        return [ctx.result("error_rate", cfg.action, cfg.action, reason, metric="error_rate")]
    reason = f"error rate {fmt.pct(rate)}{base}; allowed {fmt.pct(cfg.max)}"
    return [ctx.result("error_rate", cfg.action, "pass", reason, metric="error_rate")]


def _ratio_gate(
    ctx: GateContext,
    name: str,
    metric_name: str,
    what: str,
    max_ratio: float,
    floor: float,
    floor_text: str,
    action: Literal["block", "warn"],
    show: Callable[[float | None], str],
) -> list[GateResult]:
    metric = ctx.metric(metric_name)
    if metric is None or metric.base is None or metric.head is None:
        missing = (
            "no token costs known (add the model to `pricing` in promptyard.yaml)"
            if metric_name == "cost_per_case_usd"
            else "no latencies measured"
        )
        return [ctx.result(name, action, "pass", missing, metric=metric_name)]
    moved = f"{what} {show(metric.base)} → {show(metric.head)}"
    if metric.ratio is None:  # both 0
        return [ctx.result(name, action, "pass", f"{moved}; no ratio (both are 0)", metric=metric_name)]  # fmt: skip
    if math.isinf(metric.ratio):
        ratio = f"base is 0: an unbounded ratio, allowed {max_ratio:g}×"
    else:
        ratio = f"{fmt.ratio(metric.ratio)}, allowed {max_ratio:g}×"
    difference = metric.head - metric.base
    if metric.ratio > max_ratio + EPSILON:
        if difference < floor:
            reason = f"{moved} ({ratio}), but the difference is under the {floor_text} floor: noise"
            return [ctx.result(name, action, "pass", reason, metric=metric_name)]
        return [ctx.result(name, action, action, f"{moved} ({ratio})", metric=metric_name)]
    return [ctx.result(name, action, "pass", f"{moved} ({ratio})", metric=metric_name)]


def _priced(cases: Sequence[CaseOutcome]) -> bool:
    return any(c.cost is not None for c in cases)


@gate("cost_per_case", "head / base cost per case may be at most `max_ratio`", needs_base=True)
def cost_gate(ctx: GateContext) -> list[GateResult]:
    cfg = ctx.config.cost_per_case
    assert ctx.base is not None
    # Costs are compared only where both sides are priced: a head that moves to a model
    # missing from `pricing` (or a base on one) would otherwise compare nothing, silently.
    answered_base = [c for c in ctx.base if not c.errored]
    answered_head = [c for c in ctx.head if not c.errored]
    base_priced, head_priced = _priced(answered_base), _priced(answered_head)
    if answered_base and answered_head and base_priced != head_priced:
        side, other = ("base", "head") if head_priced else ("head", "base")
        reason = (
            f"cost unknown on one side: add the model to pricing (`pricing` in promptyard.yaml); "
            f"the {side} has no token cost, the {other} has, so the cost per case cannot be "
            "compared"
        )
        return [ctx.result("cost_per_case", cfg.action, "warn", reason, metric="cost_per_case_usd")]
    return _ratio_gate(
        ctx,
        "cost_per_case",
        "cost_per_case_usd",
        "cost per case",
        cfg.max_ratio,
        cfg.min_delta_usd,
        fmt.usd(cfg.min_delta_usd),
        cfg.action,
        fmt.usd,
    )


@gate("latency_p95", "head / base p95 latency may be at most `max_ratio`", needs_base=True)
def latency_gate(ctx: GateContext) -> list[GateResult]:
    cfg = ctx.config.latency_p95
    return _ratio_gate(
        ctx,
        "latency_p95",
        "latency_p95_ms",
        "p95 latency",
        cfg.max_ratio,
        cfg.min_delta_ms,
        fmt.ms(cfg.min_delta_ms),
        cfg.action,
        fmt.ms,
    )


@gate("threshold", "the head's pass rate must meet the eval's `threshold`")
def threshold_gate(ctx: GateContext) -> list[GateResult]:
    cases = ctx.head_all
    if ctx.evaluation.cases == 0:  # an empty dataset proves nothing: never a pass
        reason = f"{ctx.evaluation.dataset} has no cases: nothing was evaluated; add cases"
        return [ctx.result("threshold", "block", "block", reason, metric="pass_rate")]
    if not cases:  # no head answers at all: the coverage gate blocks and says why
        return []
    threshold = ctx.evaluation.threshold
    rate = sum(c.passed for c in cases) / len(cases)
    shown = f"pass rate {fmt.pct(rate)} ({sum(c.passed for c in cases)}/{len(cases)})"
    if rate >= threshold - EPSILON:
        return [ctx.result("threshold", "block", "pass", f"{shown} meets the threshold {fmt.pct(threshold)}", metric="pass_rate")]  # fmt: skip
    if ctx.base is not None and ctx.base:
        base_rate = sum(c.passed for c in ctx.base) / len(ctx.base)
        head_rate = sum(c.passed for c in ctx.head) / len(ctx.head)
        if base_rate < threshold - EPSILON and head_rate >= base_rate - EPSILON:
            reason = (
                f"{shown} is below the threshold {fmt.pct(threshold)}, as the base was "
                f"({fmt.pct(base_rate)}): not made worse by this change"
            )
            return [ctx.result("threshold", "block", "warn", reason, metric="pass_rate")]
    failing = [c.case_id for c in cases if not c.passed]
    listed = ", ".join(failing[:5]) + ("…" if len(failing) > 5 else "")
    reason = f"{shown} is below the threshold {fmt.pct(threshold)}; failing: {listed}"
    return [ctx.result("threshold", "block", "block", reason, metric="pass_rate")]


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(ids[:5]) + ("…" if len(ids) > 5 else "")


@gate("coverage", "every head case must have a result; base gaps are reported")
def coverage_gate(ctx: GateContext) -> list[GateResult]:
    evaluation = ctx.evaluation
    results = []
    infra = [
        (side, ids)
        for side, ids in (("base", evaluation.infra_base), ("head", evaluation.infra_head))
        if ids
    ]
    for side, ids in infra:
        reason = (
            f"the {side} had {len(ids)} case(s) fail for infrastructure reasons ({_ids(ids)}; "
            "within the provider's max_infra_error_rate): no verdict, so they are left out of "
            f"the comparison; compared on the other {evaluation.paired}"
        )
        results.append(ctx.result("coverage", "warn", "warn", reason))
    unanswered = [cid for cid in evaluation.missing_head if cid not in evaluation.infra_head]
    if unanswered:
        n = len(unanswered)
        reason = (
            f"{n} head case(s) have no result ({_ids(unanswered)}): no recorded "
            f"response offline; record them with `promptyard eval {ctx.prompt} --record` and "
            "commit golden/recordings/, or run with a provider"
        )
        results.append(ctx.result("coverage", "block", "block", reason))
    base_gaps = [cid for cid in evaluation.missing_base if cid not in evaluation.infra_base]
    if base_gaps:
        n = len(base_gaps)
        first = None
        if ctx.base_all is not None:
            first = next(
                (
                    ctx.base_all[cid].error
                    for cid in base_gaps
                    if cid in ctx.base_all and ctx.base_all[cid].error
                ),
                None,
            )
        why = (
            f"first error: {first[:160]}"
            if first
            else "no recorded response offline, or it cannot render the head's variables"
        )
        reason = (
            f"the base could not answer {n} case(s) ({_ids(base_gaps)}; {why}): "
            f"they are left out of the comparison, not counted as base failures; compared on "
            f"the other {evaluation.paired}"
        )
        results.append(ctx.result("coverage", "warn", "warn", reason))
    return results
