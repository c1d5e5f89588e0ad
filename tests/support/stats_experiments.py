"""Experiment repositories and simulated experiment data for the stats tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from promptyard.assignment import assign
from promptyard.spec import ExperimentSpec

EXPERIMENT: dict[str, Any] = {
    "name": "reply-tone",
    "description": "A friendlier tone for support replies",
    "variants": [
        {"name": "control", "prompt": "support-reply@2.1.0", "weight": 50},
        {"name": "friendly", "prompt": "support-reply@2.2.0", "weight": 50},
    ],
    "assignment": {"unit": "user_id", "salt": "reply-tone-2024"},
    "metrics": [
        {
            "name": "resolved",
            "type": "binary",
            "direction": "increase",
            "baseline": 0.30,
            "mde": 0.03,
        },
        {
            "name": "handle_time",
            "type": "continuous",
            "direction": "decrease",
            "baseline": 300,
            "sd": 120,
            "mde": 0.05,
            "relative_mde": True,
        },
        {
            "name": "escalated",
            "type": "binary",
            "direction": "decrease",
            "baseline": 0.10,
            "mde": 0.02,
        },
    ],
    "primary": "resolved",
    "guardrails": ["escalated"],
    "alpha": 0.05,
    "power": 0.8,
    "min_samples": 1000,
    "daily_traffic": 2000,
}


def experiment(**overrides: Any) -> dict[str, Any]:
    """The example experiment as data, with top-level fields replaced."""
    data = {**EXPERIMENT, **overrides}
    return data


def write_repo(root: Path, spec: dict[str, Any] | None = None) -> Path:
    """A prompt repository (promptyard.yaml + experiments/<name>.yaml) under `root`."""
    spec = spec or experiment()
    (root / "experiments").mkdir(parents=True, exist_ok=True)
    (root / "promptyard.yaml").write_text("providers:\n  default: {type: openai}\n")
    (root / "experiments" / f"{spec['name']}.yaml").write_text(
        yaml.safe_dump(spec, sort_keys=False)
    )
    return root


def simulate(
    spec: dict[str, Any],
    n: int,
    *,
    rates: dict[str, dict[str, float]],
    seed: int = 1,
) -> pd.DataFrame:
    """One row per unit, assigned with `assign()`; `rates[variant][metric]` is the mean.

    Binary metrics are Bernoulli draws; continuous metrics are normal with the metric's sd.
    """
    model = ExperimentSpec.model_validate(spec)
    rng = np.random.default_rng(seed)
    units = [f"u{i:06d}" for i in range(n)]
    variants = np.array([assign(u, model) for u in units])
    frame = pd.DataFrame({model.assignment.unit: units, "variant": variants})
    for metric in model.metrics:
        means = np.array([rates[v].get(metric.name, metric.baseline) for v in variants])
        if metric.type == "binary":
            frame[metric.name] = (rng.random(n) < means).astype(int)
        else:
            frame[metric.name] = rng.normal(means, metric.sd or 1.0)
    return frame
