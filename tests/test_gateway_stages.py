"""The gateway's chat pipeline stage by stage: each stage called on its own, with a real
registry (a released temporary repository) and, for forwarding, the local OpenAI-compatible
server as the upstream. tests/test_gateway.py drives the whole gateway over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from starlette.requests import Request

from promptyard.assignment import in_canary
from promptyard.registry.client import Registry
from promptyard.serving.gateway import parse_prompt_model
from promptyard.serving.gateway.observe import UNKNOWN, UNMANAGED, GatewayMetrics, Observation
from promptyard.serving.gateway.runtime import Gateway
from promptyard.serving.gateway.stages import (
    MANAGED,
    Exchange,
    PromptRef,
    Refused,
    build_prompt_body,
    forward_upstream,
    read_chat_request,
    read_prompt_request,
    render_prompt,
    resolve_prompt,
    route_plain_model,
    route_prompt_model,
)
from promptyard.spec.gateway import GatewayConfig
from support.openai_server import OpenAIServer
from support.repo import PromptRepo, make_repo

VARS = {"company": "Acme", "ticket": "Where is my order?"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """support-reply 1.0.0 stable and 1.1.0 canary (50%) in production; greeter 1.0.0."""
    repo: PromptRepo = make_repo(tmp_path_factory.mktemp("stages"))
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Howdy")
    repo.commit("support-reply 1.1.0")
    repo.release()
    repo.set_environment(
        "production", {"support-reply": ("1.0.0", "1.1.0", 50), "greeter": "1.0.0"}
    )
    repo.commit("canary")
    with Registry.from_repo(repo.root, ref="main") as registry:
        yield registry


def gateway_for(
    registry: Registry, *, models: dict[str, str] | None = None, url: str = ""
) -> Gateway:
    config = GatewayConfig.model_validate(
        {
            "endpoints": {"vllm": {"url": url or "http://127.0.0.1:9/v1"}},
            "models": {"gpt-4o-mini": "vllm"} if models is None else models,
            "pricing": {"gpt-4o-mini": {"input": 1.0, "output": 2.0}},
        }
    )
    return Gateway(registry, config, environ={})


def request_for(body: bytes, headers: dict[str, str] | None = None) -> Request:
    """A real Starlette request for POST /v1/chat/completions with `body`."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop() if pending else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "root_path": "",
    }
    return Request(scope, receive)


def exchange_for(gateway: Gateway, body: dict[str, Any] | bytes) -> Exchange:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Exchange(request_for(raw), Observation.start(gateway.config.pricing, []))


def run(
    stage: Callable[[Gateway, Exchange], Awaitable[None]], gateway: Gateway, ex: Exchange
) -> None:
    asyncio.run(stage(gateway, ex))


def refusal(
    stage: Callable[..., Awaitable[None]], gateway: Gateway, ex: Exchange
) -> tuple[int, str, dict[str, Any]]:
    """(status, the kind observed, the error body) of a stage that must refuse."""
    with pytest.raises(Refused) as caught:
        run(stage, gateway, ex)
    response = caught.value.response
    return response.status_code, caught.value.kind, json.loads(bytes(response.body))["error"]


def managed_through(gateway: Gateway, body: dict[str, Any], until: Any) -> Exchange:
    """An exchange read and passed through the MANAGED stages before `until`."""
    ex = exchange_for(gateway, body)
    run(read_chat_request, gateway, ex)
    for stage in MANAGED[: MANAGED.index(until)]:
        run(stage, gateway, ex)
    return ex


# --- parse and validate ---------------------------------------------------------------------------


def test_read_chat_request_takes_a_json_object_with_a_model(registry: Registry) -> None:
    gateway = gateway_for(registry)
    ex = exchange_for(gateway, {"model": "gpt-4o-mini", "messages": []})
    run(read_chat_request, gateway, ex)
    assert ex.model == "gpt-4o-mini" and not ex.managed
    assert json.loads(ex.raw) == ex.body == {"model": "gpt-4o-mini", "messages": []}
    status, kind, error = refusal(read_chat_request, gateway, exchange_for(gateway, b"{nope"))
    assert (status, kind, error["type"]) == (400, "invalid_request", "bad_request")
    status, kind, error = refusal(read_chat_request, gateway, exchange_for(gateway, {"model": ""}))
    assert (status, kind) == (422, "invalid_request") and "`model`" in error["message"]


