"""Limits on the call and on the answer's length: latency, cost, word-count."""

from __future__ import annotations

import math

from promptyard.evals.assertions._base import (
    AssertionContext,
    AssertionFailure,
    Outcome,
    ShapeCheck,
    assertion_type,
)
from promptyard.spec import Assertion


def _limit_threshold(unit: str) -> ShapeCheck:
    def check(a: Assertion) -> str | None:
        if a.value is not None:
            return f"takes its limit in `threshold` ({unit}), not `value`"
        if a.threshold is None or a.threshold < 0:
            return f"needs `threshold`: the maximum {unit}"
        return None

    return check


def _word_count_value(a: Assertion) -> str | None:
    v = a.value
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return None
    if (
        isinstance(v, dict)
        and v
        and set(v) <= {"min", "max"}
        and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v.values())
    ):
        if "min" in v and "max" in v and v["min"] > v["max"]:
            return "`min` is above `max`"
        return None
    return "`value` must be a word count or {min: N, max: M}"


@assertion_type(
    "latency",
    "response latency at most `threshold` ms",
    _limit_threshold("ms"),
    uses_threshold=True,
)
async def _latency(a: Assertion, ctx: AssertionContext) -> Outcome:
    if ctx.latency_ms is None:
        raise AssertionFailure("latency was not measured")
    assert a.threshold is not None  # `_limit_threshold` requires it
    ok = ctx.latency_ms <= a.threshold
    return ok, float(ok), f"latency {ctx.latency_ms:.0f} ms (max {a.threshold:g})"


@assertion_type(
    "cost", "cost of the call at most `threshold` USD", _limit_threshold("USD"), uses_threshold=True
)
async def _cost(a: Assertion, ctx: AssertionContext) -> Outcome:
    if ctx.cost_usd is None:
        raise AssertionFailure("cost unknown: add the model to `pricing` in promptyard.yaml")
    assert a.threshold is not None  # `_limit_threshold` requires it
    ok = ctx.cost_usd <= a.threshold
    return ok, float(ok), f"cost ${ctx.cost_usd:.6f} (max ${a.threshold:g})"


@assertion_type(
    "word-count", "number of words, exactly `value` or within {min, max}", _word_count_value
)
async def _word_count(a: Assertion, ctx: AssertionContext) -> Outcome:
    words = len(ctx.output.split())
    if isinstance(a.value, int):
        ok = words == a.value
        bound = f"exactly {a.value}"
    else:
        low, high = a.value.get("min", 0), a.value.get("max", math.inf)
        ok = low <= words <= high
        bound = f"{low}..{'' if high == math.inf else high}"
    return ok, float(ok), f"{words} words (wanted {bound})"
