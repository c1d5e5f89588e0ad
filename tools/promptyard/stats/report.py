"""Human-readable renderings of stats results that are files, not terminal output.

`analysis_markdown(analysis)` is the Markdown report of `experiment analyze` (for a pull
request comment or a wiki page); the sample-ratio check comes first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from promptyard.plugins import NamedRegistry
from promptyard.stats.experiment import ExperimentAnalysis, MetricResult


def fmt_value(value: float | None, kind: str) -> str:
    """A rate as a percentage, anything else with 4 significant digits."""
    if value is None:
        return "—"
    return f"{value:.2%}" if kind == "binary" else f"{value:.4g}"


def fmt_difference(value: float | None, kind: str) -> str:
    """A difference: percentage points for rates, signed 4 significant digits otherwise."""
    if value is None:
        return "—"
    return f"{value * 100:+.2f} pp" if kind == "binary" else f"{value:+.4g}"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "—"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def interval(result: MetricResult) -> str:
    return (
        f"{fmt_difference(result.difference, result.type)} "
        f"[{fmt_difference(result.ci_low, result.type)}, "
        f"{fmt_difference(result.ci_high, result.type)}]"
    )


def lift_text(result: MetricResult) -> str:
    lift = result.lift
    if lift.lift is None or lift.ci_low is None or lift.ci_high is None:
        return "—"
    return f"{lift.lift:+.2%} [{lift.ci_low:+.2%}, {lift.ci_high:+.2%}]"


OUTCOME_MARK = {"better": "better ✅", "worse": "worse ❌", "inconclusive": "inconclusive"}


def error_control_lines(
    alpha: float, decision: int, secondary: int, guardrails: int, *, sequential: bool = False
) -> list[str]:
    """How each family of tests is controlled (`stats.experiment` module docstring).

    `decision`, `secondary` and `guardrails` count the comparisons (metrics × treatments) of
    each family; `sequential` says the p-values are always-valid (mSPRT).
    """
    valid = ", always-valid (mSPRT)" if sequential else ""
    lines = [
        f"decision (the metrics that can ship a variant): two-sided{valid}, Holm-adjusted "
        f"over {decision} comparison(s), the strictest step at alpha {alpha / decision:.4g}"
    ]
    if secondary:
        lines.append(
            f"secondary: two-sided{valid}, Holm-adjusted among their own {secondary} "
            "comparison(s); they never decide"
        )
    if guardrails:
        lines.append(
            f"harm (guardrails): one-sided{valid}, in the harmful direction, at alpha {alpha:g} "
            "not adjusted (a correction would make harm harder to detect); a significant "
            "harm blocks shipping"
        )
    return lines


def analysis_error_control(analysis: ExperimentAnalysis) -> list[str]:
    """`error_control_lines` of an analysis."""
    families = Counter(r.family for r in analysis.metrics)
    return error_control_lines(
        analysis.alpha,
        families["decision"],
        families["secondary"],
        sum(r.harm_p_value is not None for r in analysis.metrics),
        sequential=analysis.sequential,
    )


def p_text(result: MetricResult, sequential: bool) -> str:
    """The p-value(s) that decide a metric's outcome, named."""
    parts = []
    if result.p_adjusted is not None:
        kind = "Holm-adjusted" + (" always-valid" if sequential else "")
        parts.append(f"{kind} p {fmt_p(result.p_adjusted)}")
    if result.harm_p_value is not None:
        kind = "one-sided" + (" always-valid" if sequential else "")
        parts.append(f"harm p {fmt_p(result.harm_p_value)} ({kind}, not adjusted)")
    return ", ".join(parts)


def analysis_markdown(analysis: ExperimentAnalysis) -> str:
    """The analysis as Markdown: SRM first, then the decision, metrics and warnings."""
    lines: list[str] = []
    decision = analysis.decision
    srm = analysis.srm
    headline = decision.action + (f" {decision.variant}" if decision.variant else "")
    lines.append(f"## Experiment `{analysis.experiment}`: {headline}")
    lines.append("")
    if srm.flagged:
        lines.append(
            f"> [!CAUTION]\n> **Sample ratio mismatch** (χ² = {srm.statistic:.2f}, "
            f"p = {srm.p_value:.3g} < {srm.threshold:g}): the units per variant do not match "
            "the configured weights. Do not trust any result below until the cause is found."
        )
        lines.append("")
    lines.append("### Sample ratio")
    lines.append("")
    lines.append("| variant | weight | expected | units | share |")
    lines.append("|---|---:|---:|---:|---:|")
    for variant, expected in zip(analysis.variants, srm.expected, strict=True):
        lines.append(
            f"| {variant.name} | {variant.weight:g}% | {expected:.0f} | {variant.units} | "
            f"{variant.share:.2%} |"
        )
    verdict = "**mismatch**" if srm.flagged else "ok"
    lines.append("")
    if srm.skipped_reason is not None:
        lines.append(f"not checked: {srm.skipped_reason}")
    else:
        lines.append(f"χ² = {srm.statistic:.3f}, p = {srm.p_value:.3g}: {verdict}")
    lines.append("")
    lines.append("### Decision")
    lines.append("")
    lines.append(f"**{headline}** ({decision.rule}): {decision.reason}")
    lines.append("")
    lines.append("### Metrics")
    lines.append("")
    lines.extend(f"- {line}" for line in analysis_error_control(analysis))
    lines.append("")
    confidence = f"{1 - analysis.alpha:.0%}"
    mark = ", mSPRT" if analysis.sequential else ""
    lines.append(
        f"| metric | role | variant | {analysis.control} | variant value | difference "
        f"[{confidence} CI] | lift | p | p (Holm{mark}) | harm p (one-sided{mark}) "
        "| P(better) | expected loss | outcome |"
    )
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in analysis.metrics:
        lines.append(
            f"| {r.metric} | {r.role} | {r.treatment} | {fmt_value(r.control_mean, r.type)} | "
            f"{fmt_value(r.treatment_mean, r.type)} | {interval(r)} | {lift_text(r)} | "
            f"{fmt_p(r.p_value)} | {fmt_p(r.p_adjusted)} | {fmt_p(r.harm_p_value)} | "
            f"{r.prob_better:.1%} | {fmt_value(r.expected_loss, r.type)} | "
            f"{OUTCOME_MARK[r.outcome]} |"
        )
    lines.append("")
    check = analysis.assignment
    lines.append(
        f"Assignment check: {check.mismatched} of {check.checked} rows in a different variant "
        "than `assign()` gives."
    )
    if analysis.warnings:
        lines.append("")
        lines.append("### Warnings")
        lines.append("")
        lines.extend(f"- {w}" for w in analysis.warnings)
    return "\n".join(lines) + "\n"


# `experiment analyze --format NAME` beyond text and json (the analysis's `to_dict()`).
ANALYSIS_FORMATS: NamedRegistry[Callable[[ExperimentAnalysis], str]] = NamedRegistry(
    "experiment analysis format"
)
ANALYSIS_FORMATS.add("markdown", analysis_markdown)
