"""What the viewer shows, as data: a page of a run's rows, two runs compared, a prompt's history.

A run's rows are streamed from its results.jsonl and only one page is kept: the first page
of a 100,000-case run parses 51 lines, not 100,000. A filter reads only as far as it must
to fill the page (text search tests the raw line before parsing it). Lines that cannot be
read (a run killed mid-write) are skipped and counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptyard.compare.diff import judge_eval
from promptyard.compare.flips import word_diff
from promptyard.compare.model import EvalComparison
from promptyard.compare.paired import CaseOutcome, fold_results
from promptyard.evals.results import CaseResult
from promptyard.evals.runs import RunInfo, list_runs
from promptyard.spec.config import Gates
from promptyard.spec.loader import loads_row
from promptyard.spec.runs import ResultRow

PAGE_SIZE = 50


@dataclass(frozen=True)
class RowFilter:
    """Which rows a run page shows."""

    failed_only: bool = False
    text: str = ""  # in the variables or the answer (any case)
    assertion: str = ""  # rows where an assertion of this type failed
    tag: str = ""  # rows of cases with this tag

    def matches(self, row: CaseResult) -> bool:
        if self.failed_only and row.passed:
            return False
        if self.tag and self.tag not in row.tags:
            return False
        if self.assertion and not any(
            a.get("type") == self.assertion and not a.get("pass") for a in row.assertions
        ):
            return False
        if self.text:
            needle = self.text.lower()
            haystack = json.dumps(row.vars or {}, ensure_ascii=False) + "\n" + (row.output or "")
            if needle not in haystack.lower():
                return False
        return True


@dataclass
class RowPage:
    rows: list[CaseResult]
    page: int
    has_next: bool
    skipped_lines: int  # unreadable lines met while reading this page
    read_to_end: bool  # the whole file was read (so `skipped_lines` is the file's total)


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from handle


def read_page(path: Path, flt: RowFilter, page: int = 1, size: int = PAGE_SIZE) -> RowPage:
    """Rows `(page - 1) * size` to `page * size` of those `flt` keeps, in file order."""
    start = (page - 1) * size
    kept: list[CaseResult] = []
    matched = skipped = 0
    # A raw-line test before parsing; only for text JSON writes as-is (no escapes).
    plain = flt.text.isascii() and not any(c in flt.text for c in '"\\') and flt.text.isprintable()
    needle = flt.text.lower().encode() if flt.text and plain else b""
    has_next = False
    read_to_end = True
    for raw in _lines(path):
        if needle and needle not in raw.lower() and raw.endswith(b"\n"):
            continue
        row = loads_row(raw, ResultRow) if raw.endswith(b"\n") else None
        if row is None:
            skipped += 1
            continue
        result = CaseResult.from_row(row)
        if not flt.matches(result):
            continue
        matched += 1
        if matched <= start:
            continue
        if len(kept) == size:
            has_next = True
            read_to_end = False
            break
        kept.append(result)
    return RowPage(kept, page, has_next, skipped, read_to_end)


def case_rows(path: Path, case_id: str) -> list[CaseResult]:
    """Every repeat of one case."""
    rows = []
    marker = json.dumps(case_id).encode()
    for raw in _lines(path):
        if marker not in raw:
            continue
        row = loads_row(raw, ResultRow)
        if row is not None and row.case_id == case_id:
            rows.append(CaseResult.from_row(row))
    return sorted(rows, key=lambda r: r.repeat)


# --- compare ------------------------------------------------------------------------------


@dataclass
class PairedCase:
    case_id: str
    base: CaseOutcome | None
    head: CaseOutcome | None
    kind: str  # "pass_to_fail" | "fail_to_pass" | "changed" | "same" | "missing"
    diff: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RunComparison:
    base: RunInfo
    head: RunInfo
    evaluation: EvalComparison
    cases: list[PairedCase]  # flipped first, then changed answers, then the rest


KIND_ORDER = {"pass_to_fail": 0, "fail_to_pass": 1, "changed": 2, "missing": 3, "same": 4}


def _fold(info: RunInfo, *, base: bool) -> dict[str, CaseOutcome]:
    s = info.summary
    rows = _iter_rows(info.results_path)
    return fold_results(
        rows,
        repeat=int(s.get("repeat") or 1),
        min_pass=int(s.get("min_pass") or s.get("repeat") or 1),
        unavailable_kinds=frozenset({"offline"}),
        every_error_unavailable=base,
    )


def _iter_rows(path: Path) -> Iterator[CaseResult]:
    for raw in _lines(path):
        row = loads_row(raw, ResultRow) if raw.endswith(b"\n") else None
        if row is not None:
            yield CaseResult.from_row(row)


def compare_runs(base: RunInfo, head: RunInfo, gates: Gates) -> RunComparison:
    """Pair two runs by case id and judge them with the merge gate's own `judge_eval` (what
    `diff` calls), then order every case: flips, changed answers, the rest."""
    base_cases, head_cases = _fold(base, base=True), _fold(head, base=False)
    case_ids = list(head_cases) + [cid for cid in base_cases if cid not in head_cases]
    repeat = int(head.summary.get("repeat") or 1)
    evaluation = EvalComparison(
        dataset=str(head.summary.get("dataset")),
        threshold=float(head.summary.get("threshold") or 0.0),
        repeat=repeat,
        cases=len(case_ids),
        paired=0,
        has_base=True,
    )
    judge_eval(
        evaluation,
        prompt=head.prompt,
        status="changed",
        case_ids=case_ids,
        head=head_cases,
        base=base_cases,
        gates=gates,
    )
    cases = []
    for cid in case_ids:
        b, h = base_cases.get(cid), head_cases.get(cid)
        if b is None or h is None or b.unavailable or h.unavailable:
            kind = "missing"
        elif b.passed and not h.passed:
            kind = "pass_to_fail"
        elif h.passed and not b.passed:
            kind = "fail_to_pass"
        elif (b.output or "") != (h.output or ""):
            kind = "changed"
        else:
            kind = "same"
        ops: list[tuple[str, str]] = []
        if kind != "same":
            ops = [
                (op, text)
                for op, text in word_diff(b.output if b else None, h.output if h else None)[0]
            ]
        cases.append(PairedCase(cid, b, h, kind, ops))
    cases.sort(key=lambda c: KIND_ORDER[c.kind])
    return RunComparison(base, head, evaluation, cases)


# --- history ------------------------------------------------------------------------------


@dataclass
class HistoryPoint:
    run: RunInfo
    pass_rate: float
    low: float  # 95% interval (Wilson) of the pass rate
    high: float
    cost_usd: float | None


def prompt_history(runs_dir: Path, prompt: str) -> list[HistoryPoint]:
    """The prompt's finished runs, oldest first, with the 95% interval of each pass rate."""
    from scipy.stats import binomtest

    points = []
    for info in reversed(list_runs(runs_dir, prompt=prompt)):
        s = info.summary
        judged = int(s.get("cases") or 0) - int(s.get("infra_errors") or 0)
        if not judged or s.get("pass_rate") is None:
            continue
        passed = int(s.get("passed") or 0)
        ci = binomtest(passed, judged).proportion_ci(confidence_level=0.95, method="wilson")
        points.append(HistoryPoint(info, passed / judged, ci.low, ci.high, s.get("cost_usd")))
    return points


def history_svg(points: list[HistoryPoint], width: int = 720, height: int = 260) -> dict[str, Any]:
    """Coordinates for the history chart (the template draws them as SVG)."""
    left, right, top, bottom = 48, 16, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(points)

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n if n else 0)

    def y(value: float) -> float:
        return top + plot_h * (1 - value)

    marks = [
        {
            "x": round(x(i), 1),
            "y": round(y(p.pass_rate), 1),
            "y_low": round(y(p.low), 1),
            "y_high": round(y(p.high), 1),
            "label": f"{p.run.summary.get('version')}",
            "title": f"{p.run.summary.get('version')} · {p.run.started_at} · pass rate "
            f"{p.pass_rate:.1%} (95% interval {p.low:.1%}–{p.high:.1%})",
            "run_id": p.run.run_id,
        }
        for i, p in enumerate(points)
    ]
    grid = [{"y": round(y(v / 4), 1), "label": f"{v * 25}%"} for v in range(5)]
    line = " ".join(f"{m['x']},{m['y']}" for m in marks)
    return {"width": width, "height": height, "marks": marks, "grid": grid, "line": line,
            "left": left, "right": width - right, "bottom": height - bottom}  # fmt: skip
