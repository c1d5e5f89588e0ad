"""Margin of error of one proportion: n = z² p (1 − p) / E²."""

from __future__ import annotations

import math

from scipy import stats

from promptyard.stats._base import (
    check_probability,
)
from promptyard.stats.power._base import (
    DetectableEffect,
    SampleSize,
    _check_n,
    _detectable_effect,
    _feasible,
    _sample_size,
    _units_needed,
)


def margin_sample_size(p: float, margin: float, *, confidence: float = 0.95) -> SampleSize:
    """Units to estimate one proportion near `p` within ±`margin`: n = z²p(1−p)/E², rounded up."""
    check_probability("the expected proportion", p)
    check_probability("the margin", margin)
    check_probability("confidence", confidence)
    z = float(stats.norm.isf((1 - confidence) / 2))
    n_exact = _feasible(
        _units_needed(z, math.sqrt(p * (1 - p)), margin),
        what=f"a margin of ±{margin:g} is too narrow to reach",
        fix="allow a wider margin",
    )
    n = max(1, math.ceil(n_exact - 1e-9))
    return _sample_size(
        "margin",
        "normal",
        n_exact,
        None,
        n=n,
        alpha=round(1 - confidence, 12),
        power=None,
        alternative="two-sided",
        effect=margin,
        effect_size=None,
        assumptions={
            "p": p,
            "margin": margin,
            "confidence": confidence,
            "z": z,
            "achieved_margin": z * math.sqrt(p * (1 - p) / n),
        },
    )


def margin_of_error(p: float, n: float, *, confidence: float = 0.95) -> DetectableEffect:
    """The ± margin of a proportion near `p` estimated from n units: z·√(p(1−p)/n)."""
    check_probability("the expected proportion", p)
    check_probability("confidence", confidence)
    n = _check_n("n", n)
    z = float(stats.norm.isf((1 - confidence) / 2))
    margin = z * math.sqrt(p * (1 - p) / n)
    return _detectable_effect(
        "margin",
        "normal",
        n,
        alpha=round(1 - confidence, 12),
        power=None,
        alternative="two-sided",
        effect=margin,
        relative_effect=margin / p,
        effect_size=None,
        assumptions={"p": p, "confidence": confidence, "z": z},
    )