def test_prompt_references_name_a_label_or_a_version() -> None:
    assert parse_prompt_model("prompt:support-reply", "production") == PromptRef(
        "support-reply", "production", None
    )
    assert parse_prompt_model("prompt:a/b@staging", "production") == PromptRef(
        "a/b", "staging", None
    )
    assert parse_prompt_model("prompt:x@1.2.0", "production") == PromptRef("x", None, "1.2.0")
    for bad in ("prompt:", "prompt:x@", "prompt:@staging"):
        with pytest.raises(ValueError, match="is not prompt:<name>"):
            parse_prompt_model(bad, "production")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("variables", ["a"], "`variables` must be a JSON object"),
        ("user", 7, "`user` must be a string"),
        ("messages", [{"content": "no role"}], "`messages` must be a list"),
    ],
)
def test_read_prompt_request_refuses_malformed_fields(
    registry: Registry, field: str, value: Any, message: str
) -> None:
    gateway = gateway_for(registry)
    ex = exchange_for(gateway, {"model": "prompt:greeter", "variables": {}, field: value})
    run(read_chat_request, gateway, ex)
    status, kind, error = refusal(read_prompt_request, gateway, ex)
    assert (status, kind) == (422, "invalid_request") and message in error["message"]


# --- resolve and render -----------------------------------------------------------------------------


def test_resolve_prompt_follows_the_label_and_the_sticky_canary(registry: Registry) -> None:
    gateway = gateway_for(registry)
    for user in ("ann", "bob", "cy", "dee"):
        ex = managed_through(
            gateway, {"model": "prompt:support-reply", "user": user}, until=render_prompt
        )
        assert ex.resolved is not None
        canary = in_canary("production", "support-reply", user, 50)
        assert (ex.resolved.variant, ex.resolved.version) == (
            ("canary", "1.1.0") if canary else ("stable", "1.0.0")
        )
    ex = managed_through(gateway, {"model": "prompt:support-reply@1.1.0"}, until=render_prompt)
    assert ex.resolved is not None and (ex.resolved.variant, ex.resolved.version) == (
        "explicit",
        "1.1.0",
    )


def test_resolve_prompt_refuses_unknown_names_without_naming_them_in_metrics(
    registry: Registry,
) -> None:
    gateway = gateway_for(registry)
    for model in ("prompt:ghost", "prompt:support-reply@nolabel", "prompt:support-reply@9.9.9"):
        ex = managed_through(gateway, {"model": model}, until=resolve_prompt)
        status, kind, _ = refusal(resolve_prompt, gateway, ex)
        assert (status, kind) == (404, "not_found")
        assert ex.seen.prompt == UNKNOWN


def test_render_prompt_renders_and_labels_the_request(registry: Registry) -> None:
    gateway = gateway_for(registry)
    ex = managed_through(
        gateway, {"model": "prompt:greeter", "variables": VARS}, until=render_prompt
    )
    run(render_prompt, gateway, ex)
    assert ex.rendered is not None and ex.rendered.messages[-1]["content"] == VARS["ticket"]
    assert ex.headers == {
        "x-promptyard-prompt": "greeter",
        "x-promptyard-version": "1.0.0",
        "x-promptyard-variant": "stable",
    }
    assert (ex.seen.prompt, ex.seen.version, ex.seen.model) == ("greeter", "1.0.0", "gpt-4o-mini")
    bad = managed_through(
        gateway, {"model": "prompt:greeter", "variables": {}}, until=render_prompt
    )
    status, kind, error = refusal(render_prompt, gateway, bad)
    assert (status, kind) == (422, "invalid_variables") and error["problems"]
    assert (bad.seen.prompt, bad.seen.version) == ("greeter", "")  # no version label yet


# --- route and build -----------------------------------------------------------------------------


def test_route_prompt_model_needs_an_upstream_serving_the_prompts_model(registry: Registry) -> None:
    gateway = gateway_for(registry, models={})
    ex = managed_through(
        gateway, {"model": "prompt:greeter", "variables": VARS}, until=route_prompt_model
    )
    status, kind, error = refusal(route_prompt_model, gateway, ex)
    assert (status, kind) == (502, "no_upstream") and "'gpt-4o-mini'" in error["message"]


def test_build_prompt_body_puts_the_prompt_first_and_its_parameters_over_the_request(
    registry: Registry,
) -> None:
    gateway = gateway_for(registry)
    extra = {"role": "user", "content": "and one more thing"}
    body = {
        "model": "prompt:greeter",
        "variables": VARS,
        "messages": [extra],
        "temperature": 1.9,
        "seed": 3,
        "stream": True,
    }
    ex = managed_through(gateway, body, until=build_prompt_body)
    run(build_prompt_body, gateway, ex)
    sent = json.loads(ex.payload)
    assert sent["model"] == "gpt-4o-mini" and sent["messages"][-1] == extra
    assert sent["temperature"] == 0.2 and sent["seed"] == 3 and "variables" not in sent
    assert sent["stream_options"] == {"include_usage": True} and ex.strip_usage
    asked = {**body, "stream_options": {"include_usage": True}}
    ex = managed_through(gateway, asked, until=build_prompt_body)
    run(build_prompt_body, gateway, ex)
    assert not ex.strip_usage  # the client asked for usage: it keeps the chunk


