"""Running experiments: the cost of assignment + exposure logging on an in-process render
(target: at most 100 µs added at p50), and `experiment analyze --events` over 1,000,000
events (target: under 10 s).

Run: .venv/bin/python tests/benchmarks/bench_experiments.py
"""

from __future__ import annotations

import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _fixture import VARIABLES, released_repo
from bench_registry_render import measure, report

from promptyard import Registry
from promptyard.events import EventRecorder, EventStore, analyze_experiment_events

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_experiments_live import EXPERIMENT
from test_experiments_thompson import THOMPSON

ITERATIONS = 50_000
UNITS = 500_000  # one exposure and one outcome each: 1,000,000 events


def render_overhead(tmp: Path) -> None:
    repo = released_repo(tmp)
    baseline = Registry.from_repo(repo.root, ref="main")
    keys = [f"user-{i}" for i in range(1000)]
    repo.write("experiments/tone.yaml", EXPERIMENT)
    repo.write(
        "serving/environments/production.yaml",
        repo.read("serving/environments/production.yaml") + "experiments: [tone]\n",
    )
    repo.commit("run tone")
    experimenting = Registry.from_repo(repo.root, ref="main")
    store = EventStore(tmp / "events.db", queue_size=ITERATIONS * 2)
    experimenting.record_exposures(EventRecorder(store))
    for i in range(2000):  # warm up
        baseline.render("support-reply", VARIABLES, key=keys[i % 1000])
        experimenting.render("support-reply", VARIABLES, key=keys[i % 1000])
    before = measure(
        lambda i: baseline.render("support-reply", VARIABLES, key=keys[i % 1000]), ITERATIONS
    )
    after = measure(
        lambda i: experimenting.render("support-reply", VARIABLES, key=keys[i % 1000]),
        ITERATIONS,
    )
    report("render, canary (no experiment)", before)
    report("render, experiment + exposure logged", after)
    p50 = lambda s: sorted(s)[len(s) // 2]  # noqa: E731
    print(f"added at p50: {p50(after) - p50(before):.1f} µs (target <= 100 µs)")
    store.close()
    print(f"exposures written: {store.written:,}, dropped: {store.dropped:,}")

    # allocation: thompson — live weights, each unit new (assign + remembered), then sticky.
    repo.write("experiments/tone.yaml", THOMPSON)
    repo.commit("tone: thompson")
    bandit = Registry.from_repo(repo.root, ref="main")
    thompson_store = EventStore(tmp / "thompson.db", queue_size=ITERATIONS * 4)
    bandit.record_exposures(EventRecorder(thompson_store))
    live = bandit.learn_allocations(thompson_store)
    assert live is not None
    for i in range(2000):  # warm up
        bandit.render("support-reply", VARIABLES, key=f"warm-{i}")
    new_units = measure(
        lambda i: bandit.render("support-reply", VARIABLES, key=f"new-{i}"), ITERATIONS
    )
    sticky = measure(
        lambda i: bandit.render("support-reply", VARIABLES, key=f"new-{i}"), ITERATIONS
    )
    report("render, thompson, new units + exposure logged", new_units)
    report("render, thompson, returning units (sticky) + exposure", sticky)
    print(
        f"added at p50: new units {p50(new_units) - p50(before):.1f} µs, returning "
        f"{p50(sticky) - p50(before):.1f} µs (target <= 100 µs)"
    )
    live.close()
    thompson_store.close()


def analyze_million(tmp: Path) -> None:
    import yaml

    from promptyard.spec.experiment import ExperimentSpec

    spec = ExperimentSpec.model_validate(yaml.safe_load(EXPERIMENT))
    path = tmp / "million.db"
    EventStore(path).close()  # the schema
    rng = random.Random(1)
    from promptyard.assignment import assign

    exposures, outcomes = [], []
    now = time.time()
    for n in range(UNITS):
        unit = f"u{n}"
        variant = assign(unit, spec)
        exposures.append((now, unit, "tone", variant, "support-reply", "1.0.0", 10, 20, 0.0, 0.1))
        rate = 0.30 if variant == "control" else 0.32
        outcomes.append((now, unit, "resolved", float(rng.random() < rate), None))
    connection = sqlite3.connect(path)
    with connection:
        connection.executemany(f"INSERT INTO exposures VALUES ({','.join('?' * 10)})", exposures)
        connection.executemany("INSERT INTO outcomes VALUES (?,?,?,?,?)", outcomes)
    connection.close()
    start = time.perf_counter()
    analysis = analyze_experiment_events(spec, path)
    seconds = time.perf_counter() - start
    print(
        f"analyze --events, {2 * UNITS:,} events ({UNITS:,} units): {seconds:.2f} s "
        f"(target < 10 s); SRM flagged: {analysis.srm.flagged}"
    )
    from promptyard.allocation import read_arms, thompson_round

    connection = sqlite3.connect(path)
    start = time.perf_counter()
    thompson_round(spec, read_arms(connection, spec))
    print(
        f"one Thompson re-weighting over the same store: {time.perf_counter() - start:.2f} s "
        "(off the request path, in the re-weighting thread)"
    )
    connection.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        render_overhead(Path(tmp) / "a")
        analyze_million(Path(tmp))


if __name__ == "__main__":
    main()
