"""`--format html`: one self-contained file to read a change in depth.

No network: the CSS, the script and the charts (inline SVG) are in the file, and nothing
is loaded from anywhere. It holds the decision, a summary table, for every eval a chart of
each metric's delta with its 95% interval, the metrics and gates, and every paired case
with the base and head outputs side by side, the words that differ highlighted: flipped
cases first, then changed answers, then the rest collapsed. A "regressions only" switch hides the prompts, gates and cases that did not get worse.

Everything user-provided (names, case ids, outputs, reasons) is HTML-escaped; the script
reads no data, it only toggles a class.
"""

from __future__ import annotations

import html
import re
from typing import Any

from promptyard.compare import formatting as fmt
from promptyard.compare.flips import word_diff
from promptyard.compare.model import (
    CaseSide,
    ComparisonReport,
    DiffOp,
    EvalComparison,
    Flip,
    MetricResult,
    PairedCase,
    PromptComparison,
)
from promptyard.compare.reports import report_format
from promptyard.compare.reports.common import (
    STATUS_WORDS,
    call_text,
    decision_label,
    decision_words,
    gate_label,
    mode,
    scope,
    sides,
    slice_note,
    title,
    verdict,
)

CSS = """
:root { --block: #b3261e; --warn: #8a5a00; --pass: #1b6e2e; --muted: #5f6368; --line: #dadce0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #202124; }
header { padding: 16px 24px; border-bottom: 1px solid var(--line); position: sticky; top: 0;
  background: #fff; z-index: 1; }
main { padding: 8px 24px 48px; max-width: 1400px; }
h1 { margin: 0 0 4px; font-size: 22px; }
h1.block { color: var(--block); } h1.warn { color: var(--warn); } h1.pass { color: var(--pass); }
h2 { font-size: 18px; margin: 28px 0 6px; } h3 { font-size: 15px; margin: 18px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 6px; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f8f9fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; color: #fff; }
.badge.block { background: var(--block); } .badge.warn { background: var(--warn); }
.badge.pass { background: var(--pass); }
.muted { color: var(--muted); }
ul.gates { list-style: none; padding-left: 0; margin: 6px 0; }
ul.gates li { margin: 2px 0; }
.case { border: 1px solid var(--line); border-radius: 6px; margin: 10px 0; }
.case > .head { padding: 6px 10px; background: #f8f9fa; border-bottom: 1px solid var(--line); }
.sbs { display: grid; grid-template-columns: 1fr 1fr; }
.sbs > div { padding: 6px 10px; min-width: 0; }
.sbs > div + div { border-left: 1px solid var(--line); }
pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0; font-size: 13px; }
del { background: #fde0dc; color: #8c1d18; text-decoration: line-through; }
ins { background: #d7f5dd; color: #0d5b22; text-decoration: none; }
svg text { font: 12px system-ui, sans-serif; fill: #202124; }
label.filter { font-weight: 600; cursor: pointer; }
body.only-regressions [data-regression="false"] { display: none; }
"""

SCRIPT = """
(function () {
  var box = document.getElementById("only-regressions");
  function apply() { document.body.classList.toggle("only-regressions", box.checked); }
  box.addEventListener("change", apply);
  apply();
})();
"""


def e(value: object) -> str:
    """HTML-escape user-provided text (quotes too: it may land in an attribute)."""
    return html.escape(str(value), quote=True)


def _anchor(name: str) -> str:
    return "p-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _badge(outcome: str) -> str:
    return f'<span class="badge {outcome}">{outcome}</span>'


def _flag(regression: bool) -> str:
    return f'data-regression="{"true" if regression else "false"}"'


def _is_regression(prompt: PromptComparison) -> bool:
    return prompt.decision != "pass" or any(e.flips_total[0] for e in prompt.evals)


# --- chart -------------------------------------------------------------------------------

ROW = 26
LABEL_W = 170
PLOT_W = 320
VALUE_W = 230


