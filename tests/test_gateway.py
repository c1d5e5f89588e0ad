"""The gateway, driven by the official `openai` client over real HTTP, with the local
OpenAI-compatible server as the upstream vLLM."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from promptyard.assignment import in_canary
from promptyard.registry.client import Registry
from promptyard.registry.reconcile import GitSource, Reconciler
from promptyard.registry.service import create_app
from promptyard.serving.gateway import create_gateway_app
from promptyard.spec.gateway import GatewayConfig
from support.openai_server import OpenAIServer
from support.repo import PromptRepo, make_repo
from support.servers import ServeProcess, ThreadedServer, closed_port, wait_until

VARS = {"company": "Acme", "ticket": "Where is my order?"}
CANARY_WEIGHT = 30
PRICING = {"gpt-4o-mini": {"input": 0.15, "output": 0.60}}


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> PromptRepo:
    """support-reply 1.0.0 (stable) and 1.1.0 (canary, 30%) in production; greeter 1.0.0."""
    repo = make_repo(tmp_path_factory.mktemp("gateway"))
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Howdy")
    repo.commit("support-reply 1.1.0")
    repo.release()
    repo.set_environment(
        "production",
        {"support-reply": ("1.0.0", "1.1.0", CANARY_WEIGHT), "greeter": "1.0.0"},
    )
    repo.commit("canary 1.1.0 at 30%")
    return repo


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[OpenAIServer, OpenAIServer]]:
    """(the vLLM serving gpt-4o-mini, the default upstream)."""
    with OpenAIServer() as vllm, OpenAIServer() as default:
        yield vllm, default


def config_for(vllm: str, default: str | None = None) -> GatewayConfig:
    endpoints = {"llama-8b": {"url": vllm}}
    if default:
        endpoints["fallback"] = {"url": default}
    return GatewayConfig.model_validate(
        {
            "endpoints": endpoints,
            "models": {"gpt-4o-mini": "llama-8b", "llama-3.1-8b-instruct": "llama-8b"},
            "default_upstream": "fallback" if default else None,
            "pricing": PRICING,
        }
    )


@pytest.fixture(scope="module")
def gateway(
    released: PromptRepo, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> Iterator[ThreadedServer]:
    vllm, default = upstreams
    registry = Registry.from_repo(released.root, ref="main")
    app = create_gateway_app(registry, config_for(vllm.base_url, default.base_url))
    with ThreadedServer(app) as server:
        yield server
    registry.close()


@pytest.fixture
def client(
    gateway: ThreadedServer, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> Iterator[openai.OpenAI]:
    for server in upstreams:
        server.reset()
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-test", max_retries=0) as c:
        yield c


def managed(client: openai.OpenAI, **kwargs: Any) -> Any:
    """A raw-response chat call for support-reply (override anything with kwargs)."""
    args: dict[str, Any] = {
        "model": "prompt:support-reply",
        "messages": [],
        "extra_body": {"variables": VARS},
    }
    args.update(kwargs)
    return client.chat.completions.with_raw_response.create(**args)


# --- managed prompts ------------------------------------------------------------------------------


def test_a_managed_prompt_is_rendered_and_sent_with_its_parameters(
    client: openai.OpenAI, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    vllm, default = upstreams
    raw = managed(client, temperature=1.5, user="no-canary-user", seed=7)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Where is my order?"
    variant = (
        "canary" if in_canary("production", "support-reply", "no-canary-user", 30) else "stable"
    )
    assert raw.headers["x-promptyard-prompt"] == "support-reply"
    assert raw.headers["x-promptyard-variant"] == variant
    assert raw.headers["x-promptyard-version"] == ("1.1.0" if variant == "canary" else "1.0.0")
    assert raw.headers["x-promptyard-upstream"] == "llama-8b"
    [request] = vllm.chat_requests()
    assert default.chat_requests() == []
    body = request.body
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"][0]["role"] == "system"
    greeting = "Howdy" if variant == "canary" else "Hello"
    assert body["messages"][0]["content"].startswith(f"{greeting} from Acme.")
    assert body["messages"][1] == {"role": "user", "content": "Where is my order?"}
    # The prompt's parameters win; other request fields pass through; variables do not.
    assert (body["temperature"], body["max_tokens"]) == (0.2, 400)
    assert (body["user"], body["seed"]) == ("no-canary-user", 7)
    assert "variables" not in body
    assert completion.usage is not None and completion.usage.completion_tokens == 4


def test_messages_in_the_request_follow_the_prompt(
    client: openai.OpenAI, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    raw = managed(
        client,
        messages=[
            {"role": "assistant", "content": "It ships Monday."},
            {"role": "user", "content": "Thanks, and the refund?"},
        ],
    )
    assert raw.parse().choices[0].message.content == "Thanks, and the refund?"
    roles = [m["role"] for m in upstreams[0].chat_requests()[0].body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


def test_streams_pass_through_and_usage_is_asked_for_but_not_leaked(
    client: openai.OpenAI, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    chunks = list(
        client.chat.completions.create(
            model="prompt:support-reply",
            messages=[],
            stream=True,
            extra_body={"variables": {**VARS, "ticket": "one two three four"}},
        )
    )
    assert all(chunk.choices for chunk in chunks)  # no usage-only chunk the client did not ask
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "one two three four"
    assert chunks[-1].choices[0].finish_reason == "stop"
    sent = upstreams[0].chat_requests()[0].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    # A client that asks for usage gets it.
    chunks = list(
        client.chat.completions.create(
            model="prompt:support-reply",
            messages=[],
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"variables": VARS},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_the_stream_is_relayed_while_the_upstream_is_still_generating(
    released: PromptRepo,
) -> None:
    """The upstream sends one token, then waits until the client has it: a gateway that
    buffered the stream would never deliver it in time."""
    client_has_first = threading.Event()
    finished = threading.Event()

    async def chat(request: Request) -> StreamingResponse:
        import anyio

        async def events() -> Any:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
                payload = {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                return f"data: {json.dumps(payload)}\n\n".encode()

            yield chunk({"role": "assistant", "content": "first"})
            await anyio.to_thread.run_sync(client_has_first.wait, 20)
            yield chunk({"content": " second"}, "stop")
            yield b"data: [DONE]\n\n"
            finished.set()

        return StreamingResponse(events(), media_type="text/event-stream")

    upstream_app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    registry = Registry.from_repo(released.root, ref="main")
    with ThreadedServer(upstream_app) as upstream:
        app = create_gateway_app(registry, config_for(f"{upstream.url}/v1"))
        with (
            ThreadedServer(app) as gateway,
            openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
        ):
            stream = iter(
                client.chat.completions.create(
                    model="prompt:support-reply",
                    messages=[],
                    stream=True,
                    extra_body={"variables": VARS},
                )
            )
            first = next(stream)
            assert first.choices[0].delta.content == "first"
            assert not finished.is_set()  # the upstream is still waiting for us
            client_has_first.set()
            rest = [c.choices[0].delta.content for c in stream]
            assert rest == [" second"]
    registry.close()


def sse_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def test_an_upstream_breaking_off_a_stream_reaches_the_client_as_an_error(
    released: PromptRepo,
) -> None:
    async def chat(request: Request) -> StreamingResponse:
        async def events() -> Any:
            yield sse_chunk({"role": "assistant", "content": "partial"})
            raise RuntimeError("the GPU fell off the bus")  # uvicorn drops the connection

        return StreamingResponse(events(), media_type="text/event-stream")

    upstream_app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    registry = Registry.from_repo(released.root, ref="main")
    with ThreadedServer(upstream_app) as upstream:
        app = create_gateway_app(registry, config_for(f"{upstream.url}/v1"))
        with (
            ThreadedServer(app) as gateway,
            openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
        ):
            stream = client.chat.completions.create(
                model="prompt:support-reply",
                messages=[],
                stream=True,
                extra_body={"variables": VARS},
            )
            received = []
            with pytest.raises(openai.APIError, match="broke off the stream"):
                for chunk in stream:
                    received.append(chunk.choices[0].delta.content)
            assert received == ["partial"]
            found = samples(gateway.url)
            labels = {"prompt": "support-reply", "version": "1.0.0", "variant": "stable"}
            assert (
                value(found, "promptyard_gateway_errors_total", **labels, kind="stream_interrupted")
                == 1
            )
    registry.close()


def test_a_client_leaving_mid_stream_frees_the_upstream(released: PromptRepo) -> None:
    gate = threading.Event()
    written: list[int] = []  # chunks each upstream stream wrote before it ended
    lengths = [1000, 3]  # the first stream would run for 10 s, the next is short

    async def chat(request: Request) -> StreamingResponse:
        import anyio

        length = lengths.pop(0)

        async def events() -> Any:
            count = 0
            try:
                yield sse_chunk({"role": "assistant", "content": "first"})
                await anyio.to_thread.run_sync(gate.wait, 20)
                for _ in range(length):  # until the gateway hangs up
                    yield sse_chunk({"content": " more"})
                    count += 1
                    await anyio.sleep(0.01)
                yield b"data: [DONE]\n\n"
            finally:
                written.append(count)

        return StreamingResponse(events(), media_type="text/event-stream")

    upstream_app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    registry = Registry.from_repo(released.root, ref="main")
    with ThreadedServer(upstream_app) as upstream:
        app = create_gateway_app(registry, config_for(f"{upstream.url}/v1"))
        with ThreadedServer(app) as gateway:
            body = {"model": "prompt:support-reply", "messages": [], "variables": VARS}
            with httpx.stream(
                "POST", f"{gateway.url}/v1/chat/completions", json={**body, "stream": True}
            ) as response:
                assert b"first" in next(response.iter_raw())
            gate.set()  # the client is gone; the upstream goes on writing
            wait_until(lambda: written, 8)
            assert written[0] < 200, "the gateway kept reading a stream nobody wanted"
            labels = {"prompt": "support-reply", "version": "1.0.0", "variant": "stable"}
            wait_until(
                lambda: (
                    value(
                        samples(gateway.url),
                        "promptyard_gateway_errors_total",
                        **labels,
                        kind="client_disconnected",
                    )
                    == 1
                )
            )
            # The gateway is fine afterwards.
            after = httpx.post(f"{gateway.url}/v1/chat/completions", json={**body, "stream": True})
            assert after.status_code == 200 and after.text.count(" more") == 3
    registry.close()


def test_canaries_are_sticky_on_the_user(client: openai.OpenAI) -> None:
    seen: dict[str, str] = {}
    for index in range(40):
        user = f"user-{index}"
        raw = managed(client, user=user)
        expected = in_canary("production", "support-reply", user, CANARY_WEIGHT)
        assert raw.headers["x-promptyard-variant"] == ("canary" if expected else "stable")
        assert raw.headers["x-promptyard-version"] == ("1.1.0" if expected else "1.0.0")
        seen[user] = raw.headers["x-promptyard-version"]
    assert set(seen.values()) == {"1.0.0", "1.1.0"}
    for user, version in list(seen.items())[:10]:  # the same user, the same version
        assert managed(client, user=user).headers["x-promptyard-version"] == version
    # Without a user there is no key: always the stable version.
    assert {managed(client).headers["x-promptyard-version"] for _ in range(5)} == {"1.0.0"}


@pytest.mark.parametrize(
    ("model", "version", "variant"),
    [
        ("prompt:support-reply@1.1.0", "1.1.0", "explicit"),
        ("prompt:support-reply@1.0.0", "1.0.0", "explicit"),
        ("prompt:support-reply@staging", "1.0.0", "stable"),
        ("prompt:support-reply@production", "1.0.0", "stable"),
    ],
)
def test_label_and_version_selectors(
    client: openai.OpenAI, model: str, version: str, variant: str
) -> None:
    raw = managed(client, model=model)
    assert raw.headers["x-promptyard-version"] == version
    assert raw.headers["x-promptyard-variant"] == variant


# --- bad requests ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "variables", "error", "kind", "message"),
    [
        ("prompt:nope", VARS, openai.NotFoundError, "not_found", "no prompt 'nope'"),
        ("prompt:support-reply@9.9.9", VARS, openai.NotFoundError, "not_found", "no version 9.9.9"),
        ("prompt:support-reply@qa", VARS, openai.NotFoundError, "not_found", "no label 'qa'"),
        (
            "prompt:support-reply",
            {"company": "Acme"},
            openai.UnprocessableEntityError,
            "invalid_variables",
            "missing required variable 'ticket'",
        ),
        (
            "prompt:support-reply",
            {**VARS, "ticket": 42},
            openai.UnprocessableEntityError,
            "invalid_variables",
            "variable 'ticket': 42 is not of type 'string'",
        ),
        (
            "prompt:support-reply",
            ["not", "an", "object"],
            openai.UnprocessableEntityError,
            "invalid_request",
            "`variables` must be a JSON object",
        ),
        (
            "prompt:",
            VARS,
            openai.UnprocessableEntityError,
            "invalid_request",
            "is not prompt:<name>",
        ),
    ],
)
def test_bad_requests(
    client: openai.OpenAI,
    upstreams: tuple[OpenAIServer, OpenAIServer],
    model: str,
    variables: Any,
    error: type[Exception],
    kind: str,
    message: str,
) -> None:
    with pytest.raises(error) as caught:  # type: ignore[call-overload]
        client.chat.completions.create(
            model=model, messages=[], extra_body={"variables": variables}
        )
    body = caught.value.body  # type: ignore[attr-defined]
    assert body["type"] == kind and message in body["message"]
    assert upstreams[0].chat_requests() == []  # nothing reached the model


def test_unreadable_bodies(gateway: ThreadedServer) -> None:
    url = f"{gateway.url}/v1/chat/completions"
    response = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "bad_request"
    response = httpx.post(url, json={"messages": []})
    assert response.status_code == 422 and "`model`" in response.json()["error"]["message"]
    response = httpx.post(url, content=b"x" * (17 << 20))
    assert response.status_code == 413


@pytest.mark.parametrize("fault", ["429", "500", "400"])
def test_upstream_errors_keep_their_status(client: openai.OpenAI, fault: str) -> None:
    raw = httpx.post(
        f"{str(client.base_url).rstrip('/')}/chat/completions",
        json={
            "model": "prompt:support-reply",
            "messages": [],
            "variables": {**VARS, "ticket": f"help [[fault:{fault}]]"},
        },
    )
    assert raw.status_code == int(fault)
    assert "injected" in raw.json()["error"]["message"]  # the upstream's own body
    assert raw.headers["x-promptyard-version"] == "1.0.0"
    if fault == "429":
        assert raw.headers["retry-after"] == "1"


def test_an_unreachable_upstream_is_502_naming_it(released: PromptRepo) -> None:
    registry = Registry.from_repo(released.root, ref="main")
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    app = create_gateway_app(registry, config_for(dead))
    with (
        ThreadedServer(app) as gateway,
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
    ):
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model="prompt:support-reply", messages=[], extra_body={"variables": VARS}
            )
        assert caught.value.status_code == 502
        body = caught.value.body
        assert isinstance(body, dict)
        assert body["type"] == "upstream_unreachable" and body["upstream"] == "llama-8b"
        assert f"upstream llama-8b ({dead}) is unreachable: ClientConnectorError" in body["message"]
        # Streams fail the same way before any byte is sent.
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model="prompt:support-reply",
                messages=[],
                stream=True,
                extra_body={"variables": VARS},
            )
        assert caught.value.status_code == 502
        # No default upstream: a plain model is 404.
        with pytest.raises(openai.NotFoundError, match="no upstream serves model 'mystery'"):
            client.chat.completions.create(
                model="mystery", messages=[{"role": "user", "content": "hi"}]
            )
    registry.close()


# --- pass-through ------------------------------------------------------------------------------------


def test_plain_models_pass_through_untouched(
    client: openai.OpenAI, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    vllm, default = upstreams
    raw = client.chat.completions.with_raw_response.create(
        model="some-other-model", messages=[{"role": "user", "content": "hello"}], temperature=1.1
    )
    assert raw.parse().choices[0].message.content == "hello"
    assert raw.headers["x-promptyard-upstream"] == "fallback"
    assert "x-promptyard-prompt" not in raw.headers
    [request] = default.chat_requests()
    assert request.body == {
        "model": "some-other-model",
        "messages": [{"role": "user", "content": "hello"}],
        "temperature": 1.1,
    }
    assert request.headers["authorization"] == "Bearer sk-test"  # the client's key, passed on
    # A served model name goes to its deployment.
    client.chat.completions.create(
        model="llama-3.1-8b-instruct", messages=[{"role": "user", "content": "hi"}]
    )
    assert [r.body["model"] for r in vllm.chat_requests()] == ["llama-3.1-8b-instruct"]
    # Streams of plain models pass through too.
    stream = client.chat.completions.create(
        model="some-other-model", messages=[{"role": "user", "content": "a b c"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "a b c"
    # Other OpenAI endpoints go to the default upstream.
    vectors = client.embeddings.create(model="embed", input=["x y", "z"])
    assert len(vectors.data) == 2


# --- GET /v1/models -----------------------------------------------------------------------------


def test_models_lists_the_prompts_the_routes_and_the_default_upstreams_models(
    client: openai.OpenAI, gateway: ThreadedServer
) -> None:
    raw = client.models.with_raw_response.list()
    models = list(raw.parse())
    assert [m.id for m in models] == [
        "prompt:greeter",
        "prompt:support-reply",
        "gpt-4o-mini",  # the routing table, owned by the endpoint serving it
        "llama-3.1-8b-instruct",
        "local",  # what the default upstream lists
    ]
    owners = {m.id: m.owned_by for m in models if m.id != "local"}
    assert owners == {
        "prompt:greeter": "promptyard",
        "prompt:support-reply": "promptyard",
        "gpt-4o-mini": "llama-8b",
        "llama-3.1-8b-instruct": "llama-8b",
    }
    assert "x-promptyard-unavailable" not in raw.headers
    # OpenAI's list format, to the letter.
    body = httpx.get(f"{gateway.url}/v1/models").json()
    assert body["object"] == "list" and body["data"][-1] == {"id": "local", "object": "model"}
    for entry in body["data"][:-1]:
        assert set(entry) == {"id", "object", "created", "owned_by"} and entry["object"] == "model"
        assert isinstance(entry["created"], int) and entry["created"] > 1_700_000_000
    # What is listed answers.
    for model in ("prompt:greeter", "prompt:support-reply"):
        assert managed(client, model=model).parse().choices[0].message.content == VARS["ticket"]


def test_models_leaves_out_what_does_not_answer_and_says_so(
    released: PromptRepo, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    # A registry server that is down (and no fallback bundle), a default upstream that
    # refuses connections: the routing table is still listed.
    registry = Registry.from_server(f"http://127.0.0.1:{closed_port()}")
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    app = create_gateway_app(
        registry, config_for(upstreams[0].base_url, dead), registry_blocks=True
    )
    with (
        ThreadedServer(app) as gateway,
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
    ):
        raw = client.models.with_raw_response.list()
        assert [m.id for m in raw.parse()] == ["gpt-4o-mini", "llama-3.1-8b-instruct"]
        assert raw.headers["x-promptyard-unavailable"] == "registry, upstream fallback"
    registry.close()


async def _slow_models(request: Request) -> JSONResponse:
    await asyncio.sleep(3)  # past the gateway's connect_timeout_s
    return JSONResponse({"object": "list", "data": []})


async def _garbage_models(request: Request) -> Response:
    return Response(b'{"object": "list", "data": [{"no": "id"}]}', media_type="application/json")


@pytest.mark.parametrize("kind", ["slow", "garbage"])
def test_models_does_not_wait_for_or_pass_on_a_broken_upstream_list(
    released: PromptRepo, upstreams: tuple[OpenAIServer, OpenAIServer], kind: str
) -> None:
    broken = Starlette(
        routes=[
            Route("/slow/v1/models", _slow_models),
            Route("/garbage/v1/models", _garbage_models),
        ]
    )
    registry = Registry.from_repo(released.root, ref="main")
    with ThreadedServer(broken) as upstream:
        config = config_for(upstreams[0].base_url, f"{upstream.url}/{kind}/v1").model_copy(
            update={"connect_timeout_s": 0.5, "label": "staging"}
        )
        with (
            ThreadedServer(create_gateway_app(registry, config)) as gateway,
            openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
        ):
            raw = client.models.with_raw_response.list()
            ids = [m.id for m in raw.parse()]
    registry.close()
    # staging pins both prompts (at 1.0.0); the broken list is left out and named.
    assert ids == ["prompt:greeter", "prompt:support-reply", "gpt-4o-mini", "llama-3.1-8b-instruct"]
    assert raw.headers["x-promptyard-unavailable"] == "upstream fallback"


# --- metrics -----------------------------------------------------------------------------------------


def samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_metrics_per_prompt_version_and_variant(
    released: PromptRepo, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    registry = Registry.from_repo(released.root, ref="main")
    app = create_gateway_app(registry, config_for(upstreams[0].base_url, upstreams[1].base_url))
    stable = {"prompt": "support-reply", "version": "1.0.0", "variant": "stable"}
    with (
        ThreadedServer(app) as gateway,
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
    ):
        usage = [managed(client).parse().usage for _ in range(3)]
        list(
            client.chat.completions.create(
                model="prompt:support-reply",
                messages=[],
                stream=True,
                extra_body={"variables": VARS},
            )
        )
        with pytest.raises(openai.NotFoundError):
            managed(client, model="prompt:ghost")
        with pytest.raises(openai.UnprocessableEntityError):
            managed(client, extra_body={"variables": {}})
        found = samples(gateway.url)
    registry.close()
    assert value(found, "promptyard_gateway_requests_total", **stable, status="200") == 4
    assert value(found, "promptyard_gateway_request_seconds_count", **stable) == 4
    assert value(found, "promptyard_gateway_time_to_first_token_seconds_count", **stable) == 1
    prompt_tokens = sum(u.prompt_tokens for u in usage if u)
    completion_tokens = sum(u.completion_tokens for u in usage if u)
    # The stream reported the same usage as one of the calls.
    prompt_tokens += usage[0].prompt_tokens if usage[0] else 0
    completion_tokens += usage[0].completion_tokens if usage[0] else 0
    tokens = "promptyard_gateway_tokens_total"
    assert value(found, tokens, **stable, kind="prompt") == prompt_tokens
    assert value(found, tokens, **stable, kind="completion") == completion_tokens
    cost = (prompt_tokens * 0.15 + completion_tokens * 0.60) / 1e6
    assert value(found, "promptyard_gateway_cost_usd_total", **stable) == pytest.approx(cost)
    unknown = {"prompt": "_unknown", "version": "", "variant": ""}
    assert value(found, "promptyard_gateway_requests_total", **unknown, status="404") == 1
    assert value(found, "promptyard_gateway_errors_total", **unknown, kind="not_found") == 1
    invalid = {"prompt": "support-reply", "version": "", "variant": ""}
    assert value(found, "promptyard_gateway_errors_total", **invalid, kind="invalid_variables") == 1


# --- other registries and the command ----------------------------------------------------------------


def test_a_gateway_asking_a_registry_server(
    released: PromptRepo, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    reconciler = Reconciler(GitSource(str(released.root), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as registry_server:
        registry = Registry.from_server(registry_server.url)
        app = create_gateway_app(registry, config_for(upstreams[0].base_url), registry_blocks=True)
        with (
            ThreadedServer(app) as gateway,
            openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
        ):
            raw = managed(client, model="prompt:greeter")
            assert raw.headers["x-promptyard-version"] == "1.0.0"
            assert raw.parse().choices[0].message.content == "Where is my order?"
        registry.close()


def test_the_gateway_command(
    released: PromptRepo, upstreams: tuple[OpenAIServer, OpenAIServer], tmp_path: Path
) -> None:
    vllm = upstreams[0]
    with ServeProcess(
        "--source",
        str(released.root),
        "--upstream",
        f"gpt-4o-mini={vllm.base_url}",
        "--poll",
        "0",
        command="gateway",
        cwd=released.root,
        log=tmp_path / "gateway.log",
    ) as process:
        assert f"routes: gpt-4o-mini -> {vllm.base_url}; default upstream: none" in (
            process.output()
        )
        with openai.OpenAI(base_url=f"{process.url}/v1", api_key="x", max_retries=0) as client:
            raw = managed(client, user="someone")
            assert raw.parse().choices[0].message.content == "Where is my order?"
            metrics = httpx.get(f"{process.url}/metrics").text
            # Priced with the repository's promptyard.yaml? It has no pricing: no cost.
            assert 'promptyard_gateway_requests_total{prompt="support-reply"' in metrics


def test_gateway_config_from_python_takes_routes_and_the_repository_pricing(
    tmp_path: Path,
) -> None:
    """What `gateway --upstream/--default-upstream/--label` do, from Python: routes on top of
    a base config, and pricing from the repository's promptyard.yaml unless the base has it."""
    from promptyard.errors import ConfigError
    from promptyard.repo.workspace import Workspace
    from promptyard.serving.gateway import build_gateway_config

    repo = make_repo(tmp_path)
    repo.write(
        "promptyard.yaml",
        "providers:\n  default:\n    type: openai\npricing:\n"
        "  gpt-4o-mini: {input: 0.15, output: 0.6}\n",
    )
    config = build_gateway_config(
        upstreams={"gpt-4o-mini": "http://127.0.0.1:8000/v1"},
        default_upstream="http://127.0.0.1:9000/v1",
        label="staging",
        workspace=Workspace(repo.root),
    )
    assert config.models == {"gpt-4o-mini": "gpt-4o-mini"}
    assert config.endpoints["gpt-4o-mini"].url == "http://127.0.0.1:8000/v1"
    assert config.default_upstream == "default"
    assert config.label == "staging"
    assert config.pricing["gpt-4o-mini"].input == 0.15
    own = GatewayConfig.model_validate({"pricing": {"x": {"input": 9.0, "output": 9.0}}})
    kept = build_gateway_config(own, workspace=Workspace(repo.root))
    assert set(kept.pricing) == {"x"}  # the base's own pricing wins over promptyard.yaml
    assert build_gateway_config().pricing == {}  # outside a repository: no pricing
    with pytest.raises(ConfigError, match="--default-upstream 'ftp://x' is not an http"):
        build_gateway_config(default_upstream="ftp://x")


