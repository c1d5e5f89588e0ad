"""The tool assertion types, row by row on real AssertionContexts (the README's rules)."""

from __future__ import annotations

from typing import Any

import pytest

from promptyard.evals.assertions import assertion_problem
from promptyard.evals.providers import ToolCall
from promptyard.spec import Assertion, PromptSpec
from support.assertions import check

PROMPT = PromptSpec.model_validate(
    {
        "name": "agent",
        "version": "1.0.0",
        "model": {"name": "m"},
        "messages": [{"role": "user", "content": "x"}],
        "tools": [
            {
                "name": "lookup_order",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}, "items": {"type": "array"}},
                    "required": ["order_id"],
                },
            }
        ],
    }
)
LOOKUP = ToolCall("lookup_order", '{"order_id": "A7", "items": ["pen", "ink"]}')
OTHER = ToolCall("lookup_order", '{"order_id": "B1"}')
CANCEL = ToolCall("cancel_order", '{"order_id": "A7"}')
BROKEN = ToolCall("lookup_order", '{"order_id": "A7"')
NUMBER = ToolCall("lookup_order", '{"order_id": 7}')


def A(type_: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"type": type_, **({} if value is None else {"value": value}), **extra}


ROWS: list[tuple[tuple[ToolCall, ...], dict[str, Any], bool, float, str]] = [
    ((LOOKUP,), A("tool-call", "lookup_order"), True, 1.0, "called lookup_order"),
    ((), A("tool-call", "lookup_order"), False, 0.0, "no call to lookup_order"),
    ((CANCEL,), A("not-tool-call", "lookup_order"), True, 1.0, "not: no call"),
    ((LOOKUP,), A("tool-call", {"name": "lookup_order", "arguments": {"order_id": "A7"}}), False, 0.0, "arguments are"),
    ((OTHER, LOOKUP), A("tool-call", {"name": "lookup_order", "contains": {"order_id": "A7"}}), True, 1.0, "called"),
    ((OTHER,), A("tool-call", {"name": "lookup_order", "contains": {"order_id": "A7"}}), False, 0.0, "'order_id' is not 'A7'"),
    ((LOOKUP,), A("tool-call", {"name": "lookup_order", "schema": {"required": ["items"]}}), True, 1.0, "called"),
    ((OTHER,), A("tool-call", {"name": "lookup_order", "schema": {"required": ["items"]}}), False, 0.0, "schema violation"),
    ((LOOKUP,), A("tool-call", {"name": "lookup_order", "json-path": {"path": "$.items", "contains": "ink"}}), True, 1.0, "called"),
    ((LOOKUP,), A("tool-call", {"name": "lookup_order", "json-path": [{"path": "$.items[0]", "equals": "ink"}]}), False, 0.0, "$.items[0] is 'pen'"),
    ((BROKEN,), A("tool-call", {"name": "lookup_order", "contains": {"order_id": "A7"}}), False, 0.0, "arguments are not JSON"),
    ((LOOKUP, OTHER), A("tool-args-valid"), True, 1.0, "2 call(s), all valid"),
    ((), A("tool-args-valid"), True, 1.0, "0 call(s)"),
    ((NUMBER,), A("tool-args-valid"), False, 0.0, "lookup_order: schema violation at order_id"),
    ((BROKEN,), A("tool-args-valid"), False, 0.0, "arguments are not JSON"),
    ((CANCEL,), A("tool-args-valid"), False, 0.0, "cancel_order is not a declared tool"),
    ((LOOKUP,), A("tool-calls-f1", [{"name": "lookup_order"}]), True, 1.0, "F1 1.00"),
    ((LOOKUP, CANCEL), A("tool-calls-f1", [{"name": "lookup_order"}]), False, 2 / 3, "F1 0.67"),
    ((LOOKUP, CANCEL), A("tool-calls-f1", [{"name": "lookup_order"}], threshold=0.6), True, 2 / 3, "min 0.6"),
    ((OTHER,), A("tool-calls-f1", [{"name": "lookup_order", "arguments": {"order_id": "A7"}}]), False, 0.0, "F1 0.00"),
    ((), A("tool-calls-f1", []), True, 1.0, "no tool call"),
    ((LOOKUP,), A("not-tool-calls-f1", [{"name": "cancel_order"}]), True, 1.0, "not: F1 0.00"),
]  # fmt: skip


@pytest.mark.parametrize(("calls", "spec", "passed", "score", "reason"), ROWS)
def test_tool_rows(
    calls: tuple[ToolCall, ...], spec: dict[str, Any], passed: bool, score: float, reason: str
) -> None:
    assert assertion_problem(Assertion.model_validate(spec)) is None
    got = check(spec, "", tool_calls=calls, prompt=PROMPT)
    assert got[:2] == (passed, pytest.approx(score)), got
    assert reason in got[2]


def test_expected_tool_calls_come_from_the_case() -> None:
    case = {"id": "c", "expected_tool_calls": [{"name": "lookup_order"}, {"name": "cancel_order"}]}
    passed, score, _ = check(A("tool-calls-f1"), "", case=case, tool_calls=(LOOKUP,), prompt=PROMPT)
    assert (passed, score) == (False, pytest.approx(2 / 3))
    passed, score, reason = check(A("tool-calls-f1"), "", tool_calls=(LOOKUP,), prompt=PROMPT)
    assert not passed and "no `value` and the case has no expected_tool_calls" in reason


def test_finish_reason_and_refusal() -> None:
    assert check(A("finish-reason", "length"), "cut", finish_reason="length")[:2] == (True, 1.0)
    assert check(A("finish-reason", "stop"), "x", finish_reason="length")[2] == (
        "finish reason is length"
    )
    assert check(A("refusal"), "", refusal="I can't.")[:2] == (True, 1.0)
    assert check(A("not-refusal"), "fine")[:2] == (True, 1.0)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (A("tool-call"), "must be a tool name"),
        (A("tool-call", {"name": "x", "args": {}}), "unknown key(s) args"),
        (A("tool-call", {"name": "x", "contains": 3}), "`contains` must be an object"),
        (A("tool-call", {"name": "x", "schema": {"type": 5}}), "`schema` is not a valid JSON"),
        (A("tool-call", {"name": "x", "json-path": {"equals": 1}}), "json-path"),
        (A("tool-calls-f1", [{"tool": "x"}]), "list of {name, arguments?}"),
        (A("finish-reason"), "`value`"),
    ],
)
def test_bad_values_are_lint_errors(spec: dict[str, Any], problem: str) -> None:
    found = assertion_problem(Assertion.model_validate(spec))
    assert found is not None and found[0] == "A002" and problem in found[1], found
