"""`--format markdown`: the pull-request comment.

The decision comes first, then one table row per prompt, the reasons of every gate that
did not pass, lint findings, dataset changes, per-prompt metrics and flips in collapsible
sections, then the other paired cases (changed answers, then unchanged ones by id). The hidden marker `<!-- promptyard-report -->` lets the workflow find and update
its one comment. The whole text stays under GitHub's 65,536-character comment limit (with
room for a line the workflow adds): sections are added in order of importance while they
fit, long outputs are cut, and whatever is left out is counted and pointed to the HTML
report.

Everything user-provided is escaped: names and case ids in code spans, reasons as text
(HTML-escaped, Markdown punctuation backslashed), outputs in code fences longer than any
backtick run inside them.
"""

from __future__ import annotations

import html
import re
from typing import Any

from promptyard.compare import formatting as fmt
from promptyard.compare.model import (
    ComparisonReport,
    DatasetChange,
    EvalComparison,
    Flip,
    MetricResult,
    PromptComparison,
)
from promptyard.compare.reports import report_format
from promptyard.compare.reports.common import (
    STATUS_WORDS,
    call_text,
    gate_label,
    mode,
    problems,
    scope,
    sides,
    slice_note,
    title,
    verdict,
)

MARKER = "<!-- promptyard-report -->"
GITHUB_LIMIT = 65_536
RESERVE = 2_000  # room for a line the workflow prepends (e.g. the fork note)
OUTPUT_CHARS = 1_200  # per output in a flip
DIFF_CHARS = 1_500
ICONS = {"pass": "✅", "warn": "⚠️", "block": "❌"}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def text(value: object) -> str:
    """User text as inline Markdown: one line, HTML-escaped, punctuation backslashed."""
    flat = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def code(value: object, *, table: bool = False) -> str:
    """A code span that holds any text; in a table cell a pipe is escaped (GitHub shows
    `\\|` there as a pipe, and only there)."""
    flat = " ".join(str(value).split())
    if table:
        flat = flat.replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", flat)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def html_code(value: object) -> str:
    """Code inside an HTML element (a `<summary>`), where Markdown is not rendered."""
    return f"<code>{html.escape(' '.join(str(value).split()))}</code>"


