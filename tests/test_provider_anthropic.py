"""Provider type `anthropic`: the official SDK against the local Messages API server."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from promptyard.evals.providers import ChatRequest, Completion, ProviderError, create_provider
from promptyard.evals.providers.runtime import ProviderRuntime, RetryPolicy
from promptyard.spec import ProviderConfig
from support.anthropic_server import AnthropicServer
from support.clock import VirtualTime
from support.evals import echo_prompt, eval_rows, jsonl
from support.repo import PromptRepo

CONFIG = """\
providers:
  default:
    type: anthropic
    max_concurrency: 4
    timeout_s: 5
    max_retries: 3
pricing:
  claude-sonnet-4-5: {input: 3.0, output: 15.0}
"""
LOOKUP = {
    "name": "lookup_order",
    "description": "Look up an order by id.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
}


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer(retry_after_s=0.2) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path) -> PromptRepo:
    return PromptRepo.create(tmp_path / "repo", CONFIG)


def env(server: AnthropicServer | None) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": "sk-test"} if server else {}


def claude_prompt(asserts: list[dict[str, Any]], **fields: Any) -> str:
    fields.setdefault("messages", [
        {"role": "system", "content": "You help with orders."},
        {"role": "user", "content": "{{ text }}"},
    ])  # fmt: skip
    return echo_prompt(
        asserts=asserts,
        threshold=0.0,
        model={
            "provider": "default",
            "name": "claude-sonnet-4-5",
            "parameters": {"max_tokens": 50},
        },
        **fields,
    )


def run_rows(repo: PromptRepo, server: Any, **kwargs: Any) -> dict[str, Any]:
    return eval_rows(repo.root, env(server), **kwargs)


def test_an_eval_on_claude_maps_system_tools_usage_and_cost_then_replays_offline(
    project: PromptRepo, server: AnthropicServer
) -> None:
    asserts = [{"type": "tool-call", "value": "lookup_order", "metric": "called"}]
    project.write("prompts/echo.yaml", claude_prompt(asserts, tools=[LOOKUP]))
    cases = [
        {"id": "call", "vars": {"text": 'Where? [[tool:lookup_order {"order_id": "A7"}]]'}},
        {"id": "text", "vars": {"text": "hello there friend"}},
        {"id": "long", "vars": {"text": " ".join(["word"] * 60)}},
    ]
    project.write("golden/echo.jsonl", jsonl(cases))
    rows = run_rows(project, server)

    call = rows["call"]
    assert call["pass"] and call["finish_reason"] == "tool_calls" and call["output"] == ""
    [made] = call["tool_calls"]
    assert (made["name"], made["arguments"]) == ("lookup_order", {"order_id": "A7"})
    assert made["id"].startswith("toolu_")
    text = rows["text"]
    assert (text["output"], text["finish_reason"], text["pass"]) == (
        "hello there friend",
        "stop",
        False,
    )
    # usage from the answer, priced from the table: (in * 3 + out * 15) / 1e6
    assert (text["tokens_in"], text["tokens_out"]) == (7, 3)
    assert text["cost_usd"] == pytest.approx((7 * 3.0 + 3 * 15.0) / 1e6)
    assert rows["long"]["finish_reason"] == "length"  # max_tokens 50 < 60 words
    assert len(rows["long"]["output"].split()) == 50

    sent = server.message_requests()[0]
    headers = {k.lower(): v for k, v in sent.headers.items()}
    # the key, as x-api-key or (newer SDKs) a bearer token, and the API version
    key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
    assert key == "sk-test" and headers["anthropic-version"]
    assert sent.body["system"] == "You help with orders."
    assert [m["role"] for m in sent.body["messages"]] == ["user"]
    assert sent.body["max_tokens"] == 50
    assert sent.body["tools"] == [
        {
            "name": "lookup_order",
            "input_schema": LOOKUP["parameters"],
            "description": "Look up an order by id.",
        }
    ]
    assert sent.body["tool_choice"] == {"type": "auto"}

    # recorded, then replayed with no server: the same answers
    run_rows(project, server, mode="record")
    shutil.rmtree(project.root / ".promptyard")
    offline = run_rows(project, None)
    for case_id, row in rows.items():
        kept = ("output", "tool_calls", "finish_reason", "tokens_in", "tokens_out", "cost_usd")
        assert {k: offline[case_id].get(k) for k in kept} == {k: row.get(k) for k in kept}


def test_strict_output_is_asked_for_as_a_forced_tool_and_comes_back_as_the_text(
    project: PromptRepo, server: AnthropicServer
) -> None:
    schema = {
        "type": "object",
        "properties": {"reply": {"type": "string"}},
        "required": ["reply"],
        "additionalProperties": False,
    }
    prompt = claude_prompt(
        [{"type": "is-json"}],
        output={"format": "json", "schema": schema, "strict": True},
    )
    project.write("prompts/echo.yaml", prompt)
    project.write("golden/echo.jsonl", jsonl([{"id": "c0", "vars": {"text": "hi"}}]))
    row = run_rows(project, server)["c0"]
    assert json.loads(row["output"]) == {"reply": "hi"}
    assert row["pass"] and row["finish_reason"] == "stop" and "tool_calls" not in row
    sent = server.message_requests()[0].body
    assert sent["tool_choice"] == {"type": "tool", "name": "structured_output"}
    assert sent["tools"][0]["input_schema"] == schema


def test_overloaded_and_rate_limited_calls_are_retried_after_the_wait_asked_for(
    project: PromptRepo, server: AnthropicServer
) -> None:
    project.write("prompts/echo.yaml", claude_prompt([{"type": "contains", "value": "ok"}]))
    cases = [
        {"id": "overloaded", "vars": {"text": "ok one [[fault:529*2]]"}},
        {"id": "limited", "vars": {"text": "ok two [[fault:429*1]]"}},
    ]
    project.write("golden/echo.jsonl", jsonl(cases))
    rows = run_rows(project, server)
    assert rows["overloaded"]["pass"] and rows["limited"]["pass"]
    by_text: dict[str, list[Any]] = {}
    for request in server.message_requests():
        by_text.setdefault(request.body["messages"][0]["content"], []).append(request)
    overloaded = by_text["ok one [[fault:529*2]]"]
    assert [r.status for r in overloaded] == [529, 529, 200]
    assert [r.status for r in by_text["ok two [[fault:429*1]]"]] == [429, 200]


def test_each_retry_waits_the_retry_after_the_server_sent(server: AnthropicServer) -> None:
    """Waits are counted, not timed: the runtime runs on a virtual clock."""
    time = VirtualTime()
    provider = create_provider("claude", ProviderConfig(type="anthropic"), env(server))
    # a backoff far from the server's retry-after (0.2 s): the waits show which was used
    policy = RetryPolicy(backoff_base_s=0.01, jitter=lambda: 1.0)
    runtime = ProviderRuntime("claude", provider, policy=policy, now=time.now, sleep=time.sleep)

    async def once() -> Completion:
        try:
            return await runtime.complete(ChatRequest("m", [user("ok [[fault:529*2]]")]))
        finally:
            await provider.aclose()

    assert "ok" in asyncio.run(once()).text
    assert [r.status for r in server.message_requests()] == [529, 529, 200]
    assert time.sleeps == [0.2, 0.2]


def test_an_invalid_request_is_not_retried_and_ends_only_its_case(
    project: PromptRepo, server: AnthropicServer
) -> None:
    project.write("prompts/echo.yaml", claude_prompt([{"type": "contains", "value": "fine"}]))
    cases = [
        {"id": "bad", "vars": {"text": "nope [[fault:400]]"}},
        {"id": "good", "vars": {"text": "fine"}},
    ]
    project.write("golden/echo.jsonl", jsonl(cases))
    rows = run_rows(project, server)
    assert rows["good"]["pass"]
    bad = rows["bad"]
    assert bad["error_kind"] == "request" and "invalid_request_error" in bad["error"]
    assert [r.status for r in server.message_requests() if "nope" in json.dumps(r.body)] == [400]


def test_a_conversation_with_images_tool_calls_and_results_is_sent_as_the_api_wants(
    server: AnthropicServer,
) -> None:
    """Conversation inputs and content parts (OpenAI-shaped, as rendered) map to Messages
    API blocks; the server refuses what the real API refuses (roles not alternating, a
    tool_result without its tool_use), so an answer means the mapping is valid."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Rule one."},
        {"role": "developer", "content": "Rule two."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order_id": "A7"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "shipped"},
        {"role": "user", "content": "So where is it?"},
    ]
    completion = complete(server, ChatRequest("claude-sonnet-4-5", messages))
    assert completion.text == "shipped So where is it?"  # the echo of the last user turn
    body = server.message_requests()[0].body
    assert body["system"] == "Rule one.\n\nRule two."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    first, call, answer = body["messages"]
    assert first["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
    }
    assert first["content"][2]["source"] == {"type": "url", "url": "https://example.com/cat.jpg"}
    assert call["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "lookup_order", "input": {"order_id": "A7"}}
    ]
    # the tool result and the next user turn merge into one user turn
    assert answer["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "shipped"},
        {"type": "text", "text": "So where is it?"},
    ]


