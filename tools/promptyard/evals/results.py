"""Eval results on disk: `.promptyard/runs/<run-id>/results.jsonl` and `summary.json`.

`results.jsonl` holds one row per case × repeat, appended and flushed as each finishes, so
an interrupted run (Ctrl-C, kill -9) loses at most the row being written. The run id is
derived from everything that shapes the results (prompt content, cases, assertions,
repeats, mode): re-running the same command finds the directory and runs only the rows
that are missing. A completed run run again starts over (answered from the cache).

`summary.json` is written atomically at the end. `load_results(path)` (in `runs`) reads rows into a
pandas DataFrame.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

from promptyard.errors import ConfigError
from promptyard.fsutil import atomic_write
from promptyard.spec.loader import FormatError, load_json, loads_row
from promptyard.spec.runs import FORMAT_VERSION, ResultRow, RunSummary

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
INFRA_ERROR = "infra"  # the error_kind of a row a provider failed for infrastructure reasons
MAX_FAILURES_KEPT = 50  # failing rows kept in memory for the report; all are in the file

COLUMNS = ResultRow.columns()  # of `load_results`


@dataclass
class CaseResult:
    """One case × repeat: the output, each assertion's verdict, and what the call cost."""

    run_id: str
    prompt: str
    version: str
    content_hash: str
    dataset: str
    case_id: str
    repeat: int
    model: str
    output: str | None
    passed: bool
    score: float
    assertions: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    error: str | None = None
    error_kind: str | None = None  # render | request | auth | offline | infra | assertion
    vars: dict[str, Any] | None = None  # the case's variables (None in rows of older runs)
    tags: list[str] = field(default_factory=list)  # the case's tags (for filtering runs)
    # The answer besides its text (ToolCall.to_dict items), when the model said so.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    refusal: str | None = None

    def to_row(self) -> ResultRow:
        return ResultRow.model_validate({f.name: getattr(self, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, Any]:
        """The row as `results.jsonl` holds it."""
        return self.to_row().model_dump(by_alias=True)

    @classmethod
    def from_row(cls, row: ResultRow) -> CaseResult:
        return cls(**{name: getattr(row, name) for name in ResultRow.model_fields})

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> CaseResult:
        """A row of `results.jsonl`; pydantic's ValidationError when it is not one."""
        return cls.from_row(ResultRow.model_validate(row))

    def metric_scores(self) -> dict[str, float]:
        """Weighted mean score per assertion `metric` name (assertions without one skipped)."""
        return metric_scores(self.assertions)

    def metric_outcomes(self) -> dict[str, tuple[float, bool]]:
        """Per `metric` name: the weighted mean score and whether all its assertions passed."""
        return metric_outcomes(self.assertions)

    @property
    def infra_error(self) -> bool:
        """The row ended in an infrastructure error (provider down, timeout, 5xx, 429 or a
        malformed answer after the retries): it says nothing about the prompt's quality."""
        return self.error_kind == INFRA_ERROR

    @property
    def reason(self) -> str:
        """Why the row failed, in one line (empty when it passed)."""
        if self.error:
            return self.error
        return "; ".join(a["reason"] for a in self.assertions if not a.get("pass"))


def metric_outcomes(assertions: list[dict[str, Any]]) -> dict[str, tuple[float, bool]]:
    """Per assertion `metric` name in one row: (weighted mean score, every one passed).

    The one definition of a row's metric: `eval`'s summary and the merge gate both fold it.
    """
    sums: dict[str, list[float]] = {}  # name -> [weighted score sum, weight sum, all passed]
    for a in assertions:
        name = a.get("metric")
        if name:
            weight = a.get("weight", 1.0)
            acc = sums.setdefault(name, [0.0, 0.0, True])
            acc[0] += a["score"] * weight
            acc[1] += weight
            acc[2] = acc[2] and bool(a.get("pass"))
    return {name: (s / w if w else 0.0, bool(ok)) for name, (s, w, ok) in sums.items()}


def metric_scores(assertions: list[dict[str, Any]]) -> dict[str, float]:
    """Weighted mean score per assertion `metric` name of one row."""
    return {name: score for name, (score, _) in metric_outcomes(assertions).items()}


def percentile(sorted_values: list[float] | array[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    n = len(sorted_values)
    if n == 0:
        return None
    position = (n - 1) * q
    low = math.floor(position)
    high = min(low + 1, n - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


# --- summary -------------------------------------------------------------------------------


class RunStats:
    """Running totals of one run's rows; memory grows with cases, not with output text."""

    def __init__(self, repeat: int, min_pass: int) -> None:
        self.repeat = repeat
        self.min_pass = min_pass
        # id -> [rows, passes, errors, score sum, infrastructure errors]
        self.per_case: dict[str, list[float]] = {}
        self.latencies = array("d")
        self.tokens_in = 0
        self.tokens_out = 0
        self.tokens_known = False
        self.cost = 0.0
        self.cost_known = False
        self.rows = 0
        self.cached = 0
        # metric name -> case id -> [row score sum, rows, rows whose checks all passed]
        self.metrics: dict[str, dict[str, list[float]]] = {}
        self.failures: list[CaseResult] = []
        self.failures_total = 0

    def add(self, result: CaseResult) -> None:
        self.rows += 1
        acc = self.per_case.get(result.case_id)
        if acc is None:
            acc = self.per_case[result.case_id] = [0, 0, 0, 0.0, 0]
        acc[0] += 1
        acc[1] += result.passed
        acc[2] += result.error is not None
        acc[3] += result.score
        acc[4] += result.infra_error
        if result.cached:
            self.cached += 1
        if result.error is None and result.latency_ms is not None:
            self.latencies.append(result.latency_ms)
        if result.tokens_in is not None or result.tokens_out is not None:
            self.tokens_known = True
            self.tokens_in += result.tokens_in or 0
            self.tokens_out += result.tokens_out or 0
        if result.cost_usd is not None:
            self.cost_known = True
            self.cost += result.cost_usd
        for name, (score, passed) in result.metric_outcomes().items():
            m = self.metrics.setdefault(name, {}).setdefault(result.case_id, [0.0, 0, 0])
            m[0] += score
            m[1] += 1
            m[2] += passed
        if not result.passed:
            self.failures_total += 1
            if len(self.failures) < MAX_FAILURES_KEPT:
                self.failures.append(result)

    def add_row(self, row: dict[str, Any]) -> None:
        self.add(CaseResult.from_dict(row))

    def counts(self) -> tuple[int, int, int, int, int]:
        """(cases, passed, failed, errors, infra_errors): a case passes when min_pass of its
        repeats pass; a case that did not pass and had an errored repeat counts as an error,
        and also as an infrastructure error when one of its repeats was one (no verdict)."""
        passed = failed = errors = infra = 0
        need = min(self.min_pass, self.repeat)
        for _, passes, errored, _, infra_errored in self.per_case.values():
            if passes >= need:
                passed += 1
            elif errored:
                errors += 1
                infra += bool(infra_errored)
            else:
                failed += 1
        return len(self.per_case), passed, failed, errors, infra

    def case_pass_fractions(self) -> dict[str, float]:
        return {cid: acc[1] / acc[0] for cid, acc in self.per_case.items() if acc[0]}

    def mean_score(self) -> float | None:
        """Over the cases with a verdict (infrastructure errors left out, like the pass rate)."""
        need = min(self.min_pass, self.repeat)
        judged = [
            acc[3] / acc[0]
            for acc in self.per_case.values()
            if acc[0] and not (acc[4] and acc[1] < need)
        ]
        return sum(judged) / len(judged) if judged else None

    def metric_summary(self) -> dict[str, dict[str, float]]:
        """Per metric, over the cases scored on it (as the merge gate computes it): the mean
        of each case's mean score over its repeats, the mean share of its repeats whose
        assertions of the metric all passed, and the number of cases."""
        summary: dict[str, dict[str, float]] = {}
        for name, cases in sorted(self.metrics.items()):
            n = len(cases)
            summary[name] = {
                "mean_score": sum(s / rows for s, rows, _ in cases.values()) / n,
                "pass_rate": sum(p / rows for _, rows, p in cases.values()) / n,
                "count": n,
            }
        return summary


@dataclass
class EvalSummary:
    """The outcome of one prompt × dataset eval (what `summary.json` holds)."""

    run_id: str
    prompt: str
    version: str
    content_hash: str
    dataset: str
    model: str
    provider: str
    mode: str
    cases: int
    passed: int
    failed: int
    errors: int
    pass_rate: float | None
    mean_score: float | None
    threshold: float
    repeat: int
    min_pass: int
    rows: int
    cached: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    metrics: dict[str, dict[str, float]]
    results_path: str
    complete: bool = True
    duration_s: float = 0.0
    # A run on some cases only (`--case`/`--tag`): {cases, tags, selected, total}.
    slice: dict[str, Any] | None = None
    # Errored cases whose error was the provider's (a subset of `errors`): no verdict, so
    # the pass rate leaves them out.
    infra_errors: int = 0
    # What the run was (evals/runs.py): when, the git commit, branch and dirtiness, the
    # command, and whether it ran offline.
    started_at: str | None = None
    finished_at: str | None = None  # None while it runs (or when it was killed)
    git: dict[str, Any] | None = None
    command: str | None = None

    @property
    def offline(self) -> bool:
        return self.mode == "offline"

    @property
    def ok(self) -> bool:
        """The pass rate meets the eval's threshold. An eval without cases proves nothing, so
        it does not pass."""
        return self.pass_rate is not None and self.pass_rate >= self.threshold - 1e-12

    @property
    def cost_per_case_usd(self) -> float | None:
        return self.cost_usd / self.cases if self.cost_usd is not None and self.cases else None

    def to_dict(self) -> dict[str, Any]:
        """Everything, as written to summary.json."""
        return RunSummary.model_validate(
            {f.name: getattr(self, f.name) for f in fields(self)}
            | {
                "format": FORMAT_VERSION,
                "ok": self.ok,
                "cost_per_case_usd": self.cost_per_case_usd,
                "offline": self.offline,
            }
        ).model_dump()

    def to_json_row(self) -> dict[str, Any]:
        """The row of `promptyard eval --format json` (the documented, stable keys)."""
        return {
            "prompt": self.prompt,
            "version": self.version,
            "dataset": self.dataset,
            "cases": self.cases,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "infra_errors": self.infra_errors,
            "pass_rate": self.pass_rate,
            "mean_score": self.mean_score,
            "latency_ms_p50": self.latency_ms_p50,
            "latency_ms_p95": self.latency_ms_p95,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
            "results_path": self.results_path,
            "slice": self.slice,
        }


def summarize(stats: RunStats, **fields: Any) -> EvalSummary:
    cases, passed, failed, errors, infra = stats.counts()
    judged = cases - infra
    latencies = sorted(stats.latencies)
    metrics = stats.metric_summary()
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    return EvalSummary(
        cases=cases,
        passed=passed,
        failed=failed,
        errors=errors,
        infra_errors=infra,
        pass_rate=passed / judged if judged else None,
        mean_score=stats.mean_score(),
        rows=stats.rows,
        cached=stats.cached,
        latency_ms_p50=round(p50, 3) if p50 is not None else None,
        latency_ms_p95=round(p95, 3) if p95 is not None else None,
        tokens_in=stats.tokens_in if stats.tokens_known else None,
        tokens_out=stats.tokens_out if stats.tokens_known else None,
        cost_usd=stats.cost if stats.cost_known else None,
        metrics=metrics,
        repeat=stats.repeat,
        min_pass=stats.min_pass,
        **fields,
    )


# --- the run directory ------------------------------------------------------------------


class RunLockedError(ConfigError):
    pass


class RunWriter:
    """Owns one run directory while a run writes to it (an exclusive lock, released on close)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.results_path = run_dir / RESULTS_FILE
        self.summary_path = run_dir / SUMMARY_FILE
        run_dir.mkdir(parents=True, exist_ok=True)
        self._lock_handle: IO[bytes] | None = open(run_dir / LOCK_FILE, "ab")  # noqa: SIM115
        try:
            import fcntl

            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - no flock (Windows): no cross-process guard
            pass
        except OSError:
            self._lock_handle.close()
            self._lock_handle = None
            raise RunLockedError(
                f"another promptyard process is writing this run ({run_dir})",
                hint="wait for it to finish, or stop it; the re-run then completes what is missing",
            ) from None
        self._out: IO[str] | None = None

    def previous_rows(self) -> Iterator[dict[str, Any]]:
        """Rows already on disk that a resumed run keeps, each (case, repeat) once.

        Dropped, so that their cases run again: a line cut short by a kill, a damaged
        line, a duplicate, and a row that ended in an error (errors are never kept, like
        they are never cached). When anything is dropped the file is rewritten atomically.
        """
        if not self.results_path.exists():
            return
        dropped = False
        for row in self._kept_rows():
            if row is None:
                dropped = True
                continue
            yield row
        if dropped:
            atomic_write(
                self.results_path,
                b"".join(
                    json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                    for row in self._kept_rows()
                    if row is not None
                ),
            )

    def _kept_rows(self) -> Iterator[dict[str, Any] | None]:
        """Each line's row, or None for a line a resumed run drops."""
        seen: set[tuple[str, int]] = set()
        with open(self.results_path, "rb") as handle:
            for raw in handle:
                valid = loads_row(raw, ResultRow) if raw.endswith(b"\n") else None
                if valid is None or valid.error:
                    yield None
                    continue
                row = json.loads(raw)  # kept as written: a rewrite changes no kept line
                slot = (valid.case_id, valid.repeat)
                if slot in seen:
                    yield None
                    continue
                seen.add(slot)
                yield row

    def start(self, fresh: bool) -> None:
        """Open for appending (or truncate first when `fresh`)."""
        if fresh:
            self.summary_path.unlink(missing_ok=True)
        self._out = open(self.results_path, "w" if fresh else "a", encoding="utf-8")  # noqa: SIM115

    def append(self, result: CaseResult) -> None:
        assert self._out is not None
        self._out.write(
            json.dumps(result.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
        )
        self._out.flush()

    def write_summary(self, summary: EvalSummary) -> None:
        atomic_write(self.summary_path, json.dumps(summary.to_dict(), indent=2) + "\n")

    def close(self) -> None:
        if self._out is not None:
            with contextlib.suppress(OSError):
                self._out.flush()
                os.fsync(self._out.fileno())
            self._out.close()
            self._out = None
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's `summary.json` (every field, defaults filled in), or None when there is no
    readable one."""
    path = run_dir / SUMMARY_FILE
    try:
        summary = load_json(path.read_text(encoding="utf-8"), str(path), RunSummary)
    except (OSError, ValueError, FormatError):
        return None
    return summary.model_dump()


def iter_results(path: Path) -> Iterator[CaseResult]:
    """Rows of a run (its directory or its results.jsonl), streamed from disk."""
    file = path / RESULTS_FILE if path.is_dir() else path
    with open(file, "rb") as handle:
        for raw in handle:
            row = loads_row(raw, ResultRow)
            if row is not None:  # else a torn last line of an interrupted run
                yield CaseResult.from_row(row)
