"""The provider runtime every call goes through, driven by a scripted provider.

Waits are counted, not timed: the runtime takes a virtual clock (`now`) and a `sleep`
that advances it, so each test reads exactly which waits a schedule asked for and when
(in virtual seconds) each attempt started. The last test registers a provider type and
runs a whole eval through it, to show a new type gets retries and limits by registering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promptyard.errors import ConfigError, InfraError
from promptyard.evals.providers import (
    PROVIDERS,
    ChatRequest,
    Completion,
    Embeddings,
    Provider,
    ProviderError,
    provider,
)
from promptyard.evals.providers.runtime import (
    Halted,
    ProviderRuntime,
    RetryPolicy,
    StopFlag,
    Unreachable,
)
from promptyard.evals.runner import EvalOptions, evaluate_snapshot
from promptyard.repo.workspace import Workspace
from promptyard.spec import ProviderConfig
from support.clock import VirtualTime
from support.evals import echo_prompt, text_cases
from support.repo import PromptRepo

REQUEST = ChatRequest("test-model", [{"role": "user", "content": "hello"}])


class Scripted(Provider):
    """Answers or fails attempt by attempt as scripted (then answers), noting when each
    attempt started on the virtual clock."""

    type_name = "scripted"

    def __init__(self, config: ProviderConfig, script: list[ProviderError | str], time: Any):
        super().__init__("scripted", config, {})
        self.script = list(script)
        self.time = time
        self.started: list[float] = []

    def describe(self) -> str:
        return "scripted at nowhere"

    async def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        self.started.append(self.time.now())
        await asyncio.sleep(0)  # a real call yields to the loop
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, ProviderError):
            raise step
        return Completion(step, tokens_in=1, tokens_out=1)

    async def embed(self, model: str, texts: list[str], *, timeout: float) -> Embeddings:
        raise NotImplementedError


def runtime(
    script: list[ProviderError | str] = (),  # type: ignore[assignment]
    *,
    stop: StopFlag | None = None,
    **config: Any,
) -> tuple[ProviderRuntime, Scripted, VirtualTime]:
    time = VirtualTime()
    settings = {"max_retries": 3, "max_concurrency": 4, **config}
    fake = Scripted(ProviderConfig.model_validate(settings), list(script), time)
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=30.0, jitter=lambda: 1.0)
    run = ProviderRuntime(
        "scripted", fake, policy=policy, stop=stop, now=time.now, sleep=time.sleep
    )
    return run, fake, time


def rate_limited(retry_after: float | None) -> ProviderError:
    return ProviderError("rate_limit", "HTTP 429: slow down", status=429, retry_after=retry_after)


def test_a_429_is_retried_after_the_wait_its_retry_after_asks_for() -> None:
    run, fake, time = runtime([rate_limited(7.0), "answer"])
    completion = asyncio.run(run.complete(REQUEST))
    assert completion.text == "answer"
    assert time.sleeps == [7.0]  # Retry-After as given: no backoff, no jitter
    assert fake.started == [0.0, 7.0]
    assert run.paused_until == 7.0  # the whole provider was paused, not only this call


def test_a_429_pauses_calls_that_start_during_the_pause() -> None:
    run, fake, time = runtime([rate_limited(7.0)], max_concurrency=1)

    async def both() -> None:
        first = asyncio.create_task(run.complete(REQUEST))
        while not fake.started:  # the first call has made its attempt
            await asyncio.sleep(0)
        second = asyncio.create_task(run.complete(REQUEST))
        await asyncio.gather(first, second)

    asyncio.run(both())
    # the second call made no attempt before the pause ended: it waited for it too
    assert len(fake.started) == 3 and min(fake.started[1:]) >= 7.0
    assert time.sleeps == [7.0, 7.0]


def test_a_retry_after_over_the_cap_waits_the_cap() -> None:
    run, _, time = runtime([rate_limited(10_000.0)])
    run.policy = RetryPolicy(max_retry_after_s=60.0)
    asyncio.run(run.complete(REQUEST))
    assert time.sleeps == [60.0]


def test_without_retry_after_the_backoff_doubles() -> None:
    server_error = ProviderError("server", "HTTP 500: oops", status=500)
    run, fake, time = runtime([server_error, server_error, server_error])
    assert asyncio.run(run.complete(REQUEST)).text == "ok"
    assert time.sleeps == [1.0, 2.0, 4.0]  # jitter at its top: the ceiling itself
    assert fake.started == [0.0, 1.0, 3.0, 7.0]


def test_jitter_spreads_the_waits_below_the_ceiling() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, jitter=lambda: 0.0)
    error = ProviderError("timeout", "no answer")
    assert [policy.delay(error, attempt) for attempt in range(3)] == [0.5, 1.0, 2.0]


def test_it_gives_up_after_max_retries_and_reports_the_provider_down() -> None:
    errors = [ProviderError("server", "HTTP 503: busy", status=503) for _ in range(100)]
    run, fake, _ = runtime(errors, max_retries=2)

    async def calls() -> list[BaseException]:
        failures = []
        for _ in range(3):
            try:
                await run.complete(REQUEST)
            except (ProviderError, Unreachable) as exc:
                failures.append(exc)
        return failures

    failures = asyncio.run(calls())
    assert len(fake.started) == 9  # 3 calls x (1 + max_retries) attempts
    assert [type(f) for f in failures] == [ProviderError, ProviderError, Unreachable]
    error = run.failure()
    assert isinstance(error, InfraError)
    assert "provider 'scripted' (scripted at nowhere) is unreachable" in error.message
    assert "3 call(s) failed after 2 retries" in error.message


def test_a_request_error_is_not_retried() -> None:
    run, fake, time = runtime([ProviderError("request", "HTTP 400: bad model", status=400)])
    with pytest.raises(ProviderError, match="bad model"):
        asyncio.run(run.complete(REQUEST))
    assert fake.started == [0.0] and time.sleeps == []
    assert run.failure() is None  # the provider answered: the case ends with the error


def test_a_refused_key_on_every_call_is_a_configuration_error() -> None:
    run, _, _ = runtime([ProviderError("auth", "HTTP 401: bad key", status=401)])
    with pytest.raises(ProviderError):
        asyncio.run(run.complete(REQUEST))
    error = run.failure()
    assert isinstance(error, ConfigError) and "refused every call" in error.message


def test_a_refused_connection_stops_at_once_until_the_provider_has_answered() -> None:
    refused = ProviderError("connect", "connection refused")
    run, fake, _ = runtime([refused])
    with pytest.raises(Unreachable):
        asyncio.run(run.complete(REQUEST))
    assert len(fake.started) == 1
    assert "stopped after 1 attempt(s)" in run.unreachable_error("chat").message

    run, fake, time = runtime(["first answer", refused])

    async def twice() -> str:
        await run.complete(REQUEST)
        return (await run.complete(REQUEST)).text

    assert asyncio.run(twice()) == "ok"  # a server restarting: retried once it had answered
    assert len(fake.started) == 3 and time.sleeps == [1.0]


def test_no_attempt_starts_once_the_run_is_stopping() -> None:
    stop = StopFlag()
    stop.stopped = True
    run, fake, _ = runtime(stop=stop)
    with pytest.raises(Halted):
        asyncio.run(run.complete(REQUEST))
    assert fake.started == []


def test_a_call_waiting_to_retry_makes_no_attempt_after_the_run_stops() -> None:
    stop = StopFlag()
    run, fake, time = runtime([ProviderError("server", "HTTP 500", status=500)], stop=stop)

    async def stop_while_waiting(seconds: float) -> None:
        await time.sleep(seconds)
        stop.stopped = True  # another worker failed meanwhile

    run._sleep = stop_while_waiting
    with pytest.raises(Halted):
        asyncio.run(run.complete(REQUEST))
    assert len(fake.started) == 1


def test_requests_per_minute_spaces_the_attempts() -> None:
    run, fake, time = runtime(requests_per_minute=2, max_concurrency=10)

    async def burst() -> None:
        await asyncio.gather(*(run.complete(REQUEST) for _ in range(5)))

    asyncio.run(burst())
    # Five calls at once: the first goes at once, each other waits for its slot.
    slots = sorted([0.0, *time.wakes])
    assert len(fake.started) == 5 and slots == [0.0, 30.0, 60.0, 90.0, 120.0]
    for start in slots:  # never more than 2 attempts in any minute
        assert sum(start <= t < start + 60 for t in slots) <= 2


# --- a registered provider type gets all of it ----------------------------------------------


@pytest.fixture
def scripted_type() -> Iterator[list[str]]:
    """Provider type `flaky-test`: each request's first attempt is a 429, then it echoes."""
    attempts: list[str] = []

    @provider("flaky-test")
    class Flaky(Provider):
        def describe(self) -> str:
            return "flaky-test"

        async def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
            text = request.messages[-1]["content"]
            attempts.append(text)
            await asyncio.sleep(0)
            if attempts.count(text) == 1:
                raise rate_limited(0.0)
            return Completion(text, tokens_in=2, tokens_out=2)

        async def embed(self, model: str, texts: list[str], *, timeout: float) -> Embeddings:
            raise ProviderError("request", "no embeddings")

    try:
        yield attempts
    finally:
        PROVIDERS.pop("flaky-test", None)


def test_a_registered_provider_type_is_retried_by_the_runtime(
    tmp_path: Path, scripted_type: list[str]
) -> None:
    config = """\
providers:
  default:
    type: flaky-test
    base_url: http://flaky.invalid/v1
    max_retries: 2
    max_concurrency: 3
"""
    repo = PromptRepo.create(tmp_path / "repo", config)
    repo.write("prompts/echo.yaml", echo_prompt(asserts=[{"type": "contains", "value": "case"}]))
    repo.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(6)]))
    report = evaluate_snapshot(
        Workspace(repo.root).snapshot(), options=EvalOptions(repo_root=repo.root, environ={})
    )
    summary = report.runs[0].summary
    assert (summary.cases, summary.passed, summary.errors) == (6, 6, 0)
    assert sorted(scripted_type) == sorted([f"case {i}" for i in range(6)] * 2)
