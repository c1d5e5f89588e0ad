"""Live Thompson-sampling allocation of running experiments (`allocation: thompson`).

The process that assigns an experiment's units and holds the event store (`promptyard
serve`, `promptyard gateway --source`) keeps a `LiveAllocations`. Every `reweight_every`
it reads the experiment's exposures and outcomes from the store, forms each variant's
posterior on the primary metric — Beta(1 + successes, 1 + failures) for a binary metric
(a unit without an outcome counts as 0, as `analyze` counts it), a normal approximation
N(mean, sd²/n) of the per-unit means for a continuous one — computes the probability each
variant is best (`prob_best_beta` / `prob_best_gaussian`: exact for two variants, else
Monte Carlo with a seeded generator, so the same events give the same weights) and sets
weight_i = floor_i + (100 − Σ floors) · P(best_i) (`thompson_weights`).

Assignment still goes through `assign`, with the current weights. Units are sticky on
their first exposure: a unit assigned once keeps its variant when the weights change (an
in-memory map, re-read from the store's exposures at start-up), so a user never flips
between variants and each unit's outcome belongs to one variant; only new units follow the
new weights. That is also what makes the analysis valid: the expected units per variant is
the sum, over units, of the weights in force at each unit's first exposure
(`promptyard.events.weight_history`), which `analyze --events` tests the sample ratio
against.

Each change is a structured log line (logger `promptyard.experiments`, JSON), a row of the
store's `allocations` table (time, experiment, metric, previous and new weights, the
posterior numbers), and part of `status()` (`GET /v1/experiments`).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from promptyard.assignment import assign
from promptyard.events import EventStore, open_connection
from promptyard.spec.experiment import ExperimentSpec
from promptyard.stats.bayes import prob_best_beta, prob_best_gaussian
from promptyard.stats.experiment import thompson_weights

log = logging.getLogger("promptyard.experiments")

SEED = 0  # of the Monte Carlo draws (three or more variants); logged with every change
DRAWS = 100_000
MAX_STICKY_UNITS = 5_000_000  # ~150 bytes each; beyond, new units are sticky by bucket only
HISTORY = 20  # changes kept per experiment for status()
Weights = list[tuple[str, float]]

# One row per variant: units first exposed to it, units with a value of the metric, and the
# sums over units of the binary value (max of the unit's events) and of the per-unit mean.
_ARM_QUERY = """
WITH first AS (
    SELECT unit, variant, MIN(time) FROM exposures WHERE experiment = :experiment GROUP BY unit
),
per_unit AS (
    SELECT unit, MAX(value) AS high, AVG(value) AS mean FROM outcomes
    WHERE metric = :metric AND (experiment IS NULL OR experiment = :experiment)
    GROUP BY unit
)
SELECT first.variant, COUNT(*), COUNT(per_unit.unit),
       SUM(CASE WHEN per_unit.high >= 1 THEN 1 ELSE 0 END),
       SUM(per_unit.mean), SUM(per_unit.mean * per_unit.mean)
FROM first LEFT JOIN per_unit ON per_unit.unit = first.unit
GROUP BY first.variant
"""
_FIRST_EXPOSURES = (
    "SELECT unit, variant, MIN(time) FROM exposures WHERE experiment = ? GROUP BY unit"
)


@dataclass(frozen=True)
class ArmData:
    """What the store holds about one variant's units on the primary metric."""

    units: int = 0
    with_value: int = 0
    successes: int = 0
    total: float = 0.0
    total_squared: float = 0.0


@dataclass(frozen=True)
class ArmPosterior:
    """One variant's posterior on the primary metric and its probability of being best.

    Binary: Beta(`alpha`, `beta`). Continuous: N(`mean`, `se`²) of the mean.
    """

    variant: str
    units: int
    prob_best: float
    mean: float | None
    alpha: float | None = None
    beta: float | None = None
    se: float | None = None


@dataclass(frozen=True)
class WeightChange:
    """One re-weighting: old and new weights (percent), the posteriors, when."""

    experiment: str
    time: float
    metric: str
    previous: dict[str, float]
    weights: dict[str, float]
    posterior: list[ArmPosterior]
    method: str  # exact | monte-carlo
    seed: int
    draws: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def posterior_json(self) -> str:
        return json.dumps(
            {
                "method": self.method,
                "seed": self.seed,
                "draws": self.draws,
                "arms": [asdict(arm) for arm in self.posterior],
            }
        )


