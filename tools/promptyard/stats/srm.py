"""Sample ratio mismatch: do the units per variant match the configured traffic weights?

A chi-square goodness-of-fit test of the observed counts against the counts the weights
predict. A mismatch (p < 0.001 by default) means assignment or logging is broken and the
experiment's results cannot be trusted, whatever they say.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats

from promptyard.errors import ConfigError
from promptyard.stats._base import Result, check_count, check_probability

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SRMResult(Result):
    """Chi-square goodness of fit of units per variant against the weights.

    `variants`, `observed`, `expected` and `weights` (shares summing to 1) are parallel
    lists; `flagged` is `p_value < threshold`.
    """

    variants: list[str]
    observed: list[int]
    expected: list[float]
    weights: list[float]
    statistic: float
    p_value: float
    threshold: float
    flagged: bool
    skipped_reason: str | None = None  # the check does not apply (then never flagged)

    def skipped(self, reason: str) -> SRMResult:
        """This result marked as not applicable: not flagged, with the reason."""
        from dataclasses import replace

        return replace(self, p_value=1.0, flagged=False, skipped_reason=reason)


def srm_check(
    observed: Mapping[str, int],
    weights: Mapping[str, float],
    *,
    threshold: float = SRM_THRESHOLD,
) -> SRMResult:
    """Test the counts per variant against the weights (any positive scale, e.g. percent).

    Every variant of `weights` is tested (a missing one counts 0 units); a variant observed
    but not in `weights` is an error.
    """
    check_probability("SRM threshold", threshold)
    unknown = sorted(set(observed) - set(weights))
    if unknown:
        raise ConfigError(f"units in variants that have no weight: {', '.join(unknown)}")
    names = list(weights)
    if len(names) < 2:
        raise ConfigError("the SRM check needs at least 2 variants")
    raw = [float(weights[name]) for name in names]
    if any(not math.isfinite(w) or w <= 0 for w in raw):
        raise ConfigError("every variant weight must be positive")
    counts = [check_count(f"units of variant {name!r}", observed.get(name, 0)) for name in names]
    total = sum(counts)
    if total == 0:
        raise ConfigError("no units: nothing to check")
    shares = [w / sum(raw) for w in raw]
    expected = [total * share for share in shares]
    result = stats.chisquare(counts, expected)
    p = float(result.pvalue)
    return SRMResult(
        variants=names,
        observed=counts,
        expected=expected,
        weights=shares,
        statistic=float(result.statistic),
        p_value=p,
        threshold=threshold,
        flagged=p < threshold,
    )
