"""Multiple-comparison corrections."""

from __future__ import annotations

import math
from collections.abc import Sequence

from promptyard.errors import ConfigError


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down; same order as given).

    Reject hypothesis i at family-wise level α when its adjusted p-value is ≤ α. With m
    hypotheses sorted by p, the k-th smallest is scaled by (m − k + 1), made monotone and
    capped at 1.
    """
    values = [float(p) for p in p_values]
    if any(not math.isfinite(p) or not 0 <= p <= 1 for p in values):
        raise ConfigError("p-values must lie in [0, 1]")
    m = len(values)
    order = sorted(range(m), key=lambda i: values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running
    return adjusted
