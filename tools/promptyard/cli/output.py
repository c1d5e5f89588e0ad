"""The one way machine-readable output leaves the CLI: `emit(result, fmt)`.

JSON is UTF-8 (RFC 8259) with non-ASCII characters written as themselves
(`ensure_ascii=False`, like the JSON report formats and `promptyard schema`), indented by two,
one newline at the end. It is written as bytes, so the locale of the terminal or CI runner
never turns a prompt's text into an encoding error or `\\u` escapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import click

Formatter = Callable[[Any], str]


def json_text(data: Any) -> str:
    """`data` as the CLI's JSON: indented by two, non-ASCII as itself, a final newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def emit(result: Any, fmt: str = "json", formats: Mapping[str, Formatter] | None = None) -> None:
    """Write `result` to standard output in the machine-readable format `fmt`, as UTF-8.

    "json" is the result's `to_dict()` (a dict or list as it is) as `json_text`, unless
    `formats` has its own; any other format comes from `formats` (a registry of functions
    returning the whole text, final newline included).
    """
    if fmt == "json" and (formats is None or fmt not in formats):
        text = json_text(result.to_dict() if hasattr(result, "to_dict") else result)
    elif formats is not None:
        text = formats[fmt](result)  # an unknown name is a ConfigError listing the known ones
    else:
        raise ValueError(f"emit: no format {fmt!r} without a registry of formats")
    click.echo(text.encode("utf-8"), nl=False)