def test_tool_choice_maps_both_ways_and_a_refusal_is_reported(server: AnthropicServer) -> None:
    tools = [{"type": "function", "function": LOOKUP}]
    required = complete(server, ChatRequest("m", [user("Hi")], tools=tools, tool_choice="required"))
    assert [c.name for c in required.tool_calls] == ["lookup_order"]
    named = {"type": "function", "function": {"name": "lookup_order"}}
    complete(server, ChatRequest("m", [user("Hi")], tools=tools, tool_choice=named))
    none = complete(
        server, ChatRequest("m", [user("Hi [[tool:x {}]]")], tools=tools, tool_choice="none")
    )
    assert none.tool_calls == () and none.finish_reason == "stop"
    sent = [r.body["tool_choice"] for r in server.message_requests()]
    assert sent == [{"type": "any"}, {"type": "tool", "name": "lookup_order"}, {"type": "none"}]

    refused = complete(server, ChatRequest("m", [user("Bomb? [[refusal:I can't help with that]]")]))
    assert refused.finish_reason == "content_filter"
    assert (refused.text, refused.refusal) == ("", "I can't help with that")


def test_errors_map_to_kinds_the_runner_retries_or_not(server: AnthropicServer) -> None:
    kinds = {}
    for fault in ("529", "429", "500", "400", "401"):
        with pytest.raises(ProviderError) as caught:
            complete(server, ChatRequest("m", [user(f"x [[fault:{fault}]]")]))
        kinds[fault] = (caught.value.kind, caught.value.retryable, caught.value.retry_after)
    assert kinds == {
        "529": ("server", True, 0.2),
        "429": ("rate_limit", True, 0.2),
        "500": ("server", True, 0.2),
        "400": ("request", False, None),
        "401": ("auth", False, None),
    }
    with pytest.raises(ProviderError) as caught:
        complete(server, ChatRequest("m", [user("x [[fault:malformed]]")]))
    assert caught.value.kind == "malformed"