def chart(evaluation: EvalComparison) -> str:
    """An inline SVG: each metric's delta (head − base) as a dot with its 95% interval.

    Each row has its own scale (metrics have different units); the vertical line is "no
    change". Red: the metric got worse; green: better.
    """
    rows = [m for m in evaluation.metrics.values() if m.delta is not None]
    if not rows:
        return ""
    height = ROW * len(rows) + 24
    width = LABEL_W + PLOT_W + VALUE_W
    center = LABEL_W + PLOT_W / 2
    half = PLOT_W / 2 - 12
    parts = [
        f'<svg role="img" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{e(evaluation.dataset)}: change per metric with 95% interval</title>",
        f'<line x1="{center}" y1="4" x2="{center}" y2="{height - 18}" stroke="#9aa0a6" '
        'stroke-dasharray="3,3"/>',
        f'<text x="{center}" y="{height - 4}" text-anchor="middle" class="muted">no change</text>',
    ]
    for i, metric in enumerate(rows):
        y = 14 + i * ROW
        delta = float(metric.delta or 0.0)
        low, high = metric.ci95 if metric.ci95 is not None else (delta, delta)
        span = max(abs(low), abs(high), abs(delta)) or 1.0
        scale = half / (span * 1.1)
        color = "#b3261e" if metric.regressed else "#1b6e2e" if delta else "#5f6368"
        x, x_low, x_high = (center + v * scale for v in (delta, low, high))
        ci = fmt.interval(metric)
        parts.append(
            f'<g class="metric-row"><title>{e(metric.label)}: {e(fmt.delta(metric))} '
            f"(95% CI {e(ci)})</title>"
            f'<text x="{LABEL_W - 8}" y="{y + 4}" text-anchor="end">{e(metric.label)}</text>'
            f'<line x1="{x_low:.1f}" y1="{y}" x2="{x_high:.1f}" y2="{y}" stroke="{color}" '
            'stroke-width="2"/>'
            f'<line x1="{x_low:.1f}" y1="{y - 5}" x2="{x_low:.1f}" y2="{y + 5}" stroke="{color}"/>'
            f'<line x1="{x_high:.1f}" y1="{y - 5}" x2="{x_high:.1f}" y2="{y + 5}" stroke="{color}"/>'
            f'<circle cx="{x:.1f}" cy="{y}" r="4" fill="{color}"/>'
            f'<text x="{LABEL_W + PLOT_W + 8}" y="{y + 4}">{e(fmt.delta(metric))} {e(ci)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- sections ----------------------------------------------------------------------------


def _metric_row(m: MetricResult) -> str:
    ratio = f" ({fmt.ratio(m.ratio)})" if m.ratio is not None else ""
    delta = (fmt.delta(m) if m.delta is not None else "-") + ratio
    name = m.label if m.unit != "score" or m.name == "mean_score" else f"{m.label} (metric)"
    return (
        f"<tr><td>{e(name)}</td><td class=num>{e(fmt.value(m, m.base))}</td>"
        f"<td class=num>{e(fmt.value(m, m.head))}</td><td class=num>{e(delta)}</td>"
        f"<td class=num>{e(fmt.interval(m))}</td><td class=num>{e(fmt.p_value(m.p_value))}</td>"
        f"<td>{e(m.test)}</td><td class=num>{m.n}</td></tr>"
    )


def _side(flip: Flip | PairedCase, which: str, diff: list[DiffOp], truncated: bool) -> str:
    """One output with the words only it has highlighted (base: deleted, head: inserted)."""
    side = flip.base if which == "base" else flip.head
    if side.output is None:
        return '<pre class="muted">(no output)</pre>'
    keep = "-" if which == "base" else "+"
    tag = "del" if which == "base" else "ins"
    chunks = []
    for op, chunk in diff:
        if op == "=":
            chunks.append(e(chunk))
        elif op == keep:
            chunks.append(f"<{tag}>{e(chunk)}</{tag}>")
    more = " <span class=muted>(diff of the first words only)</span>" if truncated else ""
    return f"<pre>{''.join(chunks)}</pre>{more}"


def _verdict(side: CaseSide) -> str:
    return f"{'pass' if side.passed else 'fail'}, score {fmt.number(side.score, 2)}"


def _pair(case: PairedCase) -> str:
    """A paired case side by side: words that differ highlighted, unless the answer is the same."""
    if case.change == "same":
        diff: list[DiffOp] = [("=", case.head.output or "")]
        truncated = False
    else:
        diff, truncated = word_diff(case.base.output, case.head.output)
    regression = case.change == "flipped" and case.base.passed
    return (
        f'<div class="case {case.change}" {_flag(regression)} data-case="{e(case.case_id)}">'
        f'<div class="head"><b>{e(case.case_id)}</b> <span class="muted">base '
        f"{e(_verdict(case.base))} → head {e(_verdict(case.head))}</span></div>"
        f'<div class="sbs"><div><b>base</b>{_side(case, "base", diff, truncated)}</div>'
        f"<div><b>head</b>{_side(case, 'head', diff, truncated)}</div></div></div>"
    )


def _paired(evaluation: EvalComparison) -> str:
    """Every paired case the flips above leave out: flipped past the cap, changed answers,
    then (collapsed) the cases whose answer and verdict are the same."""
    shown = {f.case_id for f in (*evaluation.pass_to_fail, *evaluation.fail_to_pass)}
    groups: dict[str, list[PairedCase]] = {"flipped": [], "changed": [], "same": []}
    for case in evaluation.paired_cases:
        if case.case_id not in shown:
            groups[case.change].append(case)
    out = []
    for change, heading, opened in (
        ("flipped", "More flipped cases", True),
        ("changed", "Same verdict, changed answer", True),
        ("same", "Same answer and verdict", False),
    ):
        cases = groups[change]
        if cases:
            regression = any(c.change == "flipped" and c.base.passed for c in cases)
            out.append(
                f'<details class="paired {change}" {_flag(regression)}'
                f"{' open' if opened else ''}><summary>"
                f"{heading} ({len(cases)})</summary>{''.join(_pair(c) for c in cases)}</details>"
            )
    return "".join(out)


def _case(flip: Flip) -> str:
    regression = flip.direction == "pass_to_fail"
    arrow = "pass → fail" if regression else "fail → pass"
    failing = flip.head if regression else flip.base
    verdicts = {"base": _verdict(flip.base), "head": _verdict(flip.head)}
    return (
        f'<div class="case {"regression" if regression else "improvement"}" {_flag(regression)} '
        f'data-case="{e(flip.case_id)}">'
        f'<div class="head"><b>{e(flip.case_id)}</b> <span class="muted">{e(flip.dataset)}</span> '
        f"— {arrow}: {e(failing.reason or 'failed')}</div>"
        f'<div class="sbs"><div><b>base</b> <span class="muted">{e(verdicts["base"])}</span>'
        f"{_side(flip, 'base', flip.diff, flip.truncated)}</div>"
        f'<div><b>head</b> <span class="muted">{e(verdicts["head"])}</span>'
        f"{_side(flip, 'head', flip.diff, flip.truncated)}</div></div>{_calls(flip)}</div>"
    )


def _calls(flip: Flip) -> str:
    """The tool calls side by side, differing arguments marked."""
    if not flip.calls:
        return ""

    def cell(call: dict[str, Any] | None, differing: tuple[str, ...]) -> str:
        marked = e(call_text(call, differing, lambda part: f"\x00{part}\x01"))
        return marked.replace("\x00", "<mark>").replace("\x01", "</mark>")

    rows = "".join(
        f"<tr><td>{index}{' (another tool)' if pair.renamed else ''}</td>"
        f"<td><code>{cell(pair.base, pair.differing)}</code></td>"
        f"<td><code>{cell(pair.head, pair.differing)}</code></td></tr>"
        for index, pair in enumerate(flip.calls, 1)
    )
    return f'<table class="calls"><tr><th>call</th><th>base</th><th>head</th></tr>{rows}</table>'


def _eval(prompt: PromptComparison, evaluation: EvalComparison) -> str:
    paired = f", {evaluation.paired} paired" if evaluation.has_base else ""
    out = [
        f"<h3>{e(evaluation.dataset)} <span class=muted>{e(evaluation.cases_label)}{paired}, "
        f"threshold {e(fmt.pct(evaluation.threshold))}</span> {_badge(evaluation.decision)}</h3>"
    ]
    if evaluation.dataset_change is not None:
        out.append(f"<p>Dataset: {e(evaluation.dataset_change.summary())}</p>")
    out.append(chart(evaluation))
    if evaluation.metrics:
        out.append(
            "<table class=metrics><thead><tr><th>metric</th><th>base</th><th>head</th><th>Δ</th>"
            "<th>95% CI</th><th>p (two-sided)</th><th>test</th><th>n</th></tr></thead><tbody>"
        )
        out.extend(_metric_row(m) for m in evaluation.metrics.values())
        out.append("</tbody></table>")
    out.append('<ul class="gates">')
    for g in evaluation.gates:
        out.append(
            f"<li {_flag(g.outcome != 'pass')}>{_badge(g.outcome)} "
            f"<b>{e(gate_label(prompt, g))}</b>: {e(g.reason)}</li>"
        )
    out.append("</ul>")
    for note in evaluation.notes:
        out.append(f"<p class=muted>{e(note)}</p>")
    for label, flips, total in (
        ("Pass → fail", evaluation.pass_to_fail, evaluation.flips_total[0]),
        ("Fail → pass", evaluation.fail_to_pass, evaluation.flips_total[1]),
    ):
        if not total:
            continue
        regression = label.startswith("Pass")
        out.append(f"<h4 {_flag(regression)}>{label} ({total})</h4>")
        out.extend(_case(f) for f in flips)
        if total > len(flips):
            out.append(
                f"<p class=muted {_flag(regression)}>… {total - len(flips)} more under "
                "“More flipped cases” below</p>"
            )
    out.append(_paired(evaluation))
    return "".join(out)


def _prompt(prompt: PromptComparison) -> str:
    version = sides(prompt)
    out = [
        f'<section class="prompt" id="{e(_anchor(prompt.prompt))}" {_flag(_is_regression(prompt))}>',
        f"<h2>{e(prompt.prompt)} <span class=muted>{e(STATUS_WORDS.get(prompt.status, prompt.status))}"
        f" {e(version)}</span> {_badge(prompt.decision)}</h2>",
    ]
    if prompt.reasons:
        out.append("<ul>" + "".join(f"<li>{e(r)}</li>" for r in prompt.reasons) + "</ul>")
    if prompt.gates:
        out.append('<ul class="gates">')
        out.extend(
            f"<li {_flag(g.outcome != 'pass')}>{_badge(g.outcome)} <b>{e(g.gate)}</b>: {e(g.reason)}</li>"
            for g in prompt.gates
        )
        out.append("</ul>")
    out.extend(_eval(prompt, ev) for ev in prompt.evals)
    out.append("</section>")
    return "".join(out)


def _summary_row(prompt: PromptComparison) -> str:
    rate_cells = []
    for ev in prompt.evals:
        rate = ev.metrics.get("pass_rate")
        if rate is None:
            continue
        if rate.base is None:
            rate_cells.append(f"{fmt.pct(rate.head)} (min {fmt.pct(ev.threshold)})")
        else:
            rate_cells.append(
                f"{fmt.pct(rate.base)} → {fmt.pct(rate.head)} ({fmt.points(rate.delta, signed=True)}, "
                f"p {fmt.p_value(rate.p_value)})"
            )
    not_passing = sorted({gate_label(prompt, g) for g in prompt.all_gates if g.outcome != "pass"})
    return (
        f"<tr {_flag(_is_regression(prompt))}><td>{_badge(prompt.decision)}</td>"
        f'<td><a href="#{e(_anchor(prompt.prompt))}">{e(prompt.prompt)}</a></td>'
        f"<td>{e(STATUS_WORDS.get(prompt.status, prompt.status))}</td>"
        f"<td>{'<br>'.join(e(c) for c in rate_cells) or '-'}</td>"
        f"<td>{e(', '.join(not_passing) or '-')}</td></tr>"
    )


@report_format("html")
def html_report(report: ComparisonReport) -> str:
    decision = report.decision
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title(report))}</title>",
        f"<style>{CSS}</style></head><body>",
        "<header>",
        f'<h1 class="{decision}" id="decision">{e(title(report))}</h1>',
        f"<div>{e(verdict(report))} {e(scope(report))}</div>",
    ]
    if (sliced := slice_note(report)) is not None:
        out.append(f'<div class="slice" id="slice"><b>{e(sliced)}</b></div>')
    if (note := mode(report)) is not None:
        out.append(f"<div class=muted>{e(note)}</div>")
    out.append(
        '<label class="filter"><input type="checkbox" id="only-regressions"> '
        "Show regressions only</label></header><main>"
    )
    if report.gates:
        out.append('<h2>Merge gate</h2><ul class="gates" id="change-gates">')
        out.extend(
            f"<li {_flag(g.outcome != 'pass')}>{_badge(g.outcome)} <b>{e(g.gate)}</b>: {e(g.reason)}</li>"
            for g in report.gates
        )
        out.append("</ul>")
    if report.prompts:
        out.append(
            '<h2>Summary</h2><table id="summary"><thead><tr><th></th><th>prompt</th><th>status</th>'
            "<th>pass rate</th><th>gates not passing</th></tr></thead><tbody>"
        )
        out.extend(_summary_row(p) for p in report.prompts)
        out.append("</tbody></table>")
    else:
        out.append("<p>No prompt changed.</p>")
    if report.lint is not None and report.lint.findings:
        lint = report.lint
        out.append(
            f'<h2 {_flag(not lint.ok)}>Lint</h2><ul id="lint" {_flag(not lint.ok)}>'
            f"<li>{lint.errors} error(s), {lint.warnings} warning(s)</li>"
        )
        for f in lint.findings:
            out.append(
                f"<li {_flag(f.severity == 'error')}>{e(f.file)}:{f.line}:{f.column} "
                f"{e(f.severity)} {e(f.rule)} {e(f.message)}</li>"
            )
        out.append("</ul>")
    if report.datasets:
        out.append('<h2>Datasets</h2><ul id="datasets">')
        for d in report.datasets:
            ids = "; ".join(
                f"{label}: {', '.join(values)}"
                for label, values in (
                    ("added", d.added),
                    ("removed", d.removed),
                    ("modified", d.modified),
                )
                if values
            )
            used = f" (used by {', '.join(d.used_by)})" if d.used_by else ""
            out.append(
                f"<li>{e(d.path)}{e(used)}: {e(d.summary())}{'. ' + e(ids) if ids else ''}</li>"
            )
        out.append("</ul>")
    out.extend(_prompt(p) for p in report.prompts)
    out.append(
        f"<p class=muted>{e(decision_label(report))}: {e(decision_words(report))}. Base and head ran on the same cases, "
        "paired by case id; intervals are 95%.</p>"
    )
    out.append(f"</main><script>{SCRIPT}</script></body></html>\n")
    return "\n".join(out)


def failure_html(command: str, message: str, hint: str | None, exit_code: int) -> str:
    """The page when the check could not finish: it replaces an earlier report, so a stale
    pass is never left standing (the HTML twin of `markdown.failure_markdown`)."""
    heading = f"promptyard {command}: could not finish (exit {exit_code})"
    hint_line = f"<p>Hint: {e(hint)}</p>" if hint else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(heading)}</title><style>{CSS}</style></head><body><header>"
        f'<h1 class="block" id="decision">{e(heading)}</h1></header><main>'
        "<p>The check stopped before it could judge the change, so the change does not "
        f"pass:</p><pre>{e(message)}</pre>{hint_line}</main></body></html>\n"
    )
