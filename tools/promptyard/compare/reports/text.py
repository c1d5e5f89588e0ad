"""`--format text`: plain text for a terminal or a CI log."""

from __future__ import annotations

from promptyard.compare import formatting as fmt
from promptyard.compare.model import ComparisonReport, EvalComparison, Flip, PromptComparison
from promptyard.compare.reports import report_format
from promptyard.compare.reports.common import (
    call_text,
    decision_label,
    gate_label,
    mode,
    scope,
    sides,
    slice_note,
    title,
    verdict,
)

MARKS = {"pass": "ok   ", "warn": "WARN ", "block": "BLOCK"}
FLIPS_SHOWN = 10
LINT_SHOWN = 20


def _oneline(text: str | None, limit: int = 100) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _metrics_table(evaluation: EvalComparison) -> list[str]:
    rows = [("metric", "base", "head", "delta", "95% CI", "p (two-sided)", "test")]
    for m in evaluation.metrics.values():
        rows.append(
            (
                m.label
                if m.name in ("pass_rate", "mean_score") or m.unit != "score"
                else f"{m.label} (metric)",
                fmt.value(m, m.base),
                fmt.value(m, m.head),
                fmt.delta(m) if m.delta is not None else "-",
                fmt.interval(m),
                fmt.p_value(m.p_value),
                m.test,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "    " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


def _flip_line(flip: Flip) -> str:
    score = f"score {fmt.number(flip.base.score, 2)} → {fmt.number(flip.head.score, 2)}"
    why = flip.head.reason if flip.direction == "pass_to_fail" else flip.base.reason
    line = f"      {flip.case_id} ({score}): {_oneline(why, 120)}"
    for index, pair in enumerate(flip.calls, 1):

        def mark(part: str) -> str:
            return f"*{part}*"

        base = call_text(pair.base, pair.differing, mark)
        head = call_text(pair.head, pair.differing, mark)
        other = "  (another tool)" if pair.renamed else ""
        line += f"\n        call {index}: {_oneline(base, 80)} → {_oneline(head, 80)}{other}"
    return line


def _prompt(prompt: PromptComparison) -> list[str]:
    version = sides(prompt)
    lines = [f"{MARKS[prompt.decision]} {prompt.prompt}  [{prompt.status}]  {version}".rstrip()]
    for reason in prompt.reasons:
        lines.append(f"    {reason}")
    for gate in prompt.gates:
        lines.append(f"  {MARKS[gate.outcome]} {gate.gate}: {gate.reason}")
    for evaluation in prompt.evals:
        paired = f", {evaluation.paired} paired" if evaluation.has_base else ""
        lines.append(
            f"  {evaluation.dataset}: {evaluation.cases_label}{paired}, threshold {fmt.pct(evaluation.threshold)}"
        )
        if evaluation.dataset_change is not None:
            lines.append(f"    dataset: {evaluation.dataset_change.summary()}")
        if evaluation.metrics:
            lines.extend(_metrics_table(evaluation))
        for gate in evaluation.gates:
            lines.append(f"    {MARKS[gate.outcome]} {gate_label(prompt, gate)}: {gate.reason}")
        for note in evaluation.notes:
            lines.append(f"    note: {note}")
        for title_, flips, total in (
            ("pass → fail", evaluation.pass_to_fail, evaluation.flips_total[0]),
            ("fail → pass", evaluation.fail_to_pass, evaluation.flips_total[1]),
        ):
            if not total:
                continue
            lines.append(f"    {title_} ({total}):")
            lines.extend(_flip_line(f) for f in flips[:FLIPS_SHOWN])
            if total > FLIPS_SHOWN:
                lines.append(
                    f"      … and {total - FLIPS_SHOWN} more (--format html shows every one)"
                )
    return lines


@report_format("text")
def text_report(report: ComparisonReport) -> str:
    lines = [f"{title(report)}", scope(report)]
    for note in (slice_note(report), mode(report)):
        if note is not None:
            lines.append(note)
    lines.append("")
    for gate in report.gates:
        lines.append(f"{MARKS[gate.outcome]} {gate.gate}: {gate.reason}")
    if report.gates:
        lines.append("")
    for prompt in report.prompts:
        lines.extend(_prompt(prompt))
        lines.append("")
    for dataset in report.datasets:
        users = f" (used by {', '.join(dataset.used_by)})" if dataset.used_by else ""
        lines.append(f"dataset {dataset.path}{users}: {dataset.summary()}")
    if report.datasets:
        lines.append("")
    if report.lint is not None:
        lint = report.lint
        lines.append(
            f"lint: {lint.errors} error(s), {lint.warnings} warning(s) in {lint.files_checked} file(s)"
        )
        for f in lint.findings[:LINT_SHOWN]:
            lines.append(f"  {f.file}:{f.line}:{f.column} {f.severity} {f.rule} {f.message}")
        if len(lint.findings) > LINT_SHOWN:
            lines.append(f"  … and {len(lint.findings) - LINT_SHOWN} more (`promptyard lint`)")
        lines.append("")
    lines.append(f"{decision_label(report)}: {report.decision.upper()} — {verdict(report)}")
    return "\n".join(lines) + "\n"
