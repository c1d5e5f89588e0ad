"""`allocate_traffic`: Thompson-sampling weights with a floor so that no arm starves."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from promptyard.errors import ConfigError
from promptyard.spec.experiment import ExperimentSpec
from promptyard.stats._base import Result, check_seed
from promptyard.stats.bayes import check_draws, prob_best_beta, prob_best_gaussian
from promptyard.stats.data import metric_values
from promptyard.stats.experiment.common import VARIANT_COLUMN, _prepare


@dataclass(frozen=True)
class VariantAllocation(Result):
    """A variant's suggested traffic weight (percent, two decimals; all sum to 100)."""

    name: str
    units: int
    mean: float | None
    prob_best: float
    current_weight: float
    weight: float


@dataclass(frozen=True)
class Allocation(Result):
    """Thompson-sampling weights on `metric`: weight = floor + (100 − k·floor) · P(best).

    `method` says how P(best) was computed: `exact` for two variants (the closed form
    `analyze` reports as P(better)), else `monte-carlo` from `draws` draws seeded with
    `seed`, whose largest standard error is `standard_error`. Weights are multiples of
    `resolution` percent: 0.01, or the power of ten at or above two Monte Carlo standard
    errors (in percent), so they show only the digits the draws support.
    """

    experiment: str
    metric: str
    direction: str
    floor: float
    draws: int
    seed: int
    variants: list[VariantAllocation]
    method: str = "monte-carlo"
    standard_error: float = 0.0
    resolution: float = 0.01


def _round_to_step(weights: list[float], step: float) -> list[float]:
    """Round percentages to multiples of `step` keeping the sum exactly 100 (largest
    remainder)."""
    units = [w / step for w in weights]
    floors = [math.floor(u + 1e-9) for u in units]
    left = round(100 / step) - sum(floors)
    order = sorted(range(len(units)), key=lambda i: units[i] - floors[i], reverse=True)
    for i in order[: max(0, left)]:
        floors[i] += 1
    return [round(f * step, 10) for f in floors]


def thompson_weights(
    prob_best: list[float], floors: list[float], step: float = 0.01
) -> list[float]:
    """Weights in percent: each variant's floor plus its P(best) share of what the floors
    leave, `floor_i + (100 − Σ floors) · P(best_i)`, in multiples of `step` summing to 100."""
    spare = 100 - sum(floors)
    raw = [f + spare * p for f, p in zip(floors, prob_best, strict=True)]
    return _round_to_step(raw, step)


def supported_step(standard_error: float) -> float:
    """The finest step in percent (0.01 at best) a Monte Carlo standard error supports:
    the power of ten at or above two standard errors (in percent)."""
    if standard_error <= 0:
        return 0.01
    return max(0.01, 10.0 ** math.ceil(math.log10(2 * 100 * standard_error)))


def allocate_traffic(
    spec: ExperimentSpec,
    frame: pd.DataFrame,
    *,
    floor: float = 5.0,
    variant_column: str = VARIANT_COLUMN,
    source: str = "data",
    draws: int = 100_000,
    seed: int = 0,
) -> Allocation:
    """Traffic weights from the probability each variant is best on the primary metric."""
    check_seed("seed", seed)
    check_draws(draws)
    k = len(spec.variants)
    if not math.isfinite(floor) or floor < 0 or floor * k >= 100:
        raise ConfigError(
            f"the floor must be at least 0 and below {100 / k:g}% for {k} variants, got {floor:g}"
        )
    metric = next(m for m in spec.metrics if m.name == spec.primary)
    prepared = _prepare(spec, frame, variant_column=variant_column, source=source, metrics=[metric])
    values = metric_values(frame, metric.name, binary=metric.type == "binary", path=source)
    names = [v.name for v in spec.variants]
    arms = [values[(prepared.variants == name) & ~np.isnan(values)] for name in names]
    higher = metric.direction == "increase"
    if metric.type == "binary":
        best = prob_best_beta(
            [int(a.sum()) for a in arms],
            [int(a.size) for a in arms],
            higher_is_better=higher,
            draws=draws,
            seed=seed,
        )
    else:
        short = [name for name, a in zip(names, arms, strict=True) if a.size < 2]
        if short:
            raise ConfigError(
                f"{source}: metric {metric.name!r} needs at least 2 values in every variant "
                f"to allocate; {', '.join(short)} has fewer"
            )
        best = prob_best_gaussian(
            [float(a.mean()) for a in arms],
            [float(a.std(ddof=1) / math.sqrt(a.size)) for a in arms],
            higher_is_better=higher,
            draws=draws,
            seed=seed,
        )
    step = supported_step(best.standard_error)
    weights = thompson_weights(best.probabilities, [floor] * k, step)
    return Allocation(
        experiment=spec.name,
        metric=metric.name,
        direction=metric.direction,
        floor=floor,
        draws=draws,
        seed=seed,
        method=best.method,
        standard_error=best.standard_error,
        resolution=step,
        variants=[
            VariantAllocation(
                name=name,
                units=int(arm.size),
                mean=float(arm.mean()) if arm.size else None,
                prob_best=p,
                current_weight=variant.weight,
                weight=w,
            )
            for name, arm, p, w, variant in zip(
                names, arms, best.probabilities, weights, spec.variants, strict=True
            )
        ],
    )
