"""LiteLLM as a consumer: `promptyard serve` speaks LiteLLM's Generic Prompt Management API.

The end-to-end tests run a real LiteLLM proxy process (see support/litellm_proxy.py) in front
of the local OpenAI-compatible server, with its `prompts` taken from a real registry over
HTTP; the official `openai` client calls the proxy with `prompt_id` and `prompt_variables`.
One proxy serves the whole module (it takes tens of seconds to start).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from promptyard.assignment import in_canary
from promptyard.registry.reconcile import GitSource, Reconciler
from promptyard.registry.service import create_app
from support.litellm_proxy import LiteLLMProxy
from support.openai_server import OpenAIServer
from support.repo import PromptRepo, make_repo
from support.servers import ThreadedServer

PATH = "/beta/litellm_prompt_management"
VARS = {"company": "Acme", "ticket": "Where is my parcel?"}


def ticket_reply(version: str, greeting: str, json_output: bool = False) -> str:
    """A prompt LiteLLM can serve: every input is a plain `{{ name }}`; a partial; JSON-ish
    braces in the text that are not placeholders."""
    extra = {"output": {"format": "json"}} if json_output else {}
    return yaml.safe_dump(
        {
            "name": "ticket-reply",
            "version": version,
            "model": {
                "provider": "default",
                "name": "gpt-4o-mini",
                "parameters": {"temperature": 0.2, "max_tokens": 300},
            },
            "inputs": {
                "company": {"type": "string"},
                "ticket": {"type": "string"},
                "tone": {"type": "string", "default": "warm"},
            },
            "messages": [
                {
                    "role": "system",
                    "content": f"{greeting} from {{{{ company }}}}, in a {{{{ tone }}}} tone.\n"
                    '{% include "tone.j2" %}Answer as {"reply": "..."}.\n',
                },
                {"role": "user", "content": "{{ ticket }}"},
            ],
            **extra,
        },
        sort_keys=False,
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> PromptRepo:
    """ticket-reply 1.0.0 (production stable), 1.1.0 (production canary 50%, staging),
    1.2.0 (JSON output; released, pinned nowhere); support-reply 1.0.0 loops over `history`."""
    repo = make_repo(tmp_path_factory.mktemp("litellm"))
    for version, greeting in (("1.0.0", "Hello"), ("1.1.0", "Good day"), ("1.2.0", "Welcome")):
        repo.write("prompts/ticket-reply.yaml", ticket_reply(version, greeting, version == "1.2.0"))
        pins = {"support-reply": "1.0.0", "greeter": "1.0.0"}
        production = "1.0.0" if version == "1.0.0" else ("1.0.0", "1.1.0", 50)
        repo.set_environment("production", {**pins, "ticket-reply": production})
        repo.set_environment("staging", {**pins, "ticket-reply": min(version, "1.1.0")})
        repo.commit(f"ticket-reply {version}")
        repo.release()
    return repo


@pytest.fixture(scope="module")
def registry(repo: PromptRepo) -> Iterator[str]:
    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as server:
        yield server.url


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


def prompt_entry(alias: str, registry: str, prompt_id: str, **query: str) -> dict[str, Any]:
    """One entry of LiteLLM's `prompts:` list, taking `prompt_id` from the registry."""
    params: dict[str, Any] = {
        "prompt_id": prompt_id,
        "prompt_integration": "generic_prompt_management",
        "api_base": registry,
    }
    if query:
        params["provider_specific_query_params"] = query
    return {"prompt_id": alias, "litellm_params": params}


@dataclass
class Stack:
    proxy: LiteLLMProxy
    client: openai.OpenAI
    upstream: OpenAIServer
    registry: str


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, registry: str, upstream: OpenAIServer
) -> Iterator[Stack]:
    model = {"model": "openai/gpt-4o-mini", "api_base": upstream.base_url, "api_key": "unused"}
    prompts = [
        prompt_entry("ticket-reply", registry, "ticket-reply"),
        prompt_entry("ticket-reply-staging", registry, "ticket-reply", label="staging"),
        prompt_entry("ticket-reply-pinned", registry, "ticket-reply", version="1.2.0"),
        prompt_entry("no-such-prompt", registry, "no-such-prompt"),
        prompt_entry("ticket-reply-qa", registry, "ticket-reply", label="qa"),
        prompt_entry("support-reply", registry, "support-reply"),
    ]
    workdir = tmp_path_factory.mktemp("litellm-proxy")
    with LiteLLMProxy(
        workdir, [{"model_name": "gpt-4o-mini", "litellm_params": model}], prompts
    ) as proxy:
        client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=proxy.master_key, max_retries=0)
        yield Stack(proxy, client, upstream, registry)


