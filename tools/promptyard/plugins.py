"""The one rule every plugin registry keeps: a name is registered once.

Two modules claiming one name (an assertion type, a report format, a gate, ...) is a
programming mistake; the second registration raises instead of silently replacing the first.
`NamedRegistry` is a registry that keeps it, and answers an unknown name with a
`ConfigError` (exit 2) listing the names there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from promptyard.errors import ConfigError

T = TypeVar("T")


def register_once(table: dict[str, T], name: str, entry: T, what: str) -> T:
    """Add `entry` to `table` under `name`; ValueError when the name is taken."""
    if name in table:
        raise ValueError(f"{what} {name!r} is already registered")
    table[name] = entry
    return entry


class UnknownName(ConfigError, KeyError):
    """A name no plugin is registered under (a KeyError too, so `in` and `.get` work)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return ConfigError.__str__(self)


class NamedRegistry(Mapping[str, T], Generic[T]):
    """Plugins of one kind by name, in registration order.

    >>> FORMATS: NamedRegistry[Formatter] = NamedRegistry("lint output format")
    >>> @FORMATS.register("text")
    ... def text(result: LintResult) -> str: ...
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind  # what a plugin is, for messages: "lint output format", "report format"
        self._items: dict[str, T] = {}

    def add(self, name: str, value: T) -> T:
        """Register `value` under `name`; a taken name is a ValueError (`register_once`)."""
        return register_once(self._items, name, value, self.kind)

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator registering what it decorates under `name`."""

        def decorate(value: T) -> T:
            return self.add(name, value)

        return decorate

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(
                f"unknown {self.kind} {name!r}", hint=f"known: {', '.join(self.names())}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def __repr__(self) -> str:
        return f"NamedRegistry({self.kind!r}: {', '.join(self.names())})"
