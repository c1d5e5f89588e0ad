"""The one rule every plugin registry keeps: a name is registered once.

Two modules claiming one name (an assertion type, a report format, a gate, ...) is a
programming mistake; the second registration raises instead of silently replacing the first.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def register_once(table: dict[str, T], name: str, entry: T, what: str) -> T:
    """Add `entry` to `table` under `name`; ValueError when the name is taken."""
    if name in table:
        raise ValueError(f"{what} {name!r} is already registered")
    table[name] = entry
    return entry
