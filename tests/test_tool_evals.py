"""Evals of tool-calling prompts against the local server with the official openai client:
results, cache and recordings keep the calls; the tool assertion types judge them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import openai
import pytest

from promptyard.evals.runner import evaluate_snapshot
from promptyard.repo.workspace import Workspace
from support.evals import EVAL_CONFIG, echo_prompt, jsonl, options
from support.openai_server import OpenAIServer
from support.repo import PromptRepo
from support.tools import CANCEL, lookup_tool

LOOKUP = lookup_tool(
    "Look up an order by id.", strict=False, order_id={"type": "string", "pattern": "^A[0-9]+$"}
)


def tool_prompt(asserts: list[dict[str, Any]], **fields: Any) -> str:
    return echo_prompt(asserts=asserts, threshold=0.0, tools=[LOOKUP, CANCEL], **fields)


def call(name: str, arguments: str) -> str:
    return f"Where is my order? [[tool:{name} {arguments}]]"


def run_rows(repo: PromptRepo, server: OpenAIServer | None) -> dict[str, dict[str, Any]]:
    report = evaluate_snapshot(
        Workspace(repo.root).snapshot(), (), options=options(repo.root, server)
    )
    (run,) = report.runs
    lines = run.results_path.read_text().splitlines()
    return {row["case_id"]: row for row in map(json.loads, lines)}


def verdicts(row: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(a["type"], a["pass"]) for a in row["assertions"]]


@pytest.fixture
def project(tmp_path: Path) -> PromptRepo:
    return PromptRepo.create(tmp_path / "repo", EVAL_CONFIG)


def test_tool_calls_are_judged_kept_in_results_and_replayed_offline(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    asserts = [
        {"type": "tool-call", "value": {"name": "lookup_order", "contains": {"order_id": "A7"}}},
        {"type": "tool-args-valid"},
        {"type": "not-tool-call", "value": "cancel_order"},
        {"type": "finish-reason", "value": "tool_calls", "metric": "called"},
    ]
    project.write("prompts/echo.yaml", tool_prompt(asserts))
    cases = [
        {"id": "right", "vars": {"text": call("lookup_order", '{"order_id": "A7"}')}},
        {"id": "bad-args", "vars": {"text": call("lookup_order", '{"order_id": 7}')}},
        {"id": "not-json", "vars": {"text": call("lookup_order", "{order_id: A7")}},
        {"id": "wrong-tool", "vars": {"text": call("cancel_order", '{"order_id": "A7"}')}},
        {"id": "no-call", "vars": {"text": "Hello"}},
    ]
    project.write("golden/echo.jsonl", jsonl(cases))
    rows = run_rows(project, openai_server)

    right = rows["right"]
    assert right["pass"] and right["finish_reason"] == "tool_calls" and right["output"] == ""
    [made] = right["tool_calls"]
    assert (made["name"], made["arguments"], made["raw_arguments"]) == (
        "lookup_order",
        {"order_id": "A7"},
        '{"order_id": "A7"}',
    )
    # the request carried the prompt's tools
    sent = openai_server.chat_requests()[0].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["lookup_order", "cancel_order"]

    bad = {a["type"]: a for a in rows["bad-args"]["assertions"]}
    assert not bad["tool-call"]["pass"] and not bad["tool-args-valid"]["pass"]
    assert "order_id" in bad["tool-args-valid"]["reason"]
    not_json = {a["type"]: a for a in rows["not-json"]["assertions"]}
    assert "arguments are not JSON" in not_json["tool-call"]["reason"]
    assert rows["not-json"]["tool_calls"][0]["arguments"] is None
    assert rows["not-json"]["error"] is None  # a failed assertion, not a crashed case
    assert verdicts(rows["wrong-tool"]) == [
        ("tool-call", False),
        ("tool-args-valid", True),
        ("not-tool-call", False),
        ("finish-reason", True),
    ]
    no_call = {a["type"]: a for a in rows["no-call"]["assertions"]}
    assert "no call to lookup_order (calls: no tool call)" in no_call["tool-call"]["reason"]
    assert rows["no-call"]["finish_reason"] == "stop" and "tool_calls" not in rows["no-call"]

    # the recordings replay the calls offline: same verdicts without the server
    recorded = evaluate_snapshot(
        Workspace(project.root).snapshot(),
        (),
        options=options(project.root, openai_server, mode="record"),
    )
    assert recorded.runs
    shutil.rmtree(project.root / ".promptyard")
    offline = run_rows(project, None)
    assert {k: verdicts(v) for k, v in offline.items()} == {k: verdicts(v) for k, v in rows.items()}
    assert offline["right"]["tool_calls"] == right["tool_calls"]


def test_tool_choice_required_and_expected_calls_f1(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write(
        "prompts/echo.yaml",
        tool_prompt([{"type": "tool-calls-f1", "threshold": 0.6}], tool_choice="required"),
    )
    both = "x [[tool:lookup_order {}]] [[tool:cancel_order {}]]"
    cases = [
        {"id": "forced", "vars": {"text": "hi"}, "expected_tool_calls": [{"name": "lookup_order"}]},
        {"id": "extra", "vars": {"text": both}, "expected_tool_calls": [{"name": "lookup_order"}]},
        {
            "id": "args-differ",
            "vars": {"text": call("lookup_order", '{"order_id": "A1"}')},
            "expected_tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "A2"}}],
        },
    ]
    project.write("golden/echo.jsonl", jsonl(cases))
    rows = run_rows(project, openai_server)
    assert openai_server.chat_requests()[0].body["tool_choice"] == "required"
    scores = {k: (row["assertions"][0]["score"], row["pass"]) for k, row in rows.items()}
    assert scores == {
        "forced": (1.0, True),
        "extra": (pytest.approx(2 / 3), True),
        "args-differ": (0.0, False),
    }


def test_refusals_and_strict_output_reach_the_server(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    schema = {
        "type": "object",
        "properties": {"reply": {"type": "string"}},
        "required": ["reply"],
        "additionalProperties": False,
    }
    project.write(
        "prompts/echo.yaml",
        echo_prompt(
            asserts=[{"type": "refusal"}],
            threshold=0.0,
            output={"format": "json", "strict": True, "schema": schema},
        ),
    )
    cases = [{"id": "no", "vars": {"text": "[[refusal:I can't help with that.]]"}},
             {"id": "yes", "vars": {"text": "hi"}}]  # fmt: skip
    project.write("golden/echo.jsonl", jsonl(cases))
    rows = run_rows(project, openai_server)
    assert rows["no"]["pass"] and rows["no"]["refusal"] == "I can't help with that."
    assert not rows["yes"]["pass"] and json.loads(rows["yes"]["output"]) == {"reply": "hi"}
    sent = openai_server.chat_requests()[0].body["response_format"]
    assert sent == {
        "type": "json_schema",
        "json_schema": {"name": "echo", "schema": schema, "strict": True},
    }


def test_the_server_streams_tool_calls_the_openai_client_can_assemble(
    openai_server: OpenAIServer,
) -> None:
    tools = [{"type": "function", "function": LOOKUP}]
    with openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test") as client:
        stream = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": call("lookup_order", '{"order_id": "A12345"}')}],
            tools=tools,
            stream=True,
        )
        pieces = [c.choices[0] for c in stream if c.choices]
    arguments = "".join(
        d.function.arguments or "" for p in pieces for d in (p.delta.tool_calls or [])
    )
    assert json.loads(arguments) == {"order_id": "A12345"}
    assert pieces[-1].finish_reason == "tool_calls"
