"""Experiment events: exposures (served assignments) and outcomes (`POST /v1/feedback`).

`EventStore` appends both to one SQLite database in WAL mode. Why SQLite: it is in the
standard library, a committed transaction survives a killed process (WAL, `synchronous=
NORMAL`), readers (`experiment analyze --events`) never block the writer, and the join of
exposures and outcomes per unit is one query away. Rotated Parquet files would need a
writer that seals a file before it can be read, and lose the open file's rows on a crash.

Recording never blocks a request: `record` puts the event on a bounded queue (`put_nowait`)
and returns; a full queue drops the event and counts it (`dropped`). One writer thread
commits what is queued in batches. An event is *acknowledged* once committed (`flush()`
returns after every event queued before it is committed); a process killed with `kill -9`
loses at most the events not yet acknowledged: those still queued (at most `queue_size`)
and the batch being written.
"""

from __future__ import annotations

import json
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter

from promptyard.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from promptyard.render import RenderResult
    from promptyard.spec.experiment import ExperimentSpec
    from promptyard.stats.experiment import ExperimentAnalysis

PARQUET_MISSING = "Parquet needs pyarrow: pip install 'promptyard[parquet]'"
DEFAULT_QUEUE_SIZE = 10_000
BATCH = 1_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exposures (
    time REAL NOT NULL, unit TEXT NOT NULL, experiment TEXT NOT NULL, variant TEXT NOT NULL,
    prompt TEXT NOT NULL, version TEXT NOT NULL, tokens_in INTEGER, tokens_out INTEGER,
    cost_usd REAL, latency_s REAL
);
CREATE TABLE IF NOT EXISTS outcomes (
    time REAL NOT NULL, unit TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL,
    experiment TEXT
);
CREATE TABLE IF NOT EXISTS captures (
    time REAL NOT NULL, prompt TEXT NOT NULL, version TEXT NOT NULL, variant TEXT NOT NULL,
    variables TEXT NOT NULL, answer TEXT NOT NULL, tool_calls TEXT
);
CREATE TABLE IF NOT EXISTS allocations (
    time REAL NOT NULL, experiment TEXT NOT NULL, metric TEXT NOT NULL, previous TEXT NOT NULL,
    weights TEXT NOT NULL, posterior TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exposures_by_experiment ON exposures (experiment);
"""
ALLOCATION_COLUMNS = ("time", "experiment", "metric", "previous", "weights", "posterior")
EXPOSURE_COLUMNS = (
    "time",
    "unit",
    "experiment",
    "variant",
    "prompt",
    "version",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "latency_s",
)
OUTCOME_COLUMNS = ("time", "unit", "metric", "value", "experiment")


@dataclass(frozen=True, slots=True)
class Exposure:
    """A unit was served a variant of a running experiment."""

    unit: str
    experiment: str
    variant: str
    prompt: str
    version: str
    time: float = field(default_factory=time.time)
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None

    def row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in EXPOSURE_COLUMNS)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a unit afterwards: a metric's value (thumbs up 1/0, CSAT 4, ...)."""

    unit: str
    metric: str
    value: float
    time: float = field(default_factory=time.time)
    experiment: str | None = None

    def row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in OUTCOME_COLUMNS)


@dataclass(frozen=True, slots=True)
class Capture:
    """A sampled production request of a prompt that opted in: its variables and answer."""

    prompt: str
    version: str
    variant: str
    variables: str  # JSON
    answer: str  # the message's text ("" when it only calls tools)
    time: float = field(default_factory=time.time)
    tool_calls: str | None = None  # JSON list of {id, type, function: {name, arguments}}

    def row(self) -> tuple[Any, ...]:
        return (
            self.time,
            self.prompt,
            self.version,
            self.variant,
            self.variables,
            self.answer,
            self.tool_calls,
        )


Event = Exposure | Outcome | Capture


class InvalidEvent(ValueError):
    """A malformed outcome event (HTTP 422)."""


def parse_outcome(body: Any) -> Outcome:
    """An outcome from a feedback body `{unit, metric, value, time?, experiment?}`."""
    if not isinstance(body, Mapping):
        raise InvalidEvent("a feedback event is a JSON object {unit, metric, value[, time]}")
    unit, metric, value = body.get("unit"), body.get("metric"), body.get("value")
    if not isinstance(unit, str) or not unit:
        raise InvalidEvent("`unit` must be a non-empty string (the experiment's unit id)")
    if not isinstance(metric, str) or not metric:
        raise InvalidEvent("`metric` must be a non-empty string (a metric of the experiment)")
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidEvent("`value` must be a finite number (1/0 for a binary metric)")
    when = body.get("time", time.time())
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise InvalidEvent("`time` must be seconds since the epoch")
    experiment = body.get("experiment")
    if experiment is not None and not isinstance(experiment, str):
        raise InvalidEvent("`experiment` must be a string when given")
    return Outcome(unit, metric, float(value), float(when), experiment)


