"""The decision rule: where each treatment stands, and ship, keep-control, continue or
invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from promptyard.errors import ConfigError
from promptyard.spec.experiment import ExperimentSpec
from promptyard.stats.experiment.plan import plan_experiment
from promptyard.stats.experiment.results import Decision, MetricResult
from promptyard.stats.sequential import BURN_IN
from promptyard.stats.srm import SRMResult

REQUIRED_BY = {
    "experiment": "min_samples",
    "plan": "min_samples is not set: the units the plan needs",
    "sequential burn-in": "min_samples is not set: the sequential test's burn-in",
    "default": "min_samples is not set and the plan needs every metric's sd: the default",
}


def required_samples(spec: ExperimentSpec) -> tuple[dict[str, int], str]:
    """(units per variant before any decision, where the numbers come from).

    `min_samples` of the experiment when set ("experiment"). Otherwise: a sequential
    experiment's p-values are valid at every look, after the mSPRT burn-in of `BURN_IN`
    units per arm ("sequential burn-in"); a fixed-horizon one decides only once it has the
    units its plan needs ("plan": deciding earlier is peeking), or `BURN_IN` when it cannot
    be planned (a continuous metric without `sd`: "default").
    """
    names = [v.name for v in spec.variants]
    if spec.min_samples:
        return dict.fromkeys(names, spec.min_samples), "experiment"
    if spec.sequential:
        return dict.fromkeys(names, BURN_IN), "sequential burn-in"
    try:
        return plan_experiment(spec).per_variant, "plan"
    except ConfigError:
        return dict.fromkeys(names, BURN_IN), "default"


def _improvement(result: MetricResult) -> float:
    return result.difference if result.direction == "increase" else -result.difference


def _describe(result: MetricResult) -> str:
    """The metric's difference and the Holm-adjusted p-value the decision family uses."""
    kind = "Holm-adjusted" + (", always-valid" if result.sequential else "")
    return f"{result.metric} {result.difference:+.4g} (p={result.p_adjusted:.3g}, {kind})"


def _describe_harm(result: MetricResult, sequential: bool) -> str:
    """A guardrail's difference and its one-sided, unadjusted harm p-value."""
    kind = "one-sided, not adjusted" + (", always-valid" if sequential else "")
    return f"{result.metric} {result.difference:+.4g} (p={result.harm_p_value:.3g}, {kind})"


def _harmed(result: MetricResult, alpha: float) -> bool:
    return result.harm_p_value is not None and result.harm_p_value <= alpha


def _srm_invalid(srm: SRMResult, rule: str) -> Decision:
    return Decision(
        "invalid",
        None,
        rule,
        f"sample ratio mismatch (chi-square p={srm.p_value:.3g} < {srm.threshold:g}): the "
        "units per variant do not match the weights, so no result can be trusted; find "
        "the cause (assignment, logging, bots) before reading the metrics",
    )


def _losing_reason(worse: list[MetricResult], harmed: list[MetricResult], sequential: bool) -> str:
    """Why a treatment loses: the rule's metrics that are worse, then the harmed guardrails."""
    reasons = []
    if worse:
        reasons.append("significantly worse on " + ", ".join(map(_describe, worse)))
    if harmed:
        listed = ", ".join(_describe_harm(r, sequential) for r in harmed)
        reasons.append(
            f"guardrail {listed} is significantly worse, which blocks shipping"
            if len(harmed) == 1
            else f"guardrails {listed} are significantly worse, which blocks shipping"
        )
    return "; ".join(reasons)


@dataclass(frozen=True)
class _Standing:
    """Where one treatment stands under the decision rule.

    `status` is candidate (may ship; `rank` orders candidates), loser (worse on a metric the
    rule counts, or a guardrail harmed) or pending (not yet better enough).
    """

    status: Literal["candidate", "loser", "pending"]
    reason: str
    rank: tuple[float, float] = (0.0, 0.0)


