"""Suggestions for misspelt names: one rule for every "did you mean" promptyard prints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice `name` is most likely a typo of (difflib's ratio of at least 0.6), if any."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None