def test_the_sdk_itself_reads_the_local_server_as_the_messages_api(server: AnthropicServer) -> None:
    """The test server is only worth what the real SDK makes of it: its typed models parse it."""
    client = anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0)
    message = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=20,
        messages=[{"role": "user", "content": 'hi [[tool:lookup_order {"order_id": "A1"}]]'}],
        tools=[{"name": "lookup_order", "input_schema": LOOKUP["parameters"]}],
    )
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use" and message.content[0].input == {"order_id": "A1"}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="m", max_tokens=5, messages=[{"role": "system", "content": "x"}]
        )  # type: ignore[list-item]
    assert "system" in str(caught.value)
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        client.messages.create(model="m", max_tokens=5, messages=[user("x [[fault:529]]")])  # type: ignore[list-item]
    assert overloaded.value.status_code == 529


def test_missing_key_or_endpoint_is_exit_2_naming_the_variable(project: PromptRepo) -> None:
    project.write("prompts/echo.yaml", claude_prompt([{"type": "contains", "value": "x"}]))
    project.write("golden/echo.jsonl", jsonl([{"id": "c0", "vars": {"text": "x"}}]))
    recorded = project.run("eval", "--record")
    assert recorded.exit_code == 2, recorded.describe()
    assert "ANTHROPIC_API_KEY" in recorded.stderr and "Traceback" not in recorded.output
    official = project.run("eval", env={"ANTHROPIC_BASE_URL": "https://api.anthropic.com"})
    assert official.exit_code == 2, official.describe()
    assert "set ANTHROPIC_API_KEY" in official.stderr and "Traceback" not in official.output


def test_an_overloaded_provider_after_the_retries_is_exit_3(
    project: PromptRepo, server: AnthropicServer
) -> None:
    server.state.retry_after_s = 0.01
    server.add_fault("529")
    project.write("prompts/echo.yaml", claude_prompt([{"type": "contains", "value": "x"}]))
    project.write("golden/echo.jsonl", jsonl([{"id": "c0", "vars": {"text": "x"}}]))
    result = project.run("eval", env=env(server))
    assert result.exit_code == 3, result.describe()
    assert "overloaded_error" in result.stderr and "Traceback" not in result.output
    assert len(server.message_requests()) == 4  # one attempt and max_retries: 3


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def complete(server: AnthropicServer, request: ChatRequest) -> Completion:
    provider = create_provider("claude", ProviderConfig(type="anthropic"), env(server))

    async def once() -> Completion:
        try:
            return await provider.complete(request, timeout=5)
        finally:
            await provider.aclose()

    return asyncio.run(once())