def fence(body: str, lang: str = "") -> str:
    """A fenced block that holds any text."""
    longest = max((len(m) for m in re.findall(r"`{3,}", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{body}\n{ticks}\n"


def _cut(value: str | None, limit: int) -> str:
    if value is None:
        return "(no output)"
    if len(value) <= limit:
        return value
    return value[:limit] + f"\n… ({len(value) - limit:,} more characters in the HTML report)"


def _word_diff(flip: Flip) -> str:
    parts = []
    for op, chunk in flip.diff:
        parts.append(chunk if op == "=" else f"[-{chunk}-]" if op == "-" else f"{{+{chunk}+}}")
    return _cut("".join(parts), DIFF_CHARS)


class _Budget:
    """Text assembled under a character limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.omitted = 0

    def fits(self, chunk: str, keep: int = 0) -> bool:
        return self.size + len(chunk) + keep <= self.limit

    def add(self, chunk: str, keep: int = 0) -> bool:
        """Append `chunk` if it fits with `keep` characters left over."""
        if not self.fits(chunk, keep):
            return False
        self.parts.append(chunk)
        self.size += len(chunk)
        return True

    def text(self) -> str:
        return "".join(self.parts)


def _eval_cells(e: EvalComparison) -> tuple[str, str, str, str]:
    rate = e.metrics.get("pass_rate")
    score = e.metrics.get("mean_score")
    if rate is None:
        return (str(e.cases), "-", "-", "-")
    if rate.base is None:
        moved = fmt.pct(rate.head)
        delta = f"min {fmt.pct(e.threshold)}"
        p = "-"
    else:
        moved = f"{fmt.pct(rate.base)} → {fmt.pct(rate.head)}"
        delta = f"{fmt.points(rate.delta, signed=True)} {fmt.interval(rate)}"
        p = fmt.p_value(rate.p_value)
    if score is not None and score.delta is not None:
        delta += f"<br>score {fmt.number(score.delta, signed=True)}"
    cases = f"{e.cases}" if not e.has_base or e.paired == e.cases else f"{e.paired}/{e.cases}"
    if e.slice is not None:
        cases += f" of {e.slice.total} (slice)"
    return (cases, moved, delta, p)


def _row(prompt: PromptComparison) -> str:
    blocking = sorted({gate_label(prompt, g) for g in prompt.all_gates if g.outcome != "pass"})
    gates = ", ".join(blocking) if blocking else "all pass" if prompt.all_gates else "-"
    if prompt.evals:
        cells = [_eval_cells(e) for e in prompt.evals]
        cases, moved, delta, p = ("<br>".join(c[i] for c in cells) for i in range(4))
        if len(prompt.evals) > 1:
            moved = "<br>".join(
                f"{code(e.dataset, table=True)}: {c[1]}"
                for e, c in zip(prompt.evals, cells, strict=True)
            )
    else:
        cases = moved = delta = p = "-"
    return (
        f"| {ICONS[prompt.decision]} | {code(prompt.prompt, table=True)} | {STATUS_WORDS.get(prompt.status, prompt.status)} "
        f"| {text(sides(prompt))} | {cases} | {moved} | {delta} | {p} | {text(gates)} |\n"
    )


TABLE_HEAD = (
    "|  | prompt | status | version | cases | pass rate | Δ pass rate (95% CI) | p (two-sided) | gates |\n"
    "|---|---|---|---|---:|---|---|---:|---|\n"
)


def _metrics(evaluation: EvalComparison) -> str:
    lines = [
        "| metric | base | head | Δ | 95% CI | p (two-sided) | test |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for m in evaluation.metrics.values():
        name = m.label if m.unit != "score" or m.name == "mean_score" else f"{m.label} (metric)"
        ratio = f" ({fmt.ratio(m.ratio)})" if m.ratio is not None else ""
        delta = (fmt.delta(m) if m.delta is not None else "-") + ratio
        lines.append(
            f"| {text(name)} | {_value(m, m.base)} | {_value(m, m.head)} | {delta} "
            f"| {fmt.interval(m)} | {fmt.p_value(m.p_value)} | {text(m.test)} |"
        )
    return "\n".join(lines) + "\n"


def _value(metric: MetricResult, which: float | None) -> str:
    return fmt.value(metric, which)


def _details(prompt: PromptComparison) -> str:
    out = [f"<details><summary>{html_code(prompt.prompt)}: metrics and gates</summary>\n\n"]
    for reason in prompt.reasons:
        out.append(f"- {text(reason)}\n")
    if prompt.reasons:
        out.append("\n")
    for e in prompt.evals:
        paired = f", {e.paired} paired" if e.has_base else ""
        out.append(
            f"**{code(e.dataset)}**: {e.cases_label}{paired}, threshold {fmt.pct(e.threshold)}\n\n"
        )
        if e.dataset_change is not None:
            out.append(f"Dataset: {text(e.dataset_change.summary())}\n\n")
        if e.metrics:
            out.append(_metrics(e) + "\n")
        for g in e.gates:
            out.append(
                f"- {ICONS[g.outcome]} **{text(gate_label(prompt, g))}**: {text(g.reason)}\n"
            )
        for note in e.notes:
            out.append(f"- {text(note)}\n")
        out.append("\n")
    out.append("</details>\n\n")
    return "".join(out)


def _flip(flip: Flip) -> str:
    arrow = "pass → fail" if flip.direction == "pass_to_fail" else "fail → pass"
    icon = "❌" if flip.direction == "pass_to_fail" else "✅"
    failing = flip.head if flip.direction == "pass_to_fail" else flip.base
    return (
        f"{icon} {code(flip.case_id)} ({arrow}, score {fmt.number(flip.base.score, 2)} → "
        f"{fmt.number(flip.head.score, 2)}) — {text(failing.reason or 'failed')}\n\n"
        f"base:\n{fence(_cut(flip.base.output, OUTPUT_CHARS))}"
        f"head:\n{fence(_cut(flip.head.output, OUTPUT_CHARS))}"
        f"word diff (`[-base-]{{+head+}}`):\n{fence(_word_diff(flip))}\n"
        f"{_calls(flip)}"
    )


CLOSING = "</details>\n\n"


def _open_section(out: _Budget, prompt: PromptComparison, summary: str, items: int) -> bool:
    """Open a prompt's collapsible section; False (its `items` counted as left out) when
    it does not fit."""
    opening = f"<details><summary>{html_code(prompt.prompt)}: {summary}</summary>\n\n"
    if out.add(opening, keep=len(CLOSING) + 200):
        return True
    out.omitted += items
    return False


def _add_paired(out: _Budget, prompt: PromptComparison) -> None:
    """The paired cases whose verdict did not flip, as far as the comment's budget goes."""
    cases = [c for e in prompt.evals for c in e.paired_cases if c.change != "flipped"]
    changed = [c for c in cases if c.change == "changed"]
    same = [c.case_id for c in cases if c.change == "same"]
    summary = f"{len(changed)} changed answer(s), {len(same)} the same"
    if not cases or not _open_section(out, prompt, summary, len(cases)):
        return
    shown = 0
    for case in changed:
        verdict = "pass" if case.head.passed else "fail"
        chunk = (
            f"{code(case.case_id)} ({verdict}, score {fmt.number(case.base.score, 2)} → "
            f"{fmt.number(case.head.score, 2)})\n\nbase:\n{fence(_cut(case.base.output, OUTPUT_CHARS))}"
            f"head:\n{fence(_cut(case.head.output, OUTPUT_CHARS))}\n"
        )
        if not out.add(chunk, keep=len(CLOSING) + 120):
            break
        shown += 1
    if same and shown == len(changed):
        listed = ", ".join(code(case_id) for case_id in same)
        if out.add(f"Same answer and verdict: {listed}\n\n", keep=len(CLOSING) + 120):
            shown += len(same)
    if shown < len(cases):
        out.add(f"… {len(cases) - shown} more case(s) not shown: see the HTML report.\n\n")
    out.add(CLOSING)


def _calls(flip: Flip) -> str:
    """The tool calls side by side, differing arguments in bold."""
    if not flip.calls:
        return ""

    def cell(call: dict[str, Any] | None, differing: tuple[str, ...]) -> str:
        marked = call_text(call, differing, lambda part: f"\x00{part}\x01")
        return text(marked).replace("\x00", "**").replace("\x01", "**")

    rows = ["| call | base | head |", "|---|---|---|"]
    for index, pair in enumerate(flip.calls, 1):
        other = " (another tool)" if pair.renamed else ""
        rows.append(
            f"| {index}{other} | {cell(pair.base, pair.differing)} | "
            f"{cell(pair.head, pair.differing)} |"
        )
    return "tool calls (differing arguments in bold):\n\n" + "\n".join(rows) + "\n\n"


FOOTER = (
    "\n<sub>promptyard — base and head run on the same cases, paired by id. The HTML "
    "report (workflow artifact) has every case side by side.</sub>\n"
)


def _heading(report: ComparisonReport) -> str:
    """The marker, the decision as a title, the verdict and any slice or mode note."""
    head = [MARKER, f"## {ICONS[report.decision]} {text(title(report))}", ""]
    head.append(f"**{text(verdict(report))}** {text(scope(report))}")
    if (sliced := slice_note(report)) is not None:
        head.append(f"\n> **{text(sliced)}**")
    if (note := mode(report)) is not None:
        head.append(f"\n> {text(note)}")
    return "\n".join(head) + "\n\n"


def _add_gate_reasons(out: _Budget, report: ComparisonReport) -> None:
    """Blocking and warning gate reasons: what a reviewer must read."""
    found = problems(report)
    if report.lint is not None and not report.lint.ok:
        out.add(f"- ❌ **lint**: {report.lint.errors} error(s) (see below)\n")
    left = 0
    for prompt, gate in found:
        where = code(prompt.prompt) if prompt is not None else code("promptyard.yaml")
        line = f"- {ICONS[gate.outcome]} {where} · **{text(gate_label(prompt, gate))}**: {text(gate.reason)}\n"
        if not out.add(line, keep=4000):
            left += 1
    if left:
        out.add(f"- … and {left} more gate result(s) (see the HTML report)\n")
    if found or (report.lint is not None and not report.lint.ok):
        out.add("\n")


def _add_prompt_table(out: _Budget, report: ComparisonReport) -> None:
    """One row per prompt."""
    if not report.prompts:
        out.add("No prompt changed.\n\n")
        return
    out.add(TABLE_HEAD)
    rows_left = 0
    for prompt in report.prompts:
        if not out.add(_row(prompt), keep=2000):
            rows_left += 1
    out.add("\n")
    if rows_left:
        out.add(f"… and {rows_left} more prompt(s) (see the HTML report).\n\n")


def _add_lint_findings(out: _Budget, report: ComparisonReport) -> None:
    """The first lint findings (at most 50), then how many more."""
    if report.lint is None or not report.lint.findings:
        return
    out.add(f"**Lint**: {report.lint.errors} error(s), {report.lint.warnings} warning(s)\n\n")
    shown = 0
    for f in report.lint.findings:
        where = f"{f.file}:{f.line}:{f.column}"
        line = f"- {code(where)} {f.severity} {code(f.rule)} {text(f.message)}\n"
        if shown >= 50 or not out.add(line, keep=1500):
            break
        shown += 1
    if shown < len(report.lint.findings):
        out.add(f"- … and {len(report.lint.findings) - shown} more (`promptyard lint`)\n")
    out.add("\n")


def _dataset_line(d: DatasetChange) -> str:
    """A changed dataset, its users and the first ten case ids of each kind of change."""
    users = f" (used by {', '.join(code(u) for u in d.used_by)})" if d.used_by else ""
    ids = []
    for label, values in (
        ("added", d.added),
        ("removed", d.removed),
        ("modified", d.modified),
    ):
        if values:
            listed = ", ".join(code(v) for v in values[:10])
            more = f" and {len(values) - 10} more" if len(values) > 10 else ""
            ids.append(f"{label}: {listed}{more}")
    detail = f" — {'; '.join(ids)}" if ids else ""
    return f"- {code(d.path)}{users}: {text(d.summary())}{detail}\n"


def _add_datasets(out: _Budget, report: ComparisonReport) -> None:
    if not report.datasets:
        return
    out.add("**Datasets**\n\n")
    for d in report.datasets:
        if not out.add(_dataset_line(d), keep=1000):
            out.omitted += 1
    out.add("\n")


def _add_flips(out: _Budget, prompt: PromptComparison) -> None:
    """A prompt's flipped cases (pass → fail first), as far as the comment's budget goes."""
    p2f, f2p = prompt.flips
    total_p2f = sum(e.flips_total[0] for e in prompt.evals)
    total_f2p = sum(e.flips_total[1] for e in prompt.evals)
    if not total_p2f and not total_f2p:
        return
    summary = f"{total_p2f} pass → fail, {total_f2p} fail → pass"
    if not _open_section(out, prompt, summary, total_p2f + total_f2p):
        return
    shown = 0
    for flip in [*p2f, *f2p]:
        if not out.add(_flip(flip), keep=len(CLOSING) + 120):
            break
        shown += 1
    if shown < total_p2f + total_f2p:
        out.add(
            f"… {total_p2f + total_f2p - shown} more flip(s) not shown: see the HTML report.\n\n"
        )
    out.add(CLOSING)


@report_format("markdown")
def markdown_report(report: ComparisonReport, limit: int = GITHUB_LIMIT - RESERVE) -> str:
    out = _Budget(limit - len(FOOTER) - 400)  # 400: the "left out" line
    out.add(_heading(report))
    _add_gate_reasons(out, report)
    _add_prompt_table(out, report)
    _add_lint_findings(out, report)
    _add_datasets(out, report)
    # per prompt: metrics and every gate, then the flips, then the other paired cases
    for prompt in report.prompts:
        if prompt.evals and not out.add(_details(prompt), keep=500):
            out.omitted += 1
    for prompt in report.prompts:
        _add_flips(out, prompt)
    for prompt in report.prompts:
        _add_paired(out, prompt)

    body = out.text()
    if out.omitted:
        body += (
            f"_{out.omitted} section(s) or flip(s) left out to stay under GitHub's comment "
            "limit: see the HTML report._\n"
        )
    return body + FOOTER


def failure_markdown(command: str, message: str, hint: str | None, exit_code: int) -> str:
    """The comment when the check could not finish (bad input, unreachable provider): it
    replaces an earlier report, so a stale pass is never left standing."""
    why = {
        2: "a usage or configuration error",
        3: "an infrastructure failure",
        130: "an interruption (Ctrl-C or a cancelled job)",
    }.get(exit_code, "an error")
    lines = [
        MARKER,
        f"## ❌ promptyard {text(command)}: could not finish (exit {exit_code})",
        "",
        f"The check stopped on {why}, so nothing was judged and the change does not pass:",
        "",
        fence(message),
    ]
    if hint:
        lines.append(f"Hint: {text(hint)}")
    return "\n".join(lines) + "\n"