def rendered(registry: str, **body: Any) -> dict[str, Any]:
    """What the registry renders for ticket-reply (the reference LiteLLM must reproduce)."""
    response = httpx.post(f"{registry}/v1/prompts/ticket-reply/render", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def call(stack: Stack, prompt_id: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Call the proxy with `prompt_id`; return the request the upstream model received."""
    before = len(stack.upstream.chat_requests())
    stack.client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Please hurry."}],
        extra_body={"prompt_id": prompt_id, "prompt_variables": variables},
    )
    requests = stack.upstream.chat_requests()
    assert len(requests) == before + 1
    return requests[-1].body


# --- through a real LiteLLM proxy -------------------------------------------------------------


def test_litellm_sends_the_production_version_rendered(stack: Stack) -> None:
    sent = call(stack, "ticket-reply", {**VARS, "tone": "calm"})
    expected = rendered(stack.registry, variables={**VARS, "tone": "calm"})
    assert expected["version"] == "1.0.0"
    assert sent["messages"] == [
        *expected["messages"],
        {"role": "user", "content": "Please hurry."},  # the caller's turn, after the prompt's
    ]
    assert sent["messages"][0]["content"].startswith("Hello from Acme, in a calm tone.\n")
    assert 'Answer as {"reply": "..."}.' in sent["messages"][0]["content"]
    assert sent["model"] == "gpt-4o-mini"
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 300)  # the prompt's parameters


def test_litellm_selects_a_label_or_a_version(stack: Stack) -> None:
    variables = {**VARS, "tone": "calm"}
    staging = call(stack, "ticket-reply-staging", variables)
    expected = rendered(stack.registry, variables=variables, label="staging")
    assert expected["version"] == "1.1.0"
    assert staging["messages"][:2] == expected["messages"]

    pinned = call(stack, "ticket-reply-pinned", variables)
    assert (
        pinned["messages"][:2]
        == rendered(stack.registry, variables=variables, version="1.2.0")["messages"]
    )
    assert pinned["messages"][0]["content"].startswith("Welcome from Acme")
    assert pinned["response_format"] == {"type": "json_object"}  # 1.2.0's output is JSON


def test_a_variable_litellm_is_not_given_stays_a_placeholder(stack: Stack) -> None:
    # LiteLLM fills the placeholders itself and knows no defaults (the README says so).
    sent = call(stack, "ticket-reply-staging", VARS)  # no `tone`
    assert sent["messages"][0]["content"].startswith("Good day from Acme, in a {tone} tone.")


def test_litellm_reports_an_unknown_prompt_or_label_as_not_found(stack: Stack) -> None:
    before = len(stack.upstream.chat_requests())
    for alias, name in (("no-such-prompt", "no-such-prompt"), ("ticket-reply-qa", "ticket-reply")):
        with pytest.raises(openai.APIStatusError) as failure:
            stack.client.chat.completions.create(
                model="gpt-4o-mini", messages=[], extra_body={"prompt_id": alias}
            )
        message = str(failure.value)
        assert "404 Not Found" in message and name in message
    assert len(stack.upstream.chat_requests()) == before  # no model was called


def test_litellm_refuses_a_prompt_its_substitution_cannot_render(stack: Stack) -> None:
    with pytest.raises(openai.APIStatusError) as failure:
        stack.client.chat.completions.create(
            model="gpt-4o-mini", messages=[], extra_body={"prompt_id": "support-reply"}
        )
    assert "422 Unprocessable" in str(failure.value)


# --- the endpoint itself ----------------------------------------------------------------------


def test_answer_has_litellms_shape_with_placeholders(registry: str) -> None:
    response = httpx.get(f"{registry}{PATH}", params={"prompt_id": "ticket-reply"})
    assert response.status_code == 200
    body = response.json()
    assert body["prompt_id"] == "ticket-reply"
    assert body["prompt_template"] == [
        {
            "role": "system",
            "content": "Hello from {company}, in a {tone} tone.\nBe brief and friendly.\n"
            'Answer as {"reply": "..."}.\n',
        },
        {"role": "user", "content": "{ticket}"},
    ]
    assert body["prompt_template_model"] == "gpt-4o-mini"
    assert body["prompt_template_optional_params"] == {"temperature": 0.2, "max_tokens": 300}
    assert body["promptyard"]["version"] == "1.0.0"
    assert body["promptyard"]["variables"] == ["company", "ticket", "tone"]
    assert response.headers["x-promptyard-version"] == "1.0.0"
    metrics = httpx.get(f"{registry}/metrics").text
    assert 'endpoint="litellm",prompt="ticket-reply",status="200"' in metrics


def test_a_key_in_the_query_picks_the_sticky_canary(registry: str) -> None:
    key = next(k for k in map(str, range(1000)) if in_canary("production", "ticket-reply", k, 50))
    body = httpx.get(f"{registry}{PATH}", params={"prompt_id": "ticket-reply", "key": key}).json()
    assert (body["promptyard"]["version"], body["promptyard"]["variant"]) == ("1.1.0", "canary")


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"prompt_id": "nope"}, 404, "no prompt 'nope'"),
        ({"prompt_id": "ticket-reply", "version": "9.9.9"}, 404, "has no version 9.9.9"),
        ({"prompt_id": "ticket-reply", "label": "qa"}, 404, "no label 'qa'"),
        ({}, 422, "`prompt_id` is required"),
        ({"prompt_id": "ticket-reply", "env": "prod"}, 422, "unknown query parameter 'env'"),
        ({"prompt_id": "support-reply"}, 422, "uses input 'history'"),
    ],
)
def test_bad_requests_are_refused_in_fastapis_error_shape(
    registry: str, params: dict[str, str], status: int, says: str
) -> None:
    response = httpx.get(f"{registry}{PATH}", params=params)
    assert response.status_code == status
    body = response.json()
    assert says in body["detail"]
    assert body["error"]["message"] == body["detail"]


def test_a_brace_placeholder_already_in_the_text_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.write(
        "prompts/ticket-reply.yaml",
        ticket_reply("1.0.0", "Hello").replace("Answer as", "Never write {ticket}; answer as"),
    )
    repo.commit("literal placeholder")
    repo.release()
    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as server:
        response = httpx.get(
            f"{server.url}{PATH}", params={"prompt_id": "ticket-reply", "version": "1.0.0"}
        )
    assert response.status_code == 422
    assert "contains the text {ticket}" in response.json()["detail"]
