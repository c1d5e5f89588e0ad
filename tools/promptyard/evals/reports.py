"""Full eval reports: every case of every run, in the format `eval --format F --out FILE` asks.

Each row (case × repeat) shows its variables, the answer, pass and score, each assertion's
pass/score/reason, the error if any, latency, tokens and cost. A format is a function
registered in `EVAL_REPORT_FORMATS` under its name; `render_eval_report(report, fmt)`
returns the text. Rows are read back from each run's results.jsonl.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from promptyard.evals.results import CaseResult, EvalSummary
from promptyard.plugins import NamedRegistry

if TYPE_CHECKING:
    from promptyard.evals.runner import EvalReport

EvalReportFormat = Callable[["EvalReport"], str]
EVAL_REPORT_FORMATS: NamedRegistry[EvalReportFormat] = NamedRegistry("eval report format")
eval_report_format = EVAL_REPORT_FORMATS.register


def render_eval_report(report: EvalReport, fmt: str) -> str:
    """The full report of `report` in format `fmt` (a key of EVAL_REPORT_FORMATS)."""
    return EVAL_REPORT_FORMATS[fmt](report)


def _runs(report: EvalReport) -> Iterator[tuple[EvalSummary, list[CaseResult]]]:
    for run in report.runs:
        rows = sorted(run.iter_results(), key=lambda r: (r.case_id, r.repeat))
        yield run.summary, rows


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cost(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}".rstrip("0").rstrip(".")


def _verdict(row: CaseResult) -> str:
    if row.error:
        return "infra error" if row.infra_error else "error"
    return "pass" if row.passed else "fail"


def _headline(s: EvalSummary) -> str:
    return (
        f"{s.cases} case(s), pass rate {_percent(s.pass_rate)} (threshold "
        f"{_percent(s.threshold)}), mean score {_number(s.mean_score, 3)}, {s.errors} error(s), "
        f"p50/p95 {_number(s.latency_ms_p50)}/{_number(s.latency_ms_p95)} ms, "
        f"tokens {_number(s.tokens_in)}/{_number(s.tokens_out)}, cost {_cost(s.cost_usd)}"
    )


def _vars(row: CaseResult) -> str:
    return json.dumps(row.vars or {}, ensure_ascii=False, sort_keys=True)


def _case_label(s: EvalSummary, row: CaseResult) -> str:
    return f"{row.case_id} #{row.repeat + 1}" if s.repeat > 1 else row.case_id


@eval_report_format("text")
def text_report(report: EvalReport) -> str:
    out: list[str] = []
    for s, rows in _runs(report):
        out.append(f"{s.prompt} {s.version} on {s.dataset}: {_headline(s)}")
        for row in rows:
            out.append(f"\n  [{_verdict(row)}] {_case_label(s, row)}  score {row.score:.3f}")
            out.append(f"    vars: {_vars(row)}")
            out.append("    answer: " + (row.output or "").replace("\n", "\n            "))
            for a in row.assertions:
                mark = "pass" if a.get("pass") else "FAIL"
                out.append(
                    f"    {mark} {a.get('type')} ({a.get('score', 0):.2f}): {a.get('reason', '')}"
                )
            if row.error:
                out.append(f"    error: {row.error}")
            out.append(
                f"    {_number(row.latency_ms)} ms, tokens {_number(row.tokens_in)}/"
                f"{_number(row.tokens_out)}, cost {_cost(row.cost_usd)}"
                + (" (cached)" if row.cached else "")
            )
        out.append("")
    return "\n".join(out) + "\n"


@eval_report_format("json")
def json_report(report: EvalReport) -> str:
    runs = [
        {**s.to_json_row(), "results": [row.to_dict() for row in rows]} for s, rows in _runs(report)
    ]
    return json.dumps({"runs": runs}, indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS = (
    "prompt", "version", "dataset", "case_id", "repeat", "pass", "score", "error", "error_kind",
    "latency_ms", "tokens_in", "tokens_out", "cost_usd", "cached", "vars", "output", "assertions",
)  # fmt: skip


@eval_report_format("csv")
def csv_report(report: EvalReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for _, rows in _runs(report):
        for row in rows:
            data: dict[str, Any] = row.to_dict()
            data["vars"] = _vars(row)
            data["assertions"] = json.dumps(row.assertions, ensure_ascii=False)
            writer.writerow(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
    return buffer.getvalue()


def _md(text: str) -> str:
    """Text safe in a Markdown table cell."""
    return html.escape(text).replace("|", "\\|").replace("\n", "<br>")


@eval_report_format("markdown")
def markdown_report(report: EvalReport) -> str:
    out = ["# promptyard eval", ""]
    for s, rows in _runs(report):
        out += [f"## {_md(s.prompt)} {s.version} on `{s.dataset}`", "", _headline(s), ""]
        out += [
            "| case | verdict | score | variables | answer | assertions | ms | tokens | cost |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            checks = "<br>".join(
                f"{'✅' if a.get('pass') else '❌'} {_md(str(a.get('type')))}: {_md(str(a.get('reason', '')))}"
                for a in row.assertions
            )
            if row.error:
                checks = (checks + "<br>" if checks else "") + f"⚠️ {_md(row.error)}"
            out.append(
                f"| {_md(_case_label(s, row))} | {_verdict(row)} | {row.score:.3f} | "
                f"{_md(_vars(row))} | {_md(row.output or '')} | {checks} | "
                f"{_number(row.latency_ms)} | {_number(row.tokens_in)}/{_number(row.tokens_out)} | "
                f"{_cost(row.cost_usd)} |"
            )
        out.append("")
    return "\n".join(out) + "\n"


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1f2328}
table{border-collapse:collapse;width:100%;margin-bottom:2em}
th,td{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f6f8fa}.pass{color:#1a7f37}.fail,.error{color:#cf222e}.infra{color:#9a6700}
pre{white-space:pre-wrap;margin:0;font:12px/1.4 ui-monospace,monospace}
"""