def thompson_round(
    spec: ExperimentSpec,
    arms: dict[str, ArmData],
    *,
    seed: int = SEED,
    draws: int = DRAWS,
) -> tuple[Weights, list[ArmPosterior], str, int | None] | str:
    """New weights from the arms' data: (weights, posteriors, method, draws), or why the
    weights stay as they are (a string)."""
    metric = next(m for m in spec.metrics if m.name == spec.primary)
    names = [v.name for v in spec.variants]
    data = [arms.get(name, ArmData()) for name in names]
    if not any(arm.units for arm in data):
        return "no exposures yet"
    higher = metric.direction == "increase"
    posteriors: list[ArmPosterior]
    if metric.type == "binary":
        best = prob_best_beta(
            [arm.successes for arm in data],
            [arm.units for arm in data],
            higher_is_better=higher,
            draws=draws,
            seed=seed,
        )
        posteriors = [
            ArmPosterior(
                name,
                arm.units,
                p,
                arm.successes / arm.units if arm.units else None,
                alpha=1.0 + arm.successes,
                beta=1.0 + arm.units - arm.successes,
            )
            for name, arm, p in zip(names, data, best.probabilities, strict=True)
        ]
    else:
        short = [name for name, arm in zip(names, data, strict=True) if arm.with_value < 2]
        if short:
            return f"waiting for 2 values of {metric.name} in {', '.join(short)}"
        means = [arm.total / arm.with_value for arm in data]
        ses = []
        for arm, mean in zip(data, means, strict=True):
            variance = max(0.0, (arm.total_squared - arm.with_value * mean * mean))
            ses.append(math.sqrt(variance / (arm.with_value - 1) / arm.with_value))
        best = prob_best_gaussian(means, ses, higher_is_better=higher, draws=draws, seed=seed)
        posteriors = [
            ArmPosterior(name, arm.units, p, mean, se=se)
            for name, arm, p, mean, se in zip(
                names, data, best.probabilities, means, ses, strict=True
            )
        ]
    floors = spec.floors()
    weights = thompson_weights(best.probabilities, [floors[name] for name in names])
    return list(zip(names, weights, strict=True)), posteriors, best.method, best.draws


def read_arms(connection: sqlite3.Connection, spec: ExperimentSpec) -> dict[str, ArmData]:
    """Each variant's data on the primary metric, from the store (first exposures joined
    with the units' outcomes, as `analyze --events` joins them)."""
    rows = connection.execute(
        _ARM_QUERY, {"experiment": spec.name, "metric": spec.primary}
    ).fetchall()
    return {
        str(variant): ArmData(int(units), int(valued), int(wins or 0), float(s or 0), float(q or 0))
        for variant, units, valued, wins, s, q in rows
    }


class _Serving(Protocol):
    snapshot: Any  # a ServedSnapshot or None (a Reconciler)


@dataclass
class _Live:
    """One experiment's live state; `weights` is replaced whole, never mutated."""

    spec: ExperimentSpec
    weights: Weights
    due: float
    sticky: dict[str, str] = field(default_factory=dict)
    changes: list[WeightChange] = field(default_factory=list)
    last_skip: str | None = None