def test_route_plain_model_forwards_the_body_byte_for_byte(registry: Registry) -> None:
    gateway = gateway_for(registry)
    raw = b'{"model": "gpt-4o-mini",   "messages": [], "x-odd": 1.50}'
    ex = exchange_for(gateway, raw)
    run(read_chat_request, gateway, ex)
    run(route_plain_model, gateway, ex)
    assert ex.payload == raw and ex.upstream is not None and ex.upstream.name == "vllm"
    ex = exchange_for(gateway, {"model": "elsewhere"})
    run(read_chat_request, gateway, ex)
    status, kind, error = refusal(route_plain_model, gateway, ex)
    assert (status, kind, error["type"]) == (404, "no_upstream", "model_not_found")
    assert ex.seen.prompt == UNMANAGED


# --- forward and observe ------------------------------------------------------------------------


def test_forward_upstream_answers_with_the_upstream_and_observes_usage(registry: Registry) -> None:
    with OpenAIServer() as upstream:
        gateway = gateway_for(registry, url=upstream.base_url)
        seen: list[Observation] = []
        gateway.observers.append(seen.append)

        async def forward(body: dict[str, Any]) -> Exchange:
            gateway.open()
            try:
                ex = Exchange(
                    request_for(json.dumps(body).encode()),
                    Observation.start(gateway.config.pricing, gateway.observers),
                )
                for stage in (read_chat_request, route_plain_model, forward_upstream):
                    await stage(gateway, ex)
                return ex
            finally:
                await gateway.close()

        ex = asyncio.run(
            forward({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a b"}]})
        )
        assert ex.response is not None and ex.response.status_code == 200
        assert ex.response.headers["x-promptyard-upstream"] == "vllm"
        assert json.loads(bytes(ex.response.body))["choices"][0]["message"]["content"] == "a b"
        [observed] = seen
        assert (observed.status, observed.error) == (200, None)
        assert observed.tokens_out == 2 and observed.cost_usd > 0
        failing = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "[[fault:500]]"}],
        }
        ex = asyncio.run(forward(failing))
        assert ex.response is not None and ex.response.status_code == 500
        assert (seen[-1].status, seen[-1].error) == (500, "upstream_500")


def test_an_observation_reaches_each_observer_once_and_the_metrics_count_it() -> None:
    metrics = GatewayMetrics()
    seen: list[Observation] = []
    observation = Observation.start({}, [metrics.observe, seen.append])
    observation.prompt, observation.version, observation.variant = "p", "1.0.0", "stable"
    observation.usage({"prompt_tokens": 5, "completion_tokens": 2})
    observation.usage("garbage")
    observation.finish(200)
    observation.finish(500, "late")  # a second finish is ignored
    assert seen == [observation] and observation.status == 200
    labels = {"prompt": "p", "version": "1.0.0", "variant": "stable"}
    sample = metrics.registry.get_sample_value
    assert sample("promptyard_gateway_requests_total", {**labels, "status": "200"}) == 1
    assert sample("promptyard_gateway_tokens_total", {**labels, "kind": "prompt"}) == 5
    assert sample("promptyard_gateway_tokens_total", {**labels, "kind": "completion"}) == 2
    assert sample("promptyard_gateway_errors_total", {**labels, "kind": "late"}) is None


TOOL = {"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}


def test_build_prompt_body_injects_the_prompts_tools_and_refuses_a_clients_own(
    registry: Registry,
) -> None:
    gateway = gateway_for(registry)
    body = {"model": "prompt:greeter", "variables": VARS, "messages": []}
    ex = managed_through(gateway, body, until=build_prompt_body)
    assert ex.rendered is not None
    strict = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strict": True}}
    ex.rendered = dataclasses.replace(
        ex.rendered, tools=[TOOL], tool_choice="required", response_format=strict
    )
    run(build_prompt_body, gateway, ex)
    sent = json.loads(ex.payload)
    assert (sent["tools"], sent["tool_choice"], sent["response_format"]) == (
        [TOOL],
        "required",
        strict,
    )

    own = {**TOOL, "function": {**TOOL["function"], "name": "mine"}}
    ex = managed_through(gateway, {**body, "tools": [own]}, until=build_prompt_body)
    status, kind, error = refusal(build_prompt_body, gateway, ex)
    assert (status, kind) == (422, "client_tools_refused")
    assert "allow_client_tools" in error["message"]

    ex = managed_through(gateway, {**body, "tools": [own]}, until=build_prompt_body)
    assert ex.rendered is not None
    ex.rendered = dataclasses.replace(ex.rendered, tools=[TOOL], allow_client_tools=True)
    run(build_prompt_body, gateway, ex)
    assert [t["function"]["name"] for t in json.loads(ex.payload)["tools"]] == [
        "lookup_order",
        "mine",
    ]
