"""The rollout controller: read git and Prometheus, decide, commit, push with compare-and-swap.

Each tick fetches the configured branch of the remote into a private ref, finds every canary
that has a strategy, and decides for each:

- **abort** as soon as a metric is significantly worse than its threshold allows (the
  always-valid test of `rollout.analysis`): the canary is removed, stable serves 100%;
- **advance** when the step's pause has elapsed, each side saw `min_requests` requests in
  this step, every metric was tested at least once and none is worse: the next step's
  weight, or at the last step (100) the canary's version pinned as stable;
- **hold** otherwise, saying why (pause running, too few requests, no data or not yet
  enough to test, Prometheus unreachable or answering nonsense, a strategy lint rejects).

The step and its start come from `git log` of the environment file, the measurements from
Prometheus's history: the controller keeps nothing else, so a restart continues where it was,
and a hand edit of the file mid-rollout is simply the new state. An advance or abort is a
commit on top of the fetched tip, pushed only if the branch is still there (a lease); a
rejected push re-reads and re-decides, so two controllers never both move a canary.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import yaml

from promptyard.errors import ConfigError
from promptyard.release.environments import (
    Edit,
    canary_weight_edit,
    drop_canary_edit,
    edit_environment_file,
    pin_stable_edit,
)
from promptyard.repo import git
from promptyard.repo.kinds import ENVIRONMENTS
from promptyard.repo.workspace import Workspace
from promptyard.rollout.analysis import NEEDS, QUERIES, TESTS, MetricResult, side_from_series
from promptyard.rollout.prometheus import PrometheusClient, PrometheusError, Series
from promptyard.spec import EnvironmentSpec
from promptyard.spec.environment import Canary, duration_seconds, strategy_problems

log = logging.getLogger("promptyard.rollout")

Action = Literal["advance", "abort", "hold"]
MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series
HISTORY_LIMIT = 500  # commits of one environment file read to find where a step started
MAX_ATTEMPTS = 5  # rejected pushes in one tick before giving up until the next
TRAILER = "Promptyard-Rollout"


@dataclass(frozen=True)
class HistoryEntry:
    """A commit that changed a prompt's pin: when, which, and the pin after it."""

    commit: str
    time: float
    subject: str
    pin: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "time": self.time, "subject": self.subject, "pin": self.pin}


@dataclass
class Decision:
    action: Action
    reason: str
    weight: float | None = None  # the new canary weight (advance); 100 means stable
    metrics: list[MetricResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "weight": self.weight,
            "metrics": [m.to_dict() for m in self.metrics],
        }


