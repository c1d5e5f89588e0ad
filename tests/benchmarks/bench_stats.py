"""Benchmark of the stats commands (run by hand, not by the suite).

    .venv/bin/python tests/benchmarks/bench_stats.py [ROWS]

Generates an experiment with ROWS units (default 1,000,000; 2 variants, 2 binary and 1
continuous metric, sequential on) as CSV and Parquet in a temporary folder, then times
reading + `analyze_experiment` + `allocate_traffic`, and a batch of sample-size calls.
Reports wall time and the peak resident memory of the process.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from promptyard.assignment import assign
from promptyard.spec import ExperimentSpec
from promptyard.stats import power
from promptyard.stats.data import read_data
from promptyard.stats.experiment import allocate_traffic, analyze_experiment

SPEC = ExperimentSpec.model_validate(
    {
        "name": "bench",
        "variants": [
            {"name": "control", "prompt": "p@1.0.0", "weight": 50},
            {"name": "treatment", "prompt": "p@1.1.0", "weight": 50},
        ],
        "assignment": {"unit": "user_id", "salt": "bench"},
        "metrics": [
            {
                "name": "converted",
                "type": "binary",
                "direction": "increase",
                "baseline": 0.1,
                "mde": 0.005,
            },
            {
                "name": "latency",
                "type": "continuous",
                "direction": "decrease",
                "baseline": 800,
                "sd": 200,
                "mde": 10,
            },
            {
                "name": "errored",
                "type": "binary",
                "direction": "decrease",
                "baseline": 0.02,
                "mde": 0.005,
            },
        ],
        "primary": "converted",
        "guardrails": ["errored"],
        "sequential": True,
    }
)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    print(f"{label:<44} {time.perf_counter() - start:8.2f} s   peak RSS {peak_mb():7.0f} MB")
    return value


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(0)
    units = [f"user-{i}" for i in range(rows)]
    variants = np.array([assign(u, SPEC) for u in units])
    treated = variants == "treatment"
    frame = pd.DataFrame(
        {
            "user_id": units,
            "variant": variants,
            "converted": (rng.random(rows) < np.where(treated, 0.105, 0.1)).astype(int),
            "latency": rng.normal(np.where(treated, 795, 800), 200),
            "errored": (rng.random(rows) < 0.02).astype(int),
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        csv, parquet = Path(folder) / "data.csv", Path(folder) / "data.parquet"
        frame.to_csv(csv, index=False)
        frame.to_parquet(parquet)
        del frame
        print(
            f"{rows:,} rows; CSV {csv.stat().st_size / 1e6:.0f} MB, Parquet "
            f"{parquet.stat().st_size / 1e6:.0f} MB"
        )
        data = timed("read CSV", lambda: read_data(csv, text_columns=["user_id", "variant"]))
        timed("read Parquet", lambda: read_data(parquet))
        analysis = timed(
            "analyze (SRM, 3 metrics, mSPRT, assign check)", lambda: analyze_experiment(SPEC, data)
        )
        print(f"  decision: {analysis.decision.action} {analysis.decision.variant or ''}")
        timed("allocate (Thompson, 100k draws)", lambda: allocate_traffic(SPEC, data))
    start = time.perf_counter()
    for i in range(1000):
        power.two_means_sample_size(effect_size=0.1 + i / 2000)
    print(f"{'1000 t-test sample sizes (noncentral t)':<44} {time.perf_counter() - start:8.2f} s")


if __name__ == "__main__":
    main()
