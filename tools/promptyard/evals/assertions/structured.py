"""JSON checks: is-json, json-schema, contains-json, json-path.

Their schema and path checks also judge a tool call's arguments (`tool_calls`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from promptyard.evals import textchecks
from promptyard.evals.assertions._base import (
    AssertionContext,
    AssertionFailure,
    Outcome,
    _bounded,
    _no_value,
    _short,
    as_text,
    assertion_type,
)
from promptyard.spec import Assertion


def _schema_value(a: Assertion) -> str | None:
    if a.value is None:
        return None  # the prompt's output.schema is used
    if not isinstance(a.value, dict):
        return "`value` must be a JSON Schema object (or omitted to use output.schema)"
    try:
        Draft202012Validator.check_schema(a.value)
    except jsonschema.SchemaError as exc:
        return f"`value` is not a valid JSON Schema: {exc.message}"
    return None


_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def parse_json_path(path: str) -> list[str | int] | None:
    """`$.a.b[0]['c d']` (or `a.b[0]`) -> ["a", "b", 0, "c d"]; None when malformed."""
    text = path.strip()
    text = text[1:] if text.startswith("$") else "." + text if text and text[0] != "[" else text
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _PATH_TOKEN.match(text, pos)
        if not match:
            return None
        name, index, quoted1, quoted2 = match.groups()
        parts.append(int(index) if index is not None else (name or quoted1 or quoted2 or ""))
        pos = match.end()
    return parts


def _json_path_value(a: Assertion) -> str | None:
    v = a.value
    if not isinstance(v, dict) or not isinstance(v.get("path"), str):
        return "`value` must be {path: '$.field', equals: ... | contains: ... | exists: bool}"
    extra = set(v) - {"path", "equals", "contains", "exists"}
    if extra:
        return f"unknown key(s) {', '.join(sorted(extra))} in `value`"
    if len({"equals", "contains", "exists"} & set(v)) > 1:
        return "use only one of `equals`, `contains`, `exists`"
    if parse_json_path(v["path"]) is None:
        return f"`path` {v['path']!r} is not a JSON path like $.reply or $.items[0].name"
    return None


@assertion_type("is-json", "output parses as JSON", _no_value)
async def _is_json(a: Assertion, ctx: AssertionContext) -> Outcome:
    _, error = ctx.output_json()
    return error is None, float(error is None), error or "output is valid JSON"


@assertion_type(
    "json-schema",
    "output is JSON valid against `value` or the prompt's output.schema",
    _schema_value,
)
async def _json_schema(a: Assertion, ctx: AssertionContext) -> Outcome:
    schema = (
        a.value
        if a.value is not None
        else (ctx.prompt.output.schema_ if ctx.prompt.output else None)
    )
    if schema is None:
        raise AssertionFailure("no schema: give `value` or set output.schema in the prompt")
    parsed, error = ctx.output_json()
    if error is not None:
        return False, 0.0, error
    problem = _schema_violation(schema, parsed)
    return problem is None, float(problem is None), problem or "output matches the schema"


_VALIDATORS: dict[str, Draft202012Validator] = {}
_VALIDATORS_KEPT = 256


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """The validator of `schema`, built once per distinct schema: a tool's `parameters` or
    an assertion's schema is checked against every case, and building costs more than
    validating."""
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):  # not plain JSON: build it each time
        return Draft202012Validator(schema, format_checker=textchecks.FORMAT_CHECKER)
    validator = _VALIDATORS.get(key)
    if validator is None:
        if len(_VALIDATORS) >= _VALIDATORS_KEPT:
            _VALIDATORS.clear()
        validator = Draft202012Validator(schema, format_checker=textchecks.FORMAT_CHECKER)
        _VALIDATORS[key] = validator
    return validator


def _schema_violation(schema: dict[str, Any], instance: Any) -> str | None:
    """Why `instance` fails `schema` (draft 2020-12, `format` enforced), or None."""
    validator = _validator(schema)
    problem = _bounded(
        "json-schema validation",
        lambda: jsonschema.exceptions.best_match(validator.iter_errors(instance)),
    )
    if problem is None:
        return None
    where = "/".join(str(p) for p in problem.absolute_path) or "(root)"
    return f"schema violation at {where}: {problem.message}"


@assertion_type(
    "contains-json",
    "the output holds a JSON object or array (valid against `value` if given)",
    _schema_value,
)
async def _contains_json(a: Assertion, ctx: AssertionContext) -> Outcome:
    found = _bounded("contains-json", lambda: list(textchecks.json_values_in(ctx.output)))
    if not found:
        return False, 0.0, "output holds no JSON object or array"
    if a.value is None:
        return True, 1.0, f"output holds {len(found)} JSON value(s)"
    problems = [_schema_violation(a.value, value) for value in found]
    if None in problems:
        return True, 1.0, "output holds JSON that matches the schema"
    return False, 0.0, f"no JSON in the output matches the schema; first: {problems[0]}"


def _has(data: Any, part: str | int) -> bool:
    if isinstance(part, int):
        return isinstance(data, list) and -len(data) <= part < len(data)
    return isinstance(data, dict) and part in data


def _lookup(data: Any, parts: list[str | int]) -> tuple[bool, Any]:
    for part in parts:
        if _has(data, part):
            data = data[part]
        else:
            return False, None
    return True, data


@assertion_type(
    "json-path", "a field of the JSON output equals / contains a value", _json_path_value
)
async def _json_path(a: Assertion, ctx: AssertionContext) -> Outcome:
    parsed, error = ctx.output_json()
    if error is not None:
        return False, 0.0, error
    ok, reason = json_path_check(parsed, a.value)
    return ok, float(ok), reason


def json_path_check(data: Any, check: Mapping[str, Any]) -> tuple[bool, str]:
    """(passed, reason) of one `{path, equals | contains | exists}` check on parsed JSON."""
    path = check["path"]
    found, value = _lookup(data, parse_json_path(path) or [])
    if "exists" in check or ("equals" not in check and "contains" not in check):
        want = check.get("exists", True)
        return found == bool(want), f"{path} {'exists' if found else 'is absent'}"
    if not found:
        return False, f"{path} is absent"
    if "equals" in check:
        ok = textchecks.json_equal(value, check["equals"])
        if ok:
            return True, f"{path} equals {check['equals']!r}"
        return False, f"{path} is {_short(as_text(value))!r}, expected {check['equals']!r}"
    needle = check["contains"]
    if isinstance(value, list):
        ok = any(textchecks.json_equal(item, needle) for item in value)
    else:
        ok = isinstance(value, str) and isinstance(needle, str) and needle in value
    return ok, f"{path} {'contains' if ok else 'does not contain'} {needle!r}"
