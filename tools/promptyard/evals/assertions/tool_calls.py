"""Tool calls and how the answer ended: tool-call, tool-args-valid, tool-calls-f1,
finish-reason, refusal.
"""

from __future__ import annotations

import json
from typing import Any

from promptyard.evals import textchecks
from promptyard.evals.assertions._base import (
    AssertionContext,
    AssertionFailure,
    Outcome,
    _is_text,
    _no_value,
    _short,
    _string_value,
    as_text,
    assertion_type,
)
from promptyard.evals.assertions.structured import (
    _json_path_value,
    _schema_value,
    _schema_violation,
    json_path_check,
)
from promptyard.evals.providers.base import ToolCall
from promptyard.spec import Assertion

_CALL_CHECKS = ("arguments", "contains", "schema", "json-path")


def _tool_call_value(a: Assertion) -> str | None:
    if _is_text(a.value) and as_text(a.value):
        return None
    if not isinstance(a.value, dict) or not _is_text(a.value.get("name")):
        return "`value` must be a tool name or {name, arguments?, contains?, schema?, json-path?}"
    unknown = sorted(set(a.value) - {"name", *_CALL_CHECKS})
    if unknown:
        return f"unknown key(s) {', '.join(unknown)}; use name, {', '.join(_CALL_CHECKS)}"
    if "contains" in a.value and not isinstance(a.value["contains"], dict):
        return "`contains` must be an object: the argument names and values the call must have"
    if "schema" in a.value:
        problem = _schema_value(Assertion(type="json-schema", value=a.value["schema"]))
        if problem:
            return problem.replace("`value`", "`schema`")
    paths = a.value.get("json-path", [])
    for check in paths if isinstance(paths, list) else [paths]:
        problem = _json_path_value(Assertion(type="json-path", value=check))
        if problem:
            return problem.replace("`value`", "each `json-path` check")
    return None


def _call_problem(call: ToolCall, want: dict[str, Any]) -> str | None:
    """Why `call` does not satisfy the argument checks of a `tool-call` value, or None."""
    if call.arguments_error is not None:
        return call.arguments_error
    args = call.arguments
    if "arguments" in want and not textchecks.json_equal(args, want["arguments"]):
        return f"arguments are {_short(json.dumps(args))}, expected {want['arguments']!r}"
    for key, expected in (want.get("contains") or {}).items():
        if not (
            isinstance(args, dict) and key in args and textchecks.json_equal(args[key], expected)
        ):
            return f"argument {key!r} is not {expected!r}"
    if "schema" in want:
        violation = _schema_violation(want["schema"], args)
        if violation:
            return violation
    paths = want.get("json-path", [])
    for check in paths if isinstance(paths, list) else [paths]:
        ok, reason = json_path_check(args, check)
        if not ok:
            return reason
    return None


def _calls_text(calls: tuple[ToolCall, ...]) -> str:
    return ", ".join(f"{c.name}({_short(c.raw_arguments, 60)})" for c in calls) or "no tool call"


@assertion_type(
    "tool-call",
    "the model called the tool `value` (a name, or {name, arguments, contains, schema, "
    "json-path} checks on its arguments)",
    _tool_call_value,
)
async def _tool_call(a: Assertion, ctx: AssertionContext) -> Outcome:
    want: dict[str, Any] = {"name": a.value} if isinstance(a.value, str) else a.value
    calls = [c for c in ctx.tool_calls if c.name == want["name"]]
    if not calls:
        return False, 0.0, f"no call to {want['name']} (calls: {_calls_text(ctx.tool_calls)})"
    problems = [_call_problem(call, want) for call in calls]
    if None in problems:
        return True, 1.0, f"called {want['name']}"
    return False, 0.0, f"{want['name']} was called but {problems[0]}"


@assertion_type(
    "tool-args-valid",
    "every tool call names a declared tool and its arguments are valid against its `parameters`",
    _no_value,
)
async def _tool_args_valid(a: Assertion, ctx: AssertionContext) -> Outcome:
    declared = {tool.name: tool.parameters for tool in ctx.prompt.tools}
    for call in ctx.tool_calls:
        if call.name not in declared:
            return False, 0.0, f"{call.name} is not a declared tool ({', '.join(declared)})"
        problem = call.arguments_error or _schema_violation(declared[call.name], call.arguments)
        if problem:
            return False, 0.0, f"{call.name}: {problem}"
    return True, 1.0, f"{len(ctx.tool_calls)} call(s), all valid"


def _expected_calls_value(a: Assertion) -> str | None:
    if a.value is None:
        return None  # the case's expected_tool_calls
    if not isinstance(a.value, list) or not all(
        isinstance(c, dict) and _is_text(c.get("name")) and set(c) <= {"name", "arguments"}
        for c in a.value
    ):
        return "`value` must be a list of {name, arguments?} (or omitted: expected_tool_calls)"
    return None


def tool_calls_f1(expected: list[dict[str, Any]], calls: tuple[ToolCall, ...]) -> float:
    """F1 of the calls made against the calls expected; an expected call without
    `arguments` matches any call of its name, each call matches at most one."""
    if not expected and not calls:
        return 1.0
    unmatched = list(calls)
    matched = 0
    for want in expected:
        for call in unmatched:
            if call.name == want["name"] and (
                "arguments" not in want or textchecks.json_equal(call.arguments, want["arguments"])
            ):
                unmatched.remove(call)
                matched += 1
                break
    if matched == 0:
        return 0.0
    precision, recall = matched / len(calls), matched / len(expected)
    return 2 * precision * recall / (precision + recall)


@assertion_type(
    "tool-calls-f1",
    "F1 of the tool calls made against `value` (default: the case's expected_tool_calls)",
    _expected_calls_value,
    graded=True,
)
async def _tool_calls_f1(a: Assertion, ctx: AssertionContext) -> Outcome:
    expected = a.value
    if expected is None:
        if ctx.case.expected_tool_calls is None:
            raise AssertionFailure("no `value` and the case has no expected_tool_calls")
        expected = [c.model_dump(exclude_none=True) for c in ctx.case.expected_tool_calls]
    score = tool_calls_f1(expected, ctx.tool_calls)
    return score == 1.0, score, f"F1 {score:.2f}: called {_calls_text(ctx.tool_calls)}"


@assertion_type(
    "finish-reason",
    "the provider's finish reason is `value` (stop, length, tool_calls, content_filter)",
    _string_value,
)
async def _finish_reason(a: Assertion, ctx: AssertionContext) -> Outcome:
    ok = ctx.finish_reason == as_text(a.value)
    return ok, float(ok), f"finish reason is {ctx.finish_reason or 'not reported'}"


@assertion_type("refusal", "the provider reported a refusal (structured outputs)", _no_value)
async def _refusal(a: Assertion, ctx: AssertionContext) -> Outcome:
    ok = ctx.refusal is not None
    return ok, float(ok), f"refused: {_short(ctx.refusal or '')}" if ok else "no refusal"
