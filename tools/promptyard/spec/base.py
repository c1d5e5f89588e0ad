"""The base of every file-format model, and the rules that schema validation reports."""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any

import semver
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from promptyard.codes import RULES

# Rules raised while validating a file against its model (their entries are in
# `promptyard.codes`). A model raises a custom error whose type is the rule's name (see `invalid`).
SPEC_CODES = (
    *("S001", "S002", "S003", "S004", "S005", "T001", "T002", "T003", "V001"),
    *("E002", "E003", "E009", "X001", "X003", "X005", "X007", "K007", "K012", "K017"),
    "D007",
)
_CODE_BY_ERROR_TYPE = {RULES[code].name: code for code in SPEC_CODES} | {
    "extra_forbidden": "S001",
    "missing": "S003",
}

# A prompt name becomes part of git tags (`prompts/<name>/v<version>`), so besides the
# characters it must satisfy git's ref rules: no `..`, no part ending in `.` or `.lock`.
NAME_PARTS = r"[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*"
NAME_PATTERN = rf"^(?!.*\.\.)(?!.*\.lock(?:/|$))(?!.*\.(?:/|$)){NAME_PARTS}$"
_NAME_RE = re.compile(NAME_PATTERN)


def invalid(rule_name: str, message: str, **context: Any) -> PydanticCustomError:
    """An error that lint reports under the rule called `rule_name`.

    `message` is a `str.format` template over `context` (format specs such as `{x!r}` and
    `{x:g}` work); it is formatted here because pydantic only substitutes bare `{x}`.
    """
    return PydanticCustomError(rule_name, message.format(**context) if context else message)


def _allow_extension_keys(schema: dict[str, Any]) -> None:
    schema["patternProperties"] = {"^x-": {}}


class SpecModel(BaseModel):
    """Unknown fields are errors, except `x-` extension keys, which are dropped."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        populate_by_name=True,
        json_schema_extra=_allow_extension_keys,
        frozen=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_extension_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(isinstance(k, str) and k.startswith("x-") for k in data):
            return {
                k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))
            }
        return data


def _check_semver(value: Any) -> str:
    if not isinstance(value, str):
        parts = [*str(value).split("."), "0", "0"][:3] if isinstance(value, int | float) else []
        suggestion = f'e.g. "{".".join(parts)}"' if parts else 'e.g. "1.0.0"'
        raise invalid(
            "invalid-version",
            "{value} is not a version string; write a quoted MAJOR.MINOR.PATCH, {suggestion}",
            value=repr(value),
            suggestion=suggestion,
        )
    if not semver.Version.is_valid(value):
        raise invalid(
            "invalid-version",
            "{value} is not a semver version; write MAJOR.MINOR.PATCH, e.g. 1.0.0",
            value=repr(value),
        )
    return value


SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

# Checked by semver (for a message with the fix); the pattern is there for editors.
SemVer = Annotated[
    str, BeforeValidator(_check_semver), Field(json_schema_extra={"pattern": SEMVER_PATTERN})
]


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise invalid(
            "invalid-name",
            "{value} is not a valid name: use lowercase letters, digits, '.', '_' and '-', "
            "parts separated by '/', no '..' and no part ending in '.' or '.lock' "
            "(names become git tags)",
            value=repr(value),
        )
    return value


# Checked in Python (pydantic's regex engine has no look-ahead); the pattern is for editors.
Name = Annotated[
    str, AfterValidator(_check_name), Field(json_schema_extra={"pattern": NAME_PATTERN})
]


def _alternatives(annotation: Any) -> list[Any]:
    """The concrete types behind Optional/Union/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _alternatives(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _alternatives(arg)]
    return [annotation]


def _step(annotation: Any, part: str | int) -> list[Any]:
    """The annotation(s) of the value one loc part below a value of type `annotation`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
        return [args[0]]
    if origin is dict and isinstance(part, str) and len(args) == 2:
        return [args[1]]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [
            info.annotation
            for name, info in annotation.model_fields.items()
            if part in (name, info.alias)
        ]
    return []


def _allowed_fields(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names (aliases) of the model(s) found at `loc` (the unknown key's parent)."""
    candidates: list[Any] = [model]
    for part in loc:
        candidates = [
            nxt for c in candidates for alt in _alternatives(c) for nxt in _step(alt, part)
        ]
    return [
        info.alias or name
        for c in candidates
        for alt in _alternatives(c)
        if isinstance(alt, type) and issubclass(alt, BaseModel)
        for name, info in alt.model_fields.items()
    ]


def _data_loc(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The part of a pydantic error loc that walks the actual data (drops union branch tags)."""
    kept: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
            kept.append(part)
    return tuple(kept)


@dataclass(frozen=True)
class SpecProblem:
    """One validation error: the rule code, where in the data, and a message with the fix."""

    code: str
    loc: tuple[str | int, ...]
    message: str
    at_key: bool = False


def spec_problems(model: type[BaseModel], data: Any, error: ValidationError) -> list[SpecProblem]:
    """Turn a pydantic ValidationError into rule-coded problems with fixes."""
    problems: list[SpecProblem] = []
    for err in error.errors(include_url=False):
        kind = err["type"]
        code = _CODE_BY_ERROR_TYPE.get(kind, "S002")
        raw_loc = tuple(err["loc"])
        loc = _data_loc(data, raw_loc)
        where = ".".join(str(p) for p in loc) or "file"
        if kind == "extra_forbidden":
            field = str(raw_loc[-1])
            allowed = _allowed_fields(model, loc[:-1])
            close = difflib.get_close_matches(field, allowed, n=1, cutoff=0.6)
            keep = " (or prefix it with `x-` to keep it as an extension)"
            # Only formats people write take `x-` keys; the machine-written ones do not.
            fix = (
                f"did you mean {close[0]!r}?"
                if close
                else "remove it" + (keep if issubclass(model, SpecModel) else "")
            )
            problems.append(SpecProblem(code, loc, f"unknown field {field!r}; {fix}", at_key=True))
        elif kind == "missing":
            field = str(raw_loc[-1])
            parent = ".".join(str(p) for p in loc) or "the file"
            problems.append(SpecProblem(code, loc, f"missing required field {field!r} in {parent}"))
        elif code != "S002" or kind == "value_error":
            # A model's own check (ValueError) says what is wrong in its message already.
            prefix = f"{where}: " if loc else ""
            message = err["msg"].removeprefix("Value error, ")
            problems.append(SpecProblem(code, loc, prefix + message))
        else:
            value = err.get("input")
            shown = (
                repr(value) if isinstance(value, str | int | float | bool) else type(value).__name__
            )
            if value is None:
                shown = "null"
            problems.append(SpecProblem(code, loc, f"{where}: {err['msg']} (got {shown})"))
    return problems