def _standing(spec: ExperimentSpec, treatment: str, metrics: dict[str, MetricResult]) -> _Standing:
    rule = spec.decision.rule
    primary = metrics[spec.primary]
    harmed = [metrics[g] for g in spec.guardrails if _harmed(metrics[g], spec.alpha)]
    # The metrics the rule counts; a harmed guardrail among them is reported as such.
    if rule == "k-of-n":
        names = spec.decision.metrics or [m.name for m in spec.metrics]
    else:
        names = [spec.primary]
    wins = [metrics[n] for n in names if metrics[n].outcome == "better"]
    worse = [
        metrics[n]
        for n in names
        if metrics[n].outcome == "worse" and not _harmed(metrics[n], spec.alpha)
    ]
    no_harm = " and no guardrail is significantly worse" if spec.guardrails else ""
    if worse or harmed:
        return _Standing("loser", _losing_reason(worse, harmed, spec.sequential))
    if rule == "k-of-n":
        assert spec.decision.k is not None
        if len(wins) < spec.decision.k:
            return _Standing(
                "pending",
                f"{treatment}: {len(wins)} of {len(names)} metrics significantly better, "
                f"need {spec.decision.k}",
            )
        why = (
            f"{len(wins)} of {len(names)} metrics significantly better "
            f"(need {spec.decision.k}): "
            + ", ".join(map(_describe, wins))
            + "; none significantly worse"
            + no_harm
        )
        return _Standing("candidate", why, (len(wins), _improvement(primary)))
    if wins:
        why = f"primary {_describe(primary)} is significantly better{no_harm}"
        return _Standing("candidate", why, (1, _improvement(primary)))
    return _Standing("pending", f"{treatment}: primary {_describe(primary)} is not significant")


def _too_early(
    involved: list[str], counts: dict[str, int], required: dict[str, int], source: str
) -> str:
    """The clause that defers a decision while a variant it involves lacks units, or ""."""
    short = [n for n in dict.fromkeys(involved) if counts.get(n, 0) < required.get(n, 0)]
    listed = ", ".join(f"{n} has {counts.get(n, 0):,} of {required[n]:,}" for n in short)
    return f"; but {listed} units ({REQUIRED_BY[source]}); keep collecting" if short else ""


def _decide(
    spec: ExperimentSpec,
    srm: SRMResult,
    results: list[MetricResult],
    counts: dict[str, int],
    required: dict[str, int],
    source: str,
) -> Decision:
    """The decision rule, after the SRM check; a harmed guardrail blocks under every rule.

    Nothing is decided (ship or keep-control) while a variant it involves has fewer units
    than `required`: the action is then `continue`, with the would-be decision as reason.
    """
    rule = spec.decision.rule
    if srm.flagged:
        return _srm_invalid(srm, rule)
    control = spec.control_variant.name
    by_treatment: dict[str, dict[str, MetricResult]] = {}
    for result in results:
        by_treatment.setdefault(result.treatment, {})[result.metric] = result
    standings = {t: _standing(spec, t, metrics) for t, metrics in by_treatment.items()}
    candidates = sorted(
        ((s.rank, t, s.reason) for t, s in standings.items() if s.status == "candidate"),
        reverse=True,
    )
    losers = {t: s.reason for t, s in standings.items() if s.status == "loser"}
    pending = [s.reason for s in standings.values() if s.status == "pending"]
    if candidates:
        _, best, why = candidates[0]
        wait = _too_early([control, best], counts, required, source)
        if wait:
            return Decision("continue", best, rule, f"{best}: {why}{wait}")
        return Decision("ship", best, rule, f"{best}: {why}")
    if losers and not pending:
        listed = "; ".join(f"{t}: {why}" for t, why in losers.items())
        wait = _too_early([control, *losers], counts, required, source)
        if wait:
            return Decision("continue", None, rule, f"would keep {control}: {listed}{wait}")
        return Decision("keep-control", control, rule, f"keep {control}: {listed}")
    listed = "; ".join(pending + [f"{t}: {why}" for t, why in losers.items()])
    return Decision("continue", None, rule, f"no variant meets the decision rule yet ({listed})")
