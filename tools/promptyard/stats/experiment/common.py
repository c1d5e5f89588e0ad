"""What the plan, the analysis and the allocation share: metric families, the variants'
shares, and the checked unit and variant of every row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from promptyard.errors import ConfigError
from promptyard.spec.experiment import ExperimentSpec, Metric
from promptyard.stats.data import text_values

Role = Literal["primary", "guardrail", "secondary"]
Family = Literal["decision", "guardrail", "secondary"]
Outcome = Literal["better", "worse", "inconclusive"]
Action = Literal["ship", "keep-control", "continue", "invalid"]
VARIANT_COLUMN = "variant"
# The weights in force over time, and which epoch each row was first exposed in.
WeightHistory = tuple[list[dict[str, float]], np.ndarray]


def metric_role(spec: ExperimentSpec, name: str) -> Role:
    if name == spec.primary:
        return "primary"
    return "guardrail" if name in spec.guardrails else "secondary"


def decision_metrics(spec: ExperimentSpec) -> list[str]:
    """The metrics whose improvement can ship a variant, in the order of `metrics`.

    The primary metric, plus for a `k-of-n` rule its metrics (every metric when it lists
    none). They form the Holm family.
    """
    chosen = {spec.primary}
    if spec.decision.rule == "k-of-n":
        chosen.update(spec.decision.metrics or (m.name for m in spec.metrics))
    return [m.name for m in spec.metrics if m.name in chosen]


def metric_family(spec: ExperimentSpec, name: str) -> Family:
    """decision (Holm-adjusted, can ship), guardrail (one-sided harm test only), secondary."""
    if name in decision_metrics(spec):
        return "decision"
    return "guardrail" if name in spec.guardrails else "secondary"


def harmful_side(metric: Metric) -> Literal["less", "greater"]:
    """The side of treatment − control that is harm: below for `increase` metrics."""
    return "less" if metric.direction == "increase" else "greater"


def _treatments(spec: ExperimentSpec) -> list[str]:
    control = spec.control_variant.name
    return [v.name for v in spec.variants if v.name != control]


def _shares(spec: ExperimentSpec) -> dict[str, float]:
    total = sum(v.weight for v in spec.variants)
    return {v.name: v.weight / total for v in spec.variants}


@dataclass
class _Prepared:
    units: np.ndarray
    variants: np.ndarray
    counts: dict[str, int]
    rows: int


def _prepare(
    spec: ExperimentSpec,
    frame: pd.DataFrame,
    *,
    variant_column: str,
    source: str,
    metrics: list[Metric],
) -> _Prepared:
    """Check the columns and variants of the data; the unit and variant of every row."""
    unit_column = spec.assignment.unit
    needed = [unit_column, variant_column, *[m.name for m in metrics]]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns)) or "none"
        raise ConfigError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} (columns: {have})",
            hint=f"one row per unit: {unit_column!r}, {variant_column!r} and one column per "
            "metric, named like the metric",
        )
    if len(frame) == 0:
        raise ConfigError(f"{source}: no rows; the data needs one row per unit")
    units = text_values(frame, unit_column, source)
    variants = text_values(frame, variant_column, source)
    counts = Counter(variants.tolist())
    known = {v.name for v in spec.variants}
    unknown = sorted(set(counts) - known)
    if unknown:
        listed = ", ".join(f"{name!r} ({counts[name]} rows)" for name in unknown[:5])
        raise ConfigError(
            f"{source}: variant(s) {listed} are not in experiment {spec.name!r}",
            hint=f"its variants are {', '.join(v.name for v in spec.variants)}",
        )
    if len(counts) < 2:
        only = next(iter(counts))
        raise ConfigError(
            f"{source}: every row is in variant {only!r}; comparing needs data for at least "
            "two variants"
        )
    control = spec.control_variant.name
    if control not in counts:
        raise ConfigError(f"{source}: no rows for the control variant {control!r}")
    return _Prepared(units, variants, dict(counts), len(frame))