def test_the_gateway_command_refuses_bad_options(released: PromptRepo) -> None:
    from support.cli import run_cli

    result = run_cli("gateway", "--upstream", "gpt-4o-mini", repo=released.root)
    assert result.exit_code == 2 and "write MODEL=URL" in result.stderr
    result = run_cli(
        "gateway", "--registry", "http://127.0.0.1:1", "--source", ".", repo=released.root
    )
    assert result.exit_code == 2 and "not both" in result.stderr
    # An environment nobody pins prompts in: every prompt request would 404. It used to
    # start silently; it is a usage error naming the known environments (a subprocess, so a
    # gateway that starts anyway fails the test at the timeout instead of hanging it).
    result = released.run(
        "gateway",
        "--upstream",
        "gpt-4o-mini=http://127.0.0.1:1",
        "--label",
        "nosuch",
        "--poll",
        "0",
        "--port",
        "0",
        timeout=60,
    )
    assert result.exit_code == 2, result.describe()
    assert "--label 'nosuch' is not an environment" in result.stderr
    assert "known: production, staging" in result.stderr and "Traceback" not in result.stderr


def test_readyz_is_not_ready_while_every_prompt_request_would_get_503(
    released: PromptRepo, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    # A gateway asking a registry server that does not answer, with no fallback bundle and
    # nothing cached: each prompt request is a 503, and /readyz said ready all the same.
    registry = Registry.from_server(f"http://127.0.0.1:{closed_port()}", timeout=2)
    app = create_gateway_app(registry, config_for(upstreams[0].base_url), registry_blocks=True)
    with ThreadedServer(app) as gateway:
        body = {"model": "prompt:greeter", "messages": [], "variables": VARS}
        answer = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
        assert answer.status_code == 503
        ready = httpx.get(f"{gateway.url}/readyz", timeout=30)
        assert ready.status_code == 503
        assert "the registry cannot answer" in ready.json()["error"]["message"]
        assert httpx.get(f"{gateway.url}/healthz", timeout=30).status_code == 200  # alive
    registry.close()
    # The registry service itself: not ready, and prompt requests 503, until a snapshot.
    reconciler = Reconciler(GitSource(str(released.root), "main"))
    with ThreadedServer(create_app(reconciler)) as service:
        assert httpx.get(f"{service.url}/readyz").status_code == 503
        render = httpx.post(f"{service.url}/v1/prompts/greeter/render", json={"variables": VARS})
        assert render.status_code == 503
        reconciler.start_up()
        assert httpx.get(f"{service.url}/readyz").status_code == 200
        render = httpx.post(f"{service.url}/v1/prompts/greeter/render", json={"variables": VARS})
        assert render.status_code == 200
