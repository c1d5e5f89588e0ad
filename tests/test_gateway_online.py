"""Online quality in the gateway: sampled live answers checked off the request path, driven by
the official `openai` client over real HTTP, the local OpenAI-compatible server upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from scipy.stats import binom

from promptyard.registry.client import Registry
from promptyard.serving.gateway import Observation, create_gateway_app
from promptyard.serving.gateway.observe import AnswerSample
from promptyard.serving.gateway.online import OnlineChecks, answer_text
from promptyard.spec.config import OnlineQuality
from promptyard.spec.gateway import GatewayConfig
from support.openai_server import OpenAIServer
from support.repo import PromptRepo, make_repo
from support.servers import ThreadedServer, wait_until

TICKET = "Where is my order?"  # the upstream echoes it: 4 words, mentions "order"
CHECKS = (
    "evals:\n  - dataset: golden/support-reply.jsonl\n"
    "    assert:\n"
    "      - {type: regex, value: 'order', metric: mentions-order}\n"
    "      - {type: word-count, value: {max: 3}}\n"
    "      - {type: llm-rubric, value: polite}\n"  # needs a model: never run live
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> PromptRepo:
    """support-reply 1.0.0 with two online checks (one passes, one fails) and greeter."""
    repo = make_repo(tmp_path_factory.mktemp("online"))
    with (repo.root / "prompts/support-reply.yaml").open("a") as spec:
        spec.write(CHECKS)
    repo.write(
        "golden/support-reply.jsonl", '{"id": "a", "vars": {"company": "A", "ticket": "t"}}\n'
    )
    repo.commit("support-reply checks")
    repo.release()
    return repo


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


def serve(repo: PromptRepo, upstream: OpenAIServer, online: dict[str, Any]) -> ThreadedServer:
    config = GatewayConfig.model_validate(
        {
            "endpoints": {"vllm": {"url": upstream.base_url}},
            "default_upstream": "vllm",
            "pricing": {"gpt-4o-mini": {"input": 0.15, "output": 0.60}},
            "online_quality": online,
        }
    )
    registry = Registry.from_repo(repo.root, ref="main")
    return ThreadedServer(create_gateway_app(registry, config))


def samples(url: str, name: str) -> dict[tuple[str, ...], float]:
    """The samples of metric family `name` in the gateway's /metrics, by label values."""
    text = httpx.get(f"{url}/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def check_counts(url: str) -> dict[tuple[str, str], float]:
    """(metric, result) -> count of the online checks of support-reply 1.0.0 (stable)."""
    out: dict[tuple[str, str], float] = {}
    for labels, value in samples(url, "promptyard_gateway_online_checks_total").items():
        d = dict(labels)
        assert (d["prompt"], d["version"], d["variant"]) == ("support-reply", "1.0.0", "stable")
        out[(d["metric"], d["result"])] = value
    return out


def ask(client: openai.OpenAI, prompt: str = "support-reply", **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model=f"prompt:{prompt}",
        messages=[],
        extra_body={"variables": {"company": "Acme", "ticket": TICKET}},
        **kwargs,
    )


def test_sampled_answers_are_checked_and_counted_per_metric_with_no_answer_text(
    repo: PromptRepo, upstream: OpenAIServer
) -> None:
    online = {"prompts": {"support-reply": {"sample": 1.0}}}
    with serve(repo, upstream, online) as gateway:
        with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-x", max_retries=0) as client:
            for _ in range(3):
                assert ask(client).choices[0].message.content == TICKET
            for _ in range(2):
                chunks = list(ask(client, stream=True))
                assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            ask(client, prompt="greeter")  # not opted in
        expected = {("mentions-order", "pass"): 5.0, ("word-count", "fail"): 5.0}
        wait_until(lambda: check_counts(gateway.url) == expected, deadline_s=10)
        text = httpx.get(f"{gateway.url}/metrics").text
        assert not samples(gateway.url, "promptyard_gateway_online_checks_dropped_total")
    assert "order?" not in text and "Where is" not in text  # no answer text leaves


def test_only_the_configured_share_of_answers_is_checked(
    repo: PromptRepo, upstream: OpenAIServer
) -> None:
    requests, share = 200, 0.3
    online = {"prompts": {"support-reply": {"sample": share}}}
    with serve(repo, upstream, online) as gateway:
        with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-x", max_retries=0) as client:
            for _ in range(requests):
                ask(client)
        served = samples(gateway.url, "promptyard_gateway_requests_total")
        assert sum(served.values()) == requests

        def settled() -> bool:  # both checks of each sampled answer counted
            counts = check_counts(gateway.url)
            return counts.get(("mentions-order", "pass")) == counts.get(("word-count", "fail"))

        wait_until(settled, deadline_s=10)
        checked = check_counts(gateway.url).get(("mentions-order", "pass"), 0)
    low, high = binom.ppf(1e-6, requests, share), binom.isf(1e-6, requests, share)
    assert low <= checked <= high, f"{checked} of {requests} checked at sample {share}"


def test_cost_per_request_variance_is_exported_for_the_controller(
    repo: PromptRepo, upstream: OpenAIServer
) -> None:
    with serve(repo, upstream, {}) as gateway:
        with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-x", max_retries=0) as client:
            costs = []
            for ticket in ("short", "a much longer ticket with many more words in it"):
                usage = client.chat.completions.create(
                    model="prompt:support-reply",
                    messages=[],
                    extra_body={"variables": {"company": "Acme", "ticket": ticket}},
                ).usage
                assert usage is not None
                costs.append(
                    (usage.prompt_tokens * 0.15 + usage.completion_tokens * 0.60) / 1_000_000
                )
        [total] = samples(gateway.url, "promptyard_gateway_cost_usd_total").values()
        [squared] = samples(gateway.url, "promptyard_gateway_cost_usd_squared_total").values()
    assert total == pytest.approx(sum(costs))
    assert squared == pytest.approx(sum(c * c for c in costs))


def test_a_full_queue_drops_the_sample_and_counts_it() -> None:
    registry = CollectorRegistry()
    config = OnlineQuality.model_validate({"prompts": {"bot": {"sample": 1.0}}, "queue": 1})
    checks = OnlineChecks(config, registry)  # worker not started: nothing leaves the queue

    def finished() -> Observation:
        seen = Observation.start({}, [checks.observe])
        seen.prompt, seen.version, seen.variant = "bot", "1.0.0", "stable"
        seen.sample = AnswerSample((), None)
        seen.finish(200)
        return seen

    finished()
    finished()
    finished()
    assert (
        registry.get_sample_value(
            "promptyard_gateway_online_checks_dropped_total", {"prompt": "bot"}
        )
        == 2
    )


def test_answer_text_reads_json_bodies_and_streams() -> None:
    body = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi there"}}]}'
    assert answer_text(body) == "hi there"
    stream = (
        b'data: {"choices": [{"index": 0, "delta": {"content": "hi "}}]}\n\n'
        b'data: {"choices": [{"index": 0, "delta": {"content": "there"}}]}\n\n'
        b"data: [DONE]\n\n"
    )
    assert answer_text(stream) == "hi there"
    assert answer_text(b"not json") == ""


def test_gateway_config_file_carries_online_quality(tmp_path: Path) -> None:
    path = tmp_path / "gateway.json"
    path.write_text('{"online_quality": {"prompts": {"bot": {"sample": 0.25}}, "queue": 50}}')
    config = GatewayConfig.load(path)
    assert config.online_quality.prompts["bot"].sample == 0.25
    assert config.online_quality.queue == 50