def parse_feedback(body: Any) -> list[Outcome]:
    """One event, or `{"events": [...]}` (all or none: the first malformed one is named)."""
    if isinstance(body, Mapping) and "events" in body:
        events = body["events"]
        if not isinstance(events, list) or not events:
            raise InvalidEvent("`events` must be a non-empty list of feedback events")
        out = []
        for index, event in enumerate(events):
            try:
                out.append(parse_outcome(event))
            except InvalidEvent as exc:
                raise InvalidEvent(f"events[{index}]: {exc}") from None
        return out
    return [parse_outcome(body)]


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where servers keep their state: `$PROMPTYARD_STATE_DIR`, else `$XDG_STATE_HOME/
    promptyard`, else `~/.local/state/promptyard` (the XDG default; a relative
    XDG_STATE_HOME is ignored, as the spec says) — never the current folder."""
    env = os.environ if environ is None else environ
    if env.get("PROMPTYARD_STATE_DIR"):
        return Path(env["PROMPTYARD_STATE_DIR"])
    xdg = env.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "promptyard"


def default_store_path(command: str, environ: Mapping[str, str] | None = None) -> Path:
    """The event store `promptyard serve` / `gateway` record in by default (one per command,
    so a registry service and a gateway on one host never re-weight from each other's)."""
    return state_dir(environ) / f"events-{command}.db"


def has_column(connection: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in connection.execute(f"PRAGMA table_info({table})"))


def open_connection(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


class EventStore:
    """The embedded, crash-safe event store: a bounded queue in front of SQLite (WAL)."""

    def __init__(self, path: str | Path, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = open_connection(self.path)
            connection.executescript(_SCHEMA)
            if not has_column(connection, "captures", "tool_calls"):  # a store from before
                connection.execute("ALTER TABLE captures ADD COLUMN tool_calls TEXT")
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"{self.path}: cannot open the event store: {exc}") from None
        self._connection = connection
        self._queue: queue.Queue[Event | threading.Event | None] = queue.Queue(queue_size)
        self.dropped = 0  # events refused because the queue was full
        self.failed = 0  # events lost to a write error (full disk, ...)
        self.written = 0
        self._writer = threading.Thread(target=self._write_loop, name="events", daemon=True)
        self._writer.start()

    def record(self, event: Event) -> bool:
        """Queue an event; never blocks. False (and counted in `dropped`) when full."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def record_many(self, events: Iterable[Event]) -> int:
        """Queue events; how many were accepted."""
        return sum(self.record(event) for event in events)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every event queued so far is committed (acknowledged)."""
        done = threading.Event()
        self._queue.put(done, timeout=timeout)
        return done.wait(timeout)

    def close(self) -> None:
        """Commit what is queued and stop the writer."""
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join()
        self._connection.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            batch: list[Event] = []
            waiting: list[threading.Event] = []
            item = self._queue.get()
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiting.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._commit(batch)
            for done in waiting:
                done.set()

    def _commit(self, batch: list[Event]) -> None:
        if not batch:
            return
        exposures = [e.row() for e in batch if isinstance(e, Exposure)]
        outcomes = [e.row() for e in batch if isinstance(e, Outcome)]
        captures = [e.row() for e in batch if isinstance(e, Capture)]
        try:
            with self._connection:
                self._connection.execute("BEGIN")
                if exposures:
                    self._connection.executemany(
                        f"INSERT INTO exposures VALUES ({','.join('?' * 10)})", exposures
                    )
                if outcomes:
                    self._connection.executemany(
                        "INSERT INTO outcomes VALUES (?,?,?,?,?)", outcomes
                    )
                if captures:
                    self._connection.executemany(
                        "INSERT INTO captures VALUES (?,?,?,?,?,?,?)", captures
                    )
            self.written += len(batch)
        except sqlite3.Error:
            self.failed += len(batch)  # a full disk: the request path is unaffected


@dataclass(frozen=True)
class EventTables:
    exposures: pd.DataFrame
    outcomes: pd.DataFrame
    # `allocation: thompson` weight changes (time, experiment, metric, previous, weights,
    # posterior; the last three JSON): what `analyze` needs for the expected allocation.
    allocations: pd.DataFrame | None = None


def read_events(path: str | Path) -> EventTables:
    """Exposures and outcomes from an event store (SQLite) or its Parquet export (a
    directory with exposures.parquet and outcomes.parquet)."""
    import pandas as pd

    where = Path(path)
    if where.is_dir():
        try:
            allocations_file = where / "allocations.parquet"
            return EventTables(
                pd.read_parquet(where / "exposures.parquet"),
                pd.read_parquet(where / "outcomes.parquet"),
                pd.read_parquet(allocations_file) if allocations_file.is_file() else None,
            )
        except ImportError:
            raise ConfigError(PARQUET_MISSING) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{where}: not a Parquet export of events: {exc}",
                hint="export with `promptyard events export STORE DIR`",
            ) from None
    if not where.is_file():
        raise ConfigError(f"{where}: no event store here (a SQLite file or a Parquet directory)")
    try:
        connection = sqlite3.connect(f"file:{where}?mode=ro", uri=True)
        try:
            exposures = pd.read_sql_query("SELECT * FROM exposures", connection)
            outcomes = pd.read_sql_query("SELECT * FROM outcomes", connection)
            has_allocations = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='allocations'"
            ).fetchone()
            allocations = (  # a store written before allocations existed has none
                pd.read_sql_query("SELECT * FROM allocations ORDER BY time", connection)
                if has_allocations
                else None
            )
        finally:
            connection.close()
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise ConfigError(f"{where}: not a promptyard event store: {exc}") from None
    return EventTables(exposures, outcomes, allocations)


