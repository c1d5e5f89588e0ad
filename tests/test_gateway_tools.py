"""A managed prompt with tools through the gateway: the official openai client asks, the
local server (the upstream) answers with tool calls, plain and streamed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from promptyard.registry.client import Registry
from promptyard.registry.reconcile import GitSource, Reconciler
from promptyard.registry.service import create_app
from promptyard.serving.gateway import create_gateway_app
from promptyard.spec.gateway import GatewayConfig
from support.openai_server import OpenAIServer
from support.repo import make_repo
from support.servers import ThreadedServer
from support.tools import lookup_tool

LOOKUP = lookup_tool("Look up an order at {{ company }}.")
AGENT = {
    "name": "agent",
    "version": "1.0.0",
    "model": {"provider": "default", "name": "gpt-4o-mini"},
    "inputs": {"company": {"type": "string"}, "ticket": {"type": "string"}},
    "messages": [
        {"role": "system", "content": "You help customers of {{ company }}."},
        {"role": "user", "content": "{{ ticket }}"},
    ],
    "tools": [LOOKUP],
}
VARS = {"company": "Acme", "ticket": 'Where is A7? [[tool:lookup_order {"order_id": "A7"}]]'}


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = make_repo(Path(tmp_path_factory.mktemp("gateway-tools")), environments=False)
    repo.write("prompts/agent.yaml", yaml.safe_dump(AGENT, sort_keys=False))
    repo.set_environment("production", {"agent": "1.0.0"})
    repo.commit("agent")
    repo.release()
    return repo.root


@pytest.fixture(scope="module")
def gateway(released: Path, upstream: OpenAIServer) -> Iterator[str]:
    registry = Registry.from_repo(released, ref="main")
    config = GatewayConfig.model_validate(
        {"endpoints": {"vllm": {"url": upstream.base_url}}, "models": {"gpt-4o-mini": "vllm"}}
    )
    with ThreadedServer(create_gateway_app(registry, config)) as server:
        yield f"{server.url}/v1"
    registry.close()


def test_the_prompts_tools_go_upstream_and_the_calls_come_back(
    gateway: str, upstream: OpenAIServer
) -> None:
    upstream.reset()
    with openai.OpenAI(base_url=gateway, api_key="sk-test", max_retries=0) as client:
        completion = client.chat.completions.create(
            model="prompt:agent", messages=[], extra_body={"variables": VARS}
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        [made] = choice.message.tool_calls or []
        assert made.function.name == "lookup_order"
        assert json.loads(made.function.arguments) == {"order_id": "A7"}
        [sent] = upstream.chat_requests()
        assert sent.body["tools"][0]["function"]["description"] == "Look up an order at Acme."
        assert sent.body["tools"][0]["function"]["strict"] is True

        stream = client.chat.completions.create(
            model="prompt:agent", messages=[], stream=True, extra_body={"variables": VARS}
        )
        chunks = [c.choices[0] for c in stream if c.choices]
        deltas = [d for c in chunks for d in (c.delta.tool_calls or [])]
        assert deltas[0].function.name == "lookup_order"
        assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"order_id": "A7"}
        assert chunks[-1].finish_reason == "tool_calls"


def test_a_clients_own_tools_are_refused_for_a_managed_prompt(gateway: str) -> None:
    with (
        openai.OpenAI(base_url=gateway, api_key="sk-test", max_retries=0) as client,
        pytest.raises(openai.UnprocessableEntityError) as refused,
    ):
        client.chat.completions.create(
            model="prompt:agent",
            messages=[],
            tools=[{"type": "function", "function": {"name": "mine", "parameters": {}}}],
            extra_body={"variables": VARS},
        )
    assert "allow_client_tools" in str(refused.value)


def test_post_render_returns_the_tools_and_the_tool_choice(released: Path) -> None:
    reconciler = Reconciler(GitSource(str(released), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as server:
        rendered = httpx.post(
            f"{server.url}/v1/prompts/agent/render", json={"variables": VARS}, timeout=10
        ).json()
    [tool] = rendered["tools"]
    assert tool["function"]["description"] == "Look up an order at Acme."
    assert tool["function"]["parameters"] == LOOKUP["parameters"]
    assert (rendered["tool_choice"], rendered["response_format"]) == ("auto", None)
    assert rendered["allow_client_tools"] is False
