"""The runs under `.promptyard/runs/`: what each recorded about itself, listing and pruning.

Each run directory holds `results.jsonl` and `summary.json`. The summary is written when
the run starts (`complete: false`, so a viewer sees a run in progress) and again when it
ends; besides the counts it records when the run started and finished, the git commit and
branch, whether the working tree was dirty, the command, provider, model and whether it
ran offline (`RunContext`). A run being written holds an exclusive lock on its `.lock`
file: `prune_runs` never removes such a run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptyard.errors import ConfigError
from promptyard.evals.results import (
    COLUMNS,
    LOCK_FILE,
    RESULTS_FILE,
    SUMMARY_FILE,
    iter_results,
    read_summary,
)

if TYPE_CHECKING:
    import pandas


def now_iso() -> str:
    """The current time, as runs record it (UTC, ISO 8601, microseconds: runs started within
    the same second must still sort in the order they started)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class RunContext:
    """Where and how a run was started: recorded in its summary so runs can be told apart."""

    commit: str | None = None
    branch: str | None = None  # None: a detached HEAD, or no git repository
    dirty: bool | None = None  # uncommitted or untracked files (None: unknown)
    command: str | None = None  # e.g. "promptyard eval support-reply --repeat 3"

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "branch": self.branch,
            "dirty": self.dirty,
            "command": self.command,
        }


def git_context(repo_root: Path, command: str | None = None) -> RunContext:
    """The commit, branch and dirtiness of the repository at `repo_root` (all None when it
    is not a git repository or has no commit yet)."""
    from promptyard.repo import git

    state = git.head_state(repo_root)
    if state is None:  # not a repository, or git missing: the run still runs
        return RunContext(command=command)
    commit, branch, dirty = state
    return RunContext(commit, branch, dirty, command)


@dataclass(frozen=True)
class RunInfo:
    """One run directory as listed: its summary (counts and context) and whether a process
    is writing it right now."""

    run_id: str
    path: Path
    summary: dict[str, Any]
    running: bool

    @property
    def prompt(self) -> str:
        return str(self.summary.get("prompt", ""))

    @property
    def started_at(self) -> str:
        return str(self.summary.get("started_at") or "")

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS_FILE

    def to_dict(self) -> dict[str, Any]:
        s = self.summary
        keys = (
            "prompt", "version", "dataset", "provider", "model", "mode", "cases", "passed",
            "failed", "errors", "infra_errors", "pass_rate", "mean_score", "cost_usd",
            "complete", "started_at", "finished_at", "git", "command", "offline",
        )  # fmt: skip
        return {"run_id": self.run_id, "running": self.running, **{k: s.get(k) for k in keys}}


def is_running(run_dir: Path) -> bool:
    """A process holds the run's lock (it is writing the run now)."""
    lock = run_dir / LOCK_FILE
    if not lock.exists():
        return False
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process guard
        return False
    with open(lock, "ab") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


def _run_dirs(runs_dir: Path) -> Iterator[Path]:
    if not runs_dir.is_dir():
        return
    for child in runs_dir.iterdir():
        if child.is_dir() and (child / SUMMARY_FILE).is_file():
            yield child


def read_run(run_dir: Path) -> RunInfo | None:
    """The run in `run_dir`, or None when it has no readable summary."""
    summary = read_summary(run_dir)
    if summary is None:
        return None
    return RunInfo(run_dir.name, run_dir, summary, is_running(run_dir))


def list_runs(runs_dir: Path, *, prompt: str | None = None) -> list[RunInfo]:
    """Every run under `runs_dir` (of `prompt` only, when given), newest first."""
    runs = [info for d in _run_dirs(runs_dir) if (info := read_run(d)) is not None]
    if prompt is not None:
        runs = [r for r in runs if r.prompt == prompt]
    runs.sort(key=lambda r: (r.started_at, r.run_id), reverse=True)
    return runs