@dataclass
class CanaryRollout:
    """One canary with a strategy, where it stands and what the controller decides."""

    environment: str
    path: str
    prompt: str
    stable: str
    canary: Canary
    step: int  # index into canary.steps
    step_started: float
    rollout_started: float
    now: float
    decision: Decision
    requests_in_step: tuple[int, int] = (0, 0)  # canary, stable
    history: list[HistoryEntry] = field(default_factory=list)
    commit: str | None = None  # the commit that carried out the decision, once pushed

    @property
    def steps(self) -> list[Any]:
        return list(self.canary.steps or [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "path": self.path,
            "prompt": self.prompt,
            "stable": self.stable,
            "canary": self.canary.version,
            "weight": self.canary.weight,
            "step": self.step + 1,
            "steps": [s.model_dump(exclude_none=True) for s in self.steps],
            "step_started": self.step_started,
            "rollout_started": self.rollout_started,
            "time_in_step_s": round(self.now - self.step_started, 3),
            "requests_in_step": {
                "canary": self.requests_in_step[0],
                "stable": self.requests_in_step[1],
            },
            "decision": self.decision.to_dict(),
            "commit": self.commit,
            "history": [h.to_dict() for h in self.history],
        }


@dataclass
class ControllerSettings:
    """Where the truth is (a clone, a remote and a branch), Prometheus, and who commits."""

    workspace: Workspace
    prometheus: PrometheusClient
    remote: str = "origin"
    branch: str = "main"
    environments: tuple[str, ...] = ()  # all when empty
    match: str = ""  # extra label matchers for every query, e.g. `namespace="prod"`
    author: tuple[str, str] = ("promptyard rollout", "rollout@promptyard.invalid")
    clock: Callable[[], float] = time.time


class Controller:
    """Stateless: every call reads git and Prometheus afresh."""

    def __init__(self, settings: ControllerSettings) -> None:
        git.check_remote(
            settings.workspace.git, settings.remote
        )  # a typo is exit 2, not "unreachable"
        self.settings = settings
        self.workspace = settings.workspace
        self.ref = f"refs/promptyard/rollout/{settings.branch}"

    # --- reading ----------------------------------------------------------------------------

    def fetch(self) -> Any:
        """The branch's tip on the remote, fetched into a private ref (InfraError if unreachable)."""
        s = self.settings
        git.fetch(
            self.workspace.git,
            "--quiet",
            "--no-tags",
            s.remote,
            f"+refs/heads/{s.branch}:{self.ref}",
            what=f"fetch {s.branch} from {s.remote}",
        )
        return self.workspace.commit(self.ref)

    def evaluate(self, commit: Any) -> list[CanaryRollout]:
        """Every canary with a strategy at `commit`, each with its decision."""
        snapshot = self.workspace.snapshot_at(commit)
        wanted = set(self.settings.environments)
        rollouts = []
        for path in snapshot.paths_of(ENVIRONMENTS):
            loaded = snapshot.load(ENVIRONMENTS, path)
            spec = loaded.model
            if spec is None:
                log.warning("%s at %s is invalid; skipped", path, commit.hexsha[:12])
                continue
            if wanted and spec.environment not in wanted:
                continue
            for name, pin in spec.prompts.items():
                if pin.canary is None or pin.canary.steps is None:
                    continue
                rollouts.append(self._judge(commit, spec, path, name))
        return rollouts

    def _judge(self, commit: Any, spec: EnvironmentSpec, path: str, name: str) -> CanaryRollout:
        pin = spec.prompts[name]
        canary = pin.canary
        assert canary is not None and canary.steps is not None
        now = self.settings.clock()
        history = self.history(commit, path, name)
        step_started, rollout_started = _starts(history, canary, now)
        steps = canary.steps
        step = max((i for i, s in enumerate(steps) if s.weight <= canary.weight), default=0)
        rollout = CanaryRollout(
            environment=spec.environment,
            path=path,
            prompt=name,
            stable=pin.version,
            canary=canary,
            step=step,
            step_started=step_started,
            rollout_started=rollout_started,
            now=now,
            decision=Decision("hold", ""),
            history=history,
        )
        rollout.decision = self._decide(rollout)
        return rollout

    def history(self, commit: Any, path: str, name: str) -> list[HistoryEntry]:
        """The commits (newest first) that changed `name`'s pin in the file at `path`."""
        repo = self.workspace.git
        git_path = self.workspace.git_prefix + path
        lines = git.log(
            repo, "%H%x00%ct%x00%s", commit.hexsha, [git_path], max_count=HISTORY_LIMIT
        ).splitlines()
        entries: list[HistoryEntry] = []
        for line in lines:
            sha, when, subject = line.split("\x00", 2)
            try:
                data = yaml.safe_load(git.show(repo, f"{sha}:{git_path}"))
                pin = data["prompts"][name] if isinstance(data, dict) else None
            except Exception:  # the file was invalid or deleted in that commit
                pin = None
            entries.append(
                HistoryEntry(sha, float(when), subject, pin if isinstance(pin, dict) else None)
            )
        # keep the commits where this prompt's pin changed (compared with the older one)
        changed = [
            entry
            for entry, older in zip(entries, [*entries[1:], None], strict=True)
            if older is None or entry.pin != older.pin
        ]
        return changed

    # --- deciding ---------------------------------------------------------------------------

    def _decide(self, rollout: CanaryRollout) -> Decision:
        canary = rollout.canary
        problems = strategy_problems(canary)
        if problems:
            message = problems[0][1]
            return Decision(
                "hold", f"the strategy cannot run ({message}); `promptyard lint` says more"
            )
        assert canary.analysis is not None and canary.steps is not None
        analysis = canary.analysis
        interval = float(duration_seconds(analysis.interval))
        try:
            canary_side, stable_side, times = self._measure(rollout, interval)
        except PrometheusError as exc:
            log.warning("%s %s: hold: %s", rollout.environment, rollout.prompt, exc)
            return Decision("hold", f"no measurements: {exc}")
        first_in_step = int(np.searchsorted(times, rollout.step_started))
        rollout.requests_in_step = (
            _since(canary_side.requests, first_in_step),
            _since(stable_side.requests, first_in_step),
        )
        thresholds = analysis.metrics.configured()
        alpha_each = analysis.alpha / len(thresholds)
        results = [
            TESTS[metric](canary_side, stable_side, threshold, alpha_each)
            for metric, threshold in thresholds.items()
        ]
        harmful = [r for r in results if r.significant]
        if harmful:
            return Decision(
                "abort", "; ".join(r.describe() for r in harmful), weight=0, metrics=results
            )
        steps = canary.steps
        step = steps[rollout.step]
        where = f"step {rollout.step + 1} of {len(steps)} ({canary.weight:g}%)"
        elapsed = rollout.now - rollout.step_started
        if step.pause is not None and elapsed < duration_seconds(step.pause):
            return Decision(
                "hold",
                f"{where}: {format_duration(elapsed)} of its {step.pause} pause",
                metrics=results,
            )
        n_canary, n_stable = rollout.requests_in_step
        if min(n_canary, n_stable) < analysis.min_requests:
            return Decision(
                "hold",
                f"{where}: {analysis.min_requests} requests per side needed in this step, "
                f"seen canary {n_canary}, stable {n_stable}",
                metrics=results,
            )
        missing = [r for r in results if r.canary is None or r.stable is None]
        if missing:
            return Decision(
                "hold",
                f"{where}: no data for {', '.join(r.metric for r in missing)}",
                metrics=results,
            )
        unjudged = [r for r in results if not r.looks]  # data, but not yet enough to test
        if unjudged:
            return Decision(
                "hold",
                f"{where}: not judged yet: " + "; ".join(r.describe() for r in unjudged),
                metrics=results,
            )
        following = steps[min(rollout.step + 1, len(steps) - 1)]
        return Decision(
            "advance",
            f"{where} passed: " + "; ".join(r.describe() for r in results),
            weight=following.weight,
            metrics=results,
        )

    def _measure(self, rollout: CanaryRollout, interval: float) -> tuple[Any, Any, np.ndarray]:
        start = math.floor(rollout.rollout_started)
        span = max(rollout.now - start, 0.0)
        step = max(interval, math.ceil(span / MAX_POINTS))
        times = start + step * np.arange(int(span // step) + 1)
        assert rollout.canary.analysis is not None  # only analysed canaries are measured
        metrics = rollout.canary.analysis.metrics.configured()
        needed = sorted({q for metric in metrics for q in NEEDS[metric]})
        sides = []
        for variant, version in (("canary", rollout.canary.version), ("stable", rollout.stable)):
            matchers = [
                f'prompt="{_escape(rollout.prompt)}"',
                f'version="{_escape(version)}"',
                f'variant="{variant}"',
            ]
            if self.settings.match:
                matchers.append(self.settings.match)
            selector = "{" + ",".join(matchers) + "}"
            queried: dict[str, list[Series]] = {
                name: self.settings.prometheus.query_range(
                    QUERIES[name] + selector, float(times[0]), float(times[-1]), step
                )
                for name in needed
            }
            sides.append(side_from_series(queried, times))
        return sides[0], sides[1], times

    # --- acting ---------------------------------------------------------------------------

    def apply(self, commit: Any, rollout: CanaryRollout) -> str | None:
        """Commit the decision on top of `commit` and push it if the branch is still there.

        The new commit's sha, or None when the push was rejected (the branch moved).
        """
        decision = rollout.decision
        name, version = rollout.prompt, rollout.canary.version
        if decision.action == "abort":
            edit: Edit = drop_canary_edit(name)
            subject = f"rollout: abort {name} {version} canary in {rollout.environment}"
        elif decision.weight is not None and decision.weight >= 100:
            edit = pin_stable_edit(name, version)
            subject = f"rollout: promote {name} {version} to stable in {rollout.environment}"
        elif decision.action == "advance" and decision.weight is not None:
            edit = canary_weight_edit(name, decision.weight)
            subject = (
                f"rollout: advance {name} {version} canary to {decision.weight:g}% in "
                f"{rollout.environment}"
            )
        else:
            raise ValueError(f"nothing to apply for a {decision.action}")
        snapshot = self.workspace.snapshot_at(commit)
        raw = snapshot.load(ENVIRONMENTS, rollout.path).raw
        if raw is None:
            raise ConfigError(f"{rollout.path} vanished at {commit.hexsha[:12]}")
        edited = edit_environment_file(raw, rollout.path, edit)
        body = "\n".join(
            [
                f"{decision.reason}",
                "",
                *(m.describe() for m in decision.metrics),
                "",
                f"{TRAILER}: {decision.action}",
            ]
        )
        name_, email = self.settings.author
        repo = self.workspace.git
        with git.identity(repo, name_, email):
            new = git.commit_file(
                repo,
                commit,
                self.workspace.git_prefix + rollout.path,
                edited.raw,
                f"{subject}\n\n{body}",
            )
        s = self.settings
        if not git.push_if_unchanged(repo, s.remote, new, s.branch, commit.hexsha):
            return None
        return new

    def tick(self) -> TickResult:
        """Fetch, decide and carry out every advance or abort; a rejected push re-reads the
        branch and decides again (never a lost or a double step)."""
        moved: dict[tuple[str, str], CanaryRollout] = {}
        rejected = 0
        while rejected < MAX_ATTEMPTS:
            commit = self.fetch()
            rollouts = self.evaluate(commit)
            pending = [
                r
                for r in rollouts
                if r.decision.action != "hold" and (r.environment, r.prompt) not in moved
            ]
            if not pending:
                for r in rollouts:
                    log.info("%s %s: hold: %s", r.environment, r.prompt, r.decision.reason)
                return TickResult(list(moved.values()), rollouts, rejected)
            rollout = pending[0]
            new = self.apply(commit, rollout)
            if new is None:
                rejected += 1
                log.info(
                    "%s %s: the branch moved while deciding; reading it again",
                    rollout.environment,
                    rollout.prompt,
                )
                continue
            rollout.commit = new
            moved[(rollout.environment, rollout.prompt)] = rollout
            log.info(
                "%s %s: %s (%s): %s",
                rollout.environment,
                rollout.prompt,
                rollout.decision.action,
                new[:12],
                rollout.decision.reason,
            )
        return TickResult(list(moved.values()), self.evaluate(self.fetch()), rejected)


@dataclass
class TickResult:
    """What one tick did (`moved`: the rollouts it committed) and where every canary stands."""

    moved: list[CanaryRollout]
    rollouts: list[CanaryRollout]
    rejected_pushes: int = 0


def _starts(history: list[HistoryEntry], canary: Canary, now: float) -> tuple[float, float]:
    """(step start, rollout start): the oldest commits of the newest unbroken runs where the
    pin had this canary at this weight, and this canary version at all."""

    def run_start(same: Callable[[dict[str, Any]], bool]) -> float:
        start = now
        for entry in history:  # newest first
            pin_canary = (entry.pin or {}).get("canary")
            if not isinstance(pin_canary, dict) or not same(pin_canary):
                break
            start = entry.time
        return start

    version = canary.version

    def same_version(c: dict[str, Any]) -> bool:
        return str(c.get("version")) == version

    def same_step(c: dict[str, Any]) -> bool:
        return same_version(c) and _as_float(c.get("weight")) == canary.weight

    return run_start(same_step), run_start(same_version)


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _since(cumulative: np.ndarray, index: int) -> int:
    if cumulative.size == 0 or index >= cumulative.size:
        return 0
    return int(np.rint(cumulative[-1] - cumulative[index]))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def format_duration(seconds: float) -> str:
    """`1h5m3s`: a duration for people."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v) or "0s"