def export_parquet(path: str | Path, directory: str | Path) -> dict[str, int]:
    """Write the store's events as `exposures.parquet` and `outcomes.parquet` (temp + rename);
    the rows written per table."""
    tables = read_events(path)
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot create the export folder: {exc.strerror}") from None
    counts = {}
    frames = [("exposures", tables.exposures), ("outcomes", tables.outcomes)]
    if tables.allocations is not None and len(tables.allocations):
        frames.append(("allocations", tables.allocations))
    for name, frame in frames:
        target = out / f"{name}.parquet"
        temporary = out / f".{name}.parquet.tmp"
        try:
            frame.to_parquet(temporary, index=False)
        except ImportError:
            raise ConfigError(PARQUET_MISSING) from None
        temporary.replace(target)
        counts[name] = len(frame)
    return counts


@dataclass(frozen=True)
class ExperimentEvents:
    """One row per exposed unit (its variant and each metric), and the outcomes that
    matched no exposed unit or no metric of the experiment (kept, not dropped)."""

    frame: pd.DataFrame
    exposures: int
    unmatched_units: int  # outcomes of units never exposed in the experiment
    unmatched_metrics: int  # outcomes of metrics the experiment does not define
    switched_units: int  # units exposed to more than one variant (first one kept)
    first_exposure: Any = None  # each row's first exposure time (numpy array)

    def warnings(self) -> list[str]:
        out = []
        if self.unmatched_units:
            out.append(
                f"{self.unmatched_units:,} outcome event(s) name a unit never exposed in this "
                "experiment; they are kept in the store and left out"
            )
        if self.unmatched_metrics:
            out.append(
                f"{self.unmatched_metrics:,} outcome event(s) name a metric this experiment "
                "does not define; they are kept in the store and left out"
            )
        if self.switched_units:
            out.append(
                f"{self.switched_units:,} unit(s) were exposed to more than one variant (the "
                "experiment's weights or salt changed while it ran?); their first one counts"
            )
        return out