def find_run(runs_dir: Path, run_id: str) -> RunInfo:
    """The run `run_id`; ConfigError (exit 2) when there is none."""
    path = runs_dir / run_id
    info = read_run(path) if path.parent == runs_dir and "/" not in run_id else None
    if info is None or run_id in ("", ".", ".."):
        raise ConfigError(
            f"no run {run_id!r} in {runs_dir}", hint="`promptyard runs list` shows the runs"
        )
    return info


@dataclass
class PruneResult:
    removed: list[str]
    kept: int
    skipped_running: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "kept": self.kept, "skipped_running": self.skipped_running}


def _started(info: RunInfo) -> datetime | None:
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(info.started_at)
    return None


def prune_runs(
    runs_dir: Path,
    *,
    older_than: timedelta | None = None,
    keep: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Remove runs that started more than `older_than` ago and/or all but the `keep` newest
    of each prompt. A run a process is writing is never removed (it is listed as skipped).
    """
    if older_than is None and keep is None:
        raise ConfigError("say what to prune", hint="pass --older-than DAYS and/or --keep N")
    now = now or datetime.now(UTC)
    doomed: list[RunInfo] = []
    per_prompt: dict[str, int] = {}
    runs = list_runs(runs_dir)
    for info in runs:  # newest first
        rank = per_prompt.get(info.prompt, 0)
        per_prompt[info.prompt] = rank + 1
        started = _started(info)
        too_old = older_than is not None and (started is None or now - started > older_than)
        beyond = keep is not None and rank >= keep
        if too_old or beyond:
            doomed.append(info)
    removed, skipped = [], []
    for info in doomed:
        if not _remove_unless_running(info.path, dry_run):
            skipped.append(info.run_id)
            continue
        removed.append(info.run_id)
    return PruneResult(removed, len(runs) - len(removed), skipped)


def _remove_unless_running(run_dir: Path, dry_run: bool) -> bool:
    """Remove `run_dir` holding its lock (so no run starts writing it meanwhile); False
    when a process is writing it."""
    with open(run_dir / LOCK_FILE, "ab") as handle:
        if sys.platform != "win32":  # Windows has no fcntl: no cross-process guard there
            import fcntl

            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
        if not dry_run:
            shutil.rmtree(run_dir)
    return True


def _result_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if (path / RESULTS_FILE).is_file():
        return [path / RESULTS_FILE]
    if path.is_dir():
        return sorted(path.glob(f"*/{RESULTS_FILE}"))
    raise ConfigError(f"{path}: no such results file or run directory")


def load_results(
    path: str | os.PathLike[str] = ".promptyard/runs",
    *,
    prompt: str | None = None,
    latest: bool = False,
) -> pandas.DataFrame:
    """Eval results as a pandas DataFrame, one row per case × repeat.

    `path` is a run directory (`.promptyard/runs/<run-id>`), its `results.jsonl`, or a folder
    of runs (`.promptyard/runs`, the default), whose runs are concatenated — only the runs
    of `prompt` when given, and only the newest one (by start time) with `latest`. Columns:
    see `COLUMNS`; `assertions` holds each row's list of assertion results (type, pass,
    score, reason, weight, metric).
    """
    import pandas as pd

    files = _result_files(Path(path))
    if prompt is not None or latest:
        if not Path(path).is_dir() or (Path(path) / RESULTS_FILE).exists():
            raise ConfigError(f"{path}: `prompt`/`latest` need a folder of runs")
        runs = [r for r in list_runs(Path(path), prompt=prompt) if r.results_path.is_file()]
        if not runs:
            what = f" of prompt {prompt!r}" if prompt is not None else ""
            raise ConfigError(f"{path}: no runs{what}")
        files = [r.results_path for r in (runs[:1] if latest else runs)]
    records = [result.to_dict() for file in files for result in iter_results(file)]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    if not frame.empty:
        frame["pass"] = frame["pass"].astype(bool)
        frame["cached"] = frame["cached"].astype(bool)
        frame["repeat"] = frame["repeat"].astype(int)
        for column in ("score", "latency_ms", "cost_usd"):
            frame[column] = frame[column].astype(float)
        for column in ("tokens_in", "tokens_out"):
            frame[column] = frame[column].astype("Int64")
    return frame