class LiveAllocations:
    """The current weights of the running `allocation: thompson` experiments, sticky
    first assignments, and the loop that re-weights them (module docstring)."""

    def __init__(
        self,
        store: EventStore | None,
        experiments: Callable[[], Iterable[ExperimentSpec]],
        *,
        clock: Callable[[], float] = time.time,
        max_sticky: int = MAX_STICKY_UNITS,
    ) -> None:
        self.store = store
        self._experiments = experiments
        self._clock = clock
        self._max_sticky = max_sticky
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()  # one re-weighting or sync at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection = open_connection(store.path) if store is not None else None
        self.sync()

    @classmethod
    def of(cls, reconciler: _Serving, store: EventStore | None) -> LiveAllocations:
        """The live weights of the experiments `reconciler` (a `Reconciler`) serves, learned
        from `store`."""

        def running() -> list[ExperimentSpec]:
            snapshot = reconciler.snapshot
            return snapshot.running_experiments() if snapshot is not None else []

        return cls(store, running)

    # -- the request path ------------------------------------------------------------------

    def assign(self, unit: str, experiment: ExperimentSpec) -> str:
        """The variant of `unit`: its first one if it had one, else `assign` with the
        current weights. A `fixed` experiment is plain `assign`."""
        live = self._live.get(experiment.name)
        if live is None or experiment.allocation != "thompson":
            return assign(unit, experiment)
        known = live.sticky.get(unit)
        if known is not None:
            return known
        variant = assign(unit, experiment, live.weights)
        if len(live.sticky) < self._max_sticky:
            variant = live.sticky.setdefault(unit, variant)  # a racing request agrees
        return variant

    def weights(self, experiment: ExperimentSpec) -> Weights:
        """The weights new units of `experiment` get now."""
        live = self._live.get(experiment.name)
        if live is None:
            return [(v.name, v.weight) for v in experiment.variants]
        return live.weights

    # -- the re-weighting loop -----------------------------------------------------------------

    def sync(self) -> None:
        """Follow the running experiments: start tracking new ones (their last weights and
        first exposures from the store), forget stopped ones."""
        with self._lock:
            running = {e.name: e for e in self._experiments() if e.allocation == "thompson"}
            for name in set(self._live) - set(running):
                del self._live[name]
            for name, spec in running.items():
                live = self._live.get(name)
                if live is not None and _same_variants(live.spec, spec):
                    live.spec = spec  # floors or the interval may have changed
                    continue
                self._live[name] = self._start(spec)

    def _start(self, spec: ExperimentSpec) -> _Live:
        weights: Weights = [(v.name, v.weight) for v in spec.variants]
        now = self._clock()
        live = _Live(spec, weights, now + spec.reweight_seconds)
        if self._connection is None:
            live.last_skip = "no event store: the weights stay as the file sets them"
            return live
        if self.store is not None:
            self.store.flush()
        row = self._connection.execute(
            "SELECT time, weights FROM allocations WHERE experiment = ? ORDER BY time DESC LIMIT 1",
            (spec.name,),
        ).fetchone()
        if row is not None:
            stored = json.loads(row[1])
            if set(stored) == {v.name for v in spec.variants}:
                live.weights = [(v.name, float(stored[v.name])) for v in spec.variants]
                live.due = max(now, float(row[0]) + spec.reweight_seconds)
        names = {v.name for v in spec.variants}
        for unit, variant, _ in self._connection.execute(_FIRST_EXPOSURES, (spec.name,)):
            if variant in names and len(live.sticky) < self._max_sticky:
                live.sticky[str(unit)] = str(variant)
        return live

    def tick(self) -> list[WeightChange]:
        """Re-weight every experiment whose time has come; the changes made."""
        self.sync()
        changes = []
        with self._lock:
            now = self._clock()
            for live in self._live.values():
                if now < live.due or self._connection is None:
                    continue
                live.due = now + live.spec.reweight_seconds
                change = self._reweight(live, now)
                if change is not None:
                    changes.append(change)
        return changes

    def _reweight(self, live: _Live, now: float) -> WeightChange | None:
        assert self._connection is not None and self.store is not None
        self.store.flush()  # what was served and posted so far counts
        try:
            arms = read_arms(self._connection, live.spec)
            outcome = thompson_round(live.spec, arms)
        except (sqlite3.Error, ValueError) as exc:
            live.last_skip = f"cannot read the event store: {exc}"
            log.warning("experiment %s: %s", live.spec.name, live.last_skip)
            return None
        if isinstance(outcome, str):
            live.last_skip = outcome
            return None
        weights, posterior, method, draws = outcome
        live.last_skip = None
        if weights == live.weights:
            return None
        change = WeightChange(
            experiment=live.spec.name,
            time=now,
            metric=live.spec.primary,
            previous=dict(live.weights),
            weights=dict(weights),
            posterior=posterior,
            method=method,
            seed=SEED,
            draws=draws,
        )
        try:
            with self._connection:  # committed before new units follow the new weights
                self._connection.execute(
                    "INSERT INTO allocations VALUES (?,?,?,?,?,?)",
                    (
                        change.time,
                        change.experiment,
                        change.metric,
                        json.dumps(change.previous),
                        json.dumps(change.weights),
                        change.posterior_json(),
                    ),
                )
        except sqlite3.Error as exc:  # unrecorded, the change would break the SRM check
            live.last_skip = f"cannot record the change in the event store: {exc}"
            log.warning("experiment %s: %s", live.spec.name, live.last_skip)
            return None
        live.weights = weights  # the swap: one reference assignment
        live.changes = [*live.changes[-(HISTORY - 1) :], change]
        log.info("experiment weights changed %s", json.dumps(change.to_dict()))
        return change

    def start(self, every: float = 1.0) -> None:
        """Run `tick` every `every` seconds in a daemon thread until `close()`."""
        if self._thread is not None or self._connection is None:  # nothing to learn from
            return
        self._thread = threading.Thread(
            target=self._loop, args=(every,), name="promptyard-reweight", daemon=True
        )
        self._thread.start()

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.tick()
            except Exception:  # a bug must not stop the serving
                log.exception("re-weighting failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._connection is not None:
            with self._lock:
                self._connection.close()
                self._connection = None

    def status(self) -> dict[str, Any]:
        """What `GET /v1/experiments` returns: each live experiment's weights and changes."""
        out = []
        for name, live in sorted(list(self._live.items())):  # sync() may change it
            out.append(
                {
                    "name": name,
                    "allocation": "thompson",
                    "metric": live.spec.primary,
                    "weights": dict(live.weights),
                    "floors": live.spec.floors(),
                    "reweight_every_s": live.spec.reweight_seconds,
                    "next_reweight": live.due,
                    "sticky_units": len(live.sticky),
                    "waiting": live.last_skip,
                    "changes": [change.to_dict() for change in live.changes],
                }
            )
        return {"experiments": out}


def _same_variants(a: ExperimentSpec, b: ExperimentSpec) -> bool:
    return [(v.name, v.prompt, v.model) for v in a.variants] == [
        (v.name, v.prompt, v.model) for v in b.variants
    ] and a.assignment == b.assignment
