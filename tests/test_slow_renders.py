"""A slow template does not stall a server (issue 20, item 7).

Renders run in worker threads, a few at a time, so `/healthz` of the registry service and
of the gateway answers fast while runaway templates spin; each runaway still ends at the
render time limit (cooperative in worker threads) as a 422 naming it. Before, renders ran
on the event loop: `/healthz` waited 4.5-19.7 s behind them (and in a server whose loop is
not on the main thread, a runaway template never ended).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from promptyard.registry.client import Registry
from promptyard.registry.reconcile import GitSource, Reconciler
from promptyard.registry.render_workers import RENDER_CONCURRENCY
from promptyard.registry.service import create_app
from promptyard.serving.gateway import create_gateway_app
from promptyard.spec.gateway import GatewayConfig
from support.openai_server import OpenAIServer
from support.repo import PromptRepo, make_repo
from support.servers import ThreadedServer

VARS = {"company": "Acme", "ticket": "Where is my order?"}
# Runs for hours without a limit; only the per-iteration loop check sees it.
RUNAWAY = "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}"
LIMIT_S = 1.0
SLOW_REQUESTS = RENDER_CONCURRENCY + 2  # more than render at once: some wait their turn


@pytest.fixture(scope="module")
def slow_repo(tmp_path_factory: pytest.TempPathFactory) -> PromptRepo:
    """greeter 1.0.0 released with a runaway template; support-reply 1.0.0 as usual."""
    repo = make_repo(tmp_path_factory.mktemp("slow"))
    repo.set_prompt("greeter", "1.0.0", greeting=RUNAWAY)
    repo.commit("a greeter that spins")
    repo.release()
    return repo


@pytest.fixture(autouse=True)
def short_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("promptyard.render.RENDER_TIME_LIMIT_S", LIMIT_S)


def health_during(
    health_url: str, slow: Callable[[], httpx.Response]
) -> tuple[list[float], list[httpx.Response]]:
    """/healthz latencies (s) sampled while SLOW_REQUESTS runaway renders run; their answers."""
    latencies: list[float] = []
    with ThreadPoolExecutor(SLOW_REQUESTS) as pool, httpx.Client(timeout=30) as client:
        futures = [pool.submit(slow) for _ in range(SLOW_REQUESTS)]
        time.sleep(0.1)  # let them reach the server
        while not all(f.done() for f in futures):
            started = time.perf_counter()
            assert client.get(health_url).status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
        return latencies, [f.result() for f in futures]


def assert_healthy_while_renders_stopped(
    latencies: list[float], answers: list[httpx.Response]
) -> None:
    assert len(latencies) >= 10, latencies  # the slow renders overlapped the probes
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"/healthz during slow renders: p95 {p95 * 1000:.1f} ms (n={len(latencies)})")
    assert p95 < 1.0, f"/healthz p95 {p95 * 1000:.0f} ms during slow renders"  # generous
    for answer in answers:
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["type"] == "render_error"
        assert f"ran longer than {LIMIT_S:g} s" in error["message"]
        assert "prompts/greeter.yaml" in error["message"]


def test_the_registry_service_stays_healthy_during_slow_renders(slow_repo: PromptRepo) -> None:
    reconciler = Reconciler(GitSource(str(slow_repo.root), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as server, httpx.Client(timeout=30) as client:
        latencies, answers = health_during(
            f"{server.url}/healthz",
            lambda: client.post(
                f"{server.url}/v1/prompts/greeter/render", json={"variables": VARS}
            ),
        )
        assert_healthy_while_renders_stopped(latencies, answers)
        # The workers are free again: a normal prompt renders.
        ok = client.post(f"{server.url}/v1/prompts/support-reply/render", json={"variables": VARS})
        assert ok.status_code == 200 and "Hello from Acme." in ok.text


@pytest.fixture
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


def test_the_gateway_stays_healthy_during_slow_renders(
    slow_repo: PromptRepo, upstream: OpenAIServer
) -> None:
    registry = Registry.from_repo(slow_repo.root, ref="main")
    config = GatewayConfig.model_validate(
        {"endpoints": {"vllm": {"url": upstream.base_url}}, "default_upstream": "vllm"}
    )
    chat = "/v1/chat/completions"
    with (
        ThreadedServer(create_gateway_app(registry, config)) as gateway,
        httpx.Client(base_url=gateway.url, timeout=30) as client,
    ):
        latencies, answers = health_during(
            f"{gateway.url}/healthz",
            lambda: client.post(
                chat, json={"model": "prompt:greeter", "messages": [], "variables": VARS}
            ),
        )
        assert_healthy_while_renders_stopped(latencies, answers)
        ok = client.post(
            chat, json={"model": "prompt:support-reply", "messages": [], "variables": VARS}
        )
        assert ok.status_code == 200, ok.text
    registry.close()
