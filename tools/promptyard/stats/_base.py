"""What every stats module shares: the result base class and argument checks.

Every public function of `promptyard.stats` returns a frozen dataclass deriving from
`Result`; `to_dict()` gives plain JSON-ready data (numpy scalars become Python numbers,
NaN and infinities become None, tuples become lists).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from promptyard.errors import ConfigError

# Sample-size and power functions only care whether the test is one- or two-sided; tests
# name the direction of the alternative for `treatment - control` (or `head - base`).
Sided = Literal["two-sided", "one-sided"]
Alternative = Literal["two-sided", "less", "greater"]

SIDED: tuple[Sided, ...] = ("two-sided", "one-sided")
ALTERNATIVES: tuple[Alternative, ...] = ("two-sided", "less", "greater")


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (numbers, strings, lists, dicts, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (anything else unchanged)."""
    # np.float64 is a float and np.bool_ is not a bool: ask numpy, not isinstance.
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        try:
            return item()
        except (TypeError, ValueError):  # an array of more than one value
            return value
    return value


def shown(value: Any) -> str:
    """`value` as a message shows it: `2`, `0.5`, `'abc'` — never `np.int64(2)`."""
    return repr(plain(value))


@dataclasses.dataclass(frozen=True)
class Result:
    """Base of every stats result: a frozen dataclass with `to_dict()`."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (stable field names; documented on each class)."""
        data: dict[str, Any] = jsonable(self)
        return data


def check_probability(name: str, value: float) -> float:
    """`value` when it lies strictly between 0 and 1, else a ConfigError naming `name`."""
    if not isinstance(value, int | float) or not math.isfinite(value) or not 0 < value < 1:
        raise ConfigError(f"{name} must be between 0 and 1 (exclusive), got {shown(value)}")
    return float(value)


def check_positive(name: str, value: float) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {shown(value)}")
    return float(value)


def check_count(name: str, value: Any) -> int:
    """A whole number ≥ 0 (10 or 10.0; never 10.7, NaN, infinity or a bool), as an int."""
    value = plain(value)
    whole = isinstance(value, int) or (
        isinstance(value, float) and math.isfinite(value) and value.is_integer()
    )
    if isinstance(value, bool) or not whole or value < 0:
        raise ConfigError(f"{name} must be a whole number ≥ 0, got {shown(value)}")
    return int(value)


def check_finite(name: str, value: Any) -> float:
    """A finite number as a float (else a ConfigError naming `name`)."""
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {shown(value)}")
    return float(value)


def check_seed(name: str, seed: int) -> int:
    """A seed numpy accepts: a whole number, 0 or more (else a ConfigError naming `name`)."""
    seed = plain(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{name} must be a whole number, 0 or more, got {shown(seed)}")
    return seed


# Planning below this level is not a plan, and scipy's t quantiles break down (t.isf(1e-300,
# 3) is -inf): refuse it where the level enters rather than return a wrong n.
MIN_ALPHA = 1e-12


def check_alpha_power(alpha: float, power: float | None = None) -> None:
    """Alpha in [MIN_ALPHA, 1) and power in (0, 1), power above alpha (else nothing to plan)."""
    check_probability("alpha", alpha)
    if alpha < MIN_ALPHA:
        raise ConfigError(
            f"alpha must be at least {MIN_ALPHA:g}, got {shown(alpha)}; no test is planned "
            "at a smaller significance level"
        )
    if power is not None:
        check_probability("power", power)
        if power <= alpha:
            raise ConfigError(f"power ({power:g}) must be greater than alpha ({alpha:g})")


Choice = TypeVar("Choice", bound=str)


def one_of(what: str, value: str, choices: tuple[Choice, ...]) -> Choice:
    """`value` as the one of `choices` it equals; ConfigError listing them otherwise."""
    for choice in choices:
        if value == choice:
            return choice
    raise ConfigError(f"{what} must be one of {', '.join(choices)}, got {value!r}")


def check_sided(alternative: str) -> Sided:
    return one_of("alternative", alternative, SIDED)


def check_alternative(alternative: str) -> Alternative:
    return one_of("alternative", alternative, ALTERNATIVES)


def as_float_array(name: str, values: Sequence[float] | Any, *, minimum: int = 1) -> Any:
    """A 1-D float numpy array of finite values, with at least `minimum` of them."""
    import numpy as np

    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected numbers") from None
    if array.ndim != 1:
        raise ConfigError(f"{name}: expected a flat list of numbers")
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"{name}: contains NaN or infinite values")
    if array.size < minimum:
        raise ConfigError(f"{name}: need at least {minimum} values, got {array.size}")
    return array
