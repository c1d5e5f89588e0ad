"""Sticky, reproducible assignment of keys to buckets (docs/architecture.md §9).

A key lands in bucket `int(sha256(text).hexdigest()[:8], 16) % 10000`, where `text` joins
the parts with ":". The same key always lands in the same bucket, in any language and on
any replica. Canaries and experiments both assign through `bucket`.

Experiments (`assign`): unit `u` of an experiment with salt `s` and variants
`v1, v2, ...` (file order, weights `w1, w2, ...` in percent summing to 100) gets the first
variant whose cumulative edge exceeds its bucket:

    b = int(sha256(f"{s}:{u}".encode("utf-8")).hexdigest()[:8], 16) % 10000
    variant = first v_k with b < (w1 + ... + wk) * 100
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptyard.spec.experiment import ExperimentSpec

BUCKETS = 10_000  # so a weight in percent has two decimals of resolution


def bucket(*parts: str) -> int:
    """The bucket (0..9999) of the key made of `parts` joined by ':'."""
    digest = hashlib.sha256(":".join(parts).encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % BUCKETS


def in_canary(environment: str, prompt: str, key: str, weight: float) -> bool:
    """Whether `key` is routed to the canary of `prompt` in `environment` (weight in percent)."""
    return bucket(environment, prompt, key) < weight * 100


def pick(bucket_number: int, weights: Sequence[tuple[str, float]]) -> str:
    """The name whose cumulative share (weights in percent, summing to 100) covers the bucket."""
    edge = 0.0
    for name, weight in weights:
        edge += weight * 100
        if bucket_number < edge:
            return name
    return weights[-1][0]


def assign(
    unit_id: str,
    experiment: ExperimentSpec,
    weights: Sequence[tuple[str, float]] | None = None,
) -> str:
    """The variant (name) an experiment serves to `unit_id`: sticky, the same everywhere.

    `pick(bucket(salt, unit_id), [(variant, weight), ...])` — see the module docstring for
    the formula in any language. `weights` replaces the file's (a Thompson allocation's
    current weights, in the variants' file order).
    """
    if weights is None:
        weights = [(variant.name, variant.weight) for variant in experiment.variants]
    return pick(bucket(experiment.assignment.salt, str(unit_id)), weights)