def experiment_events(spec: ExperimentSpec, tables: EventTables) -> ExperimentEvents:
    """Join exposures and outcomes per unit into the frame `analyze_experiment` reads.

    A binary metric is 1 when any of the unit's events for it is 1 (0 when it has none); a
    continuous metric is the mean of the unit's values (missing when it has none).
    """
    import numpy as np
    import pandas as pd

    from promptyard.stats.experiment import VARIANT_COLUMN

    exposures = tables.exposures
    exposures = exposures[(exposures["experiment"] == spec.name).to_numpy(bool)]
    exposures = exposures.sort_values("time", kind="stable")
    first = exposures.drop_duplicates("unit")[["unit", "variant", "time"]]
    switched = len(exposures.drop_duplicates(["unit", "variant"])) - len(first)
    outcomes = tables.outcomes
    mine = (outcomes["experiment"].isna() | (outcomes["experiment"] == spec.name)).to_numpy(bool)
    outcomes = outcomes[mine]
    metrics = {m.name: m for m in spec.metrics}
    known_metric = np.zeros(len(outcomes), bool)
    metric_column = outcomes["metric"].to_numpy(object)
    for name in metrics:
        known_metric |= metric_column == name
    # Which outcomes belong to an exposed unit: a join on the unit (isin on arrow strings is
    # an order of magnitude slower).
    position = pd.Index(first["unit"]).get_indexer(outcomes["unit"])
    exposed = position >= 0
    frame = first[["unit", "variant"]].reset_index(drop=True)
    values = outcomes["value"].to_numpy(float)
    for name, metric in metrics.items():
        take = exposed & (metric_column == name)
        per_unit = pd.Series(values[take]).groupby(position[take])
        aggregated = per_unit.max() if metric.type == "binary" else per_unit.mean()
        column = aggregated.reindex(range(len(frame)))
        frame[name] = (
            column.fillna(0.0).to_numpy() if metric.type == "binary" else column.to_numpy()
        )
    frame = frame.rename(columns={"unit": spec.assignment.unit, "variant": VARIANT_COLUMN})
    return ExperimentEvents(
        frame=frame,
        exposures=len(exposures),
        unmatched_units=int((known_metric & ~exposed).sum()),
        unmatched_metrics=int((~known_metric).sum()),
        switched_units=switched,
        first_exposure=first["time"].to_numpy(float),
    )


class EventRecorder:
    """An `EventStore` with Prometheus counters of what was queued and what was dropped."""

    def __init__(self, store: EventStore, registry: CollectorRegistry | None = None) -> None:
        self.store = store
        self.recorded = Counter(
            "promptyard_events_recorded",
            "Events queued for the event store, by kind (exposure, outcome, capture).",
            ["kind"],
            registry=registry,
        )
        self.dropped = Counter(
            "promptyard_events_dropped",
            "Events dropped because the event store's queue was full, by kind.",
            ["kind"],
            registry=registry,
        )

    def record(self, event: Event) -> bool:
        kind = type(event).__name__.lower()
        if self.store.record(event):
            self.recorded.labels(kind).inc()
            return True
        self.dropped.labels(kind).inc()
        return False

    def exposure(self, served: RenderResult, unit: str, **usage: Any) -> bool:
        """Record that `unit` was served `served` (only when an experiment chose it)."""
        if served.experiment is None:
            return False
        return self.record(
            Exposure(unit, served.experiment, served.variant, served.name, served.version, **usage)
        )


def weight_history(
    spec: ExperimentSpec, changes: pd.DataFrame | None, first_exposure: Any
) -> tuple[list[dict[str, float]], Any]:
    """(the weights in force over time — the file's first, then each change —, the index
    of the weights in force at each unit's first exposure)."""
    epochs = [{v.name: v.weight for v in spec.variants}]
    times: list[float] = []
    if changes is not None and len(changes):
        mine = changes[changes["experiment"] == spec.name].sort_values("time", kind="stable")
        for when, weights in zip(mine["time"], mine["weights"], strict=True):
            epochs.append({k: float(v) for k, v in json.loads(weights).items()})
            times.append(float(when))
    import numpy as np

    index = np.searchsorted(np.asarray(times, float), np.asarray(first_exposure, float), "right")
    return epochs, index


def analyze_experiment_events(
    spec: ExperimentSpec, path: str | Path, *, seed: int = 0
) -> ExperimentAnalysis:
    """`analyze_experiment` over the events of an event store (or its Parquet export):
    exposures and outcomes joined per unit; unmatched outcomes reported in the warnings."""
    from promptyard.stats.experiment import analyze_experiment

    tables = read_events(path)
    joined = experiment_events(spec, tables)
    if joined.frame.empty:
        raise ConfigError(
            f"{path}: no exposures of experiment {spec.name!r}",
            hint="is it listed under `experiments:` in the environment the service serves?",
        )
    history = None
    if spec.allocation == "thompson":
        history = weight_history(spec, tables.allocations, joined.first_exposure)
    analysis = analyze_experiment(
        spec, joined.frame, source=str(path), seed=seed, weight_history=history
    )
    analysis.warnings.extend(joined.warnings())
    return analysis
