"""Numbers as people read them, shared by the gate reasons and every report format."""

from __future__ import annotations

import math

from promptyard.compare.model import MetricResult


def pct(value: float | None, digits: int = 1) -> str:
    """0.925 -> '92.5%'."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value * 100:.{digits}f}%"


def points(value: float | None, *, signed: bool = False) -> str:
    """A difference of rates in percentage points: -0.075 -> '-7.5 pts'."""
    if value is None or not math.isfinite(value):
        return "-"
    text = f"{value * 100:+.1f}" if signed else f"{abs(value) * 100:.1f}"
    return text.replace("-", "−") + " pts"


def number(value: float | None, digits: int = 3, *, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace("-", "−")


def ms(value: float | None, *, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return (f"{value:+,.0f}" if signed else f"{value:,.0f}").replace("-", "−") + " ms"


def usd(value: float | None, *, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    sign = ("−" if value < 0 else "+") if signed else ("−" if value < 0 else "")
    size = abs(value)
    text = f"{size:,.2f}" if size >= 1 else f"{size:.6f}".rstrip("0").rstrip(".")
    return f"{sign}${text if text else '0'}"


def p_value(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if value < 0.001:
        return "<0.001"
    return f"{value:.3f}"


def ratio(value: float | None) -> str:
    if value == math.inf:  # head / base with a base of 0
        return "∞×"
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2f}×"


def value(metric: MetricResult, which: float | None) -> str:
    """A metric's base or head value in its unit."""
    if metric.unit == "rate":
        return pct(which)
    if metric.unit == "ms":
        return ms(which)
    if metric.unit == "usd":
        return usd(which)
    return number(which)


def delta(metric: MetricResult, which: float | None = None) -> str:
    """A metric's difference (head − base) in its unit, signed."""
    amount = metric.delta if which is None else which
    if metric.unit == "rate":
        return points(amount, signed=True)
    if metric.unit == "ms":
        return ms(amount, signed=True)
    if metric.unit == "usd":
        return usd(amount, signed=True)
    return number(amount, signed=True)


def versions(base: str | None, head: str | None) -> str:
    """'2.1.0 → 2.1.1' when both exist and differ, else the one there is."""
    if base and head and base != head:
        return f"{base} → {head}"
    return head or base or ""


def interval(metric: MetricResult) -> str:
    """The 95% interval: of the difference (signed), or of the value when there is no base."""
    if metric.ci95 is None:
        return "-"
    low, high = metric.ci95
    if metric.delta is None:
        return f"[{value(metric, low)}, {value(metric, high)}]"
    if metric.unit == "rate":
        return f"[{low * 100:+.1f}, {high * 100:+.1f}]".replace("-", "−")
    if metric.unit == "ms":
        return f"[{low:+,.0f}, {high:+,.0f}]".replace("-", "−")
    if metric.unit == "usd":
        return f"[{usd(low, signed=True)}, {usd(high, signed=True)}]"
    return f"[{low:+.3f}, {high:+.3f}]".replace("-", "−")