@eval_report_format("html")
def html_report(report: EvalReport) -> str:
    e = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>promptyard eval</title>",
        f"<style>{_STYLE}</style></head><body><h1>promptyard eval</h1>",
    ]
    for s, rows in _runs(report):
        out.append(f"<h2>{e(s.prompt)} {e(s.version)} on <code>{e(s.dataset)}</code></h2>")
        out.append(f"<p>{e(_headline(s))}</p><table><thead><tr>")
        for column in (
            "case",
            "verdict",
            "score",
            "variables",
            "answer",
            "assertions",
            "ms",
            "tokens",
            "cost",
        ):
            out.append(f"<th>{column}</th>")
        out.append("</tr></thead><tbody>")
        for row in rows:
            verdict = _verdict(row)
            css = "infra" if row.infra_error else verdict
            checks = "".join(
                f"<div class='{'pass' if a.get('pass') else 'fail'}'>{e(str(a.get('type')))} "
                f"({float(a.get('score', 0)):.2f}): {e(str(a.get('reason', '')))}</div>"
                for a in row.assertions
            )
            if row.error:
                checks += f"<div class='{css}'>{e(row.error)}</div>"
            out.append(
                f"<tr><td>{e(_case_label(s, row))}</td><td class='{css}'>{verdict}</td>"
                f"<td>{row.score:.3f}</td><td><pre>{e(_vars(row))}</pre></td>"
                f"<td><pre>{e(row.output or '')}</pre></td><td>{checks}</td>"
                f"<td>{_number(row.latency_ms)}</td>"
                f"<td>{_number(row.tokens_in)}/{_number(row.tokens_out)}</td>"
                f"<td>{_cost(row.cost_usd)}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append("</body></html>\n")
    return "".join(out)
