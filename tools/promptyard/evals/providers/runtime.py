"""The provider runtime: what every call to a provider goes through, whatever its type.

As httpx composes transports, a `ProviderRuntime` wraps a `Provider` (which makes one
attempt per call) and adds what every type needs alike:

- at most `max_concurrency` attempts at once, and `requests_per_minute` slots;
- `timeout_s` per attempt;
- retries with exponential backoff and jitter on infrastructure failures (timeouts,
  dropped connections, 429, 5xx, malformed answers), `Retry-After` honoured, and a 429
  pausing the whole provider, not just one request;
- a refused connection or an unknown host before the provider has answered once stops the
  run at once (no retry fixes a wrong URL or a server that is not running);
- a stop flag shared by every provider of a run: once set, no further attempt starts;
- per kind of call (chat, judge, embed), the tallies that say whether the provider is down
  (exit 3) or refuses the key (exit 2), and the messages that say so.

A provider type registered with `@provider` gets all of it: the eval engine only ever
calls providers through a runtime (`complete`, `embed`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from promptyard.errors import ConfigError, InfraError
from promptyard.evals.providers.base import (
    ChatRequest,
    Completion,
    Embeddings,
    Provider,
    ProviderError,
)

T = TypeVar("T")
# With no success yet, this many calls failing for infrastructure reasons (after their
# retries) means the provider is down: stop instead of grinding through every case.
ABORT_AFTER_INFRA_FAILURES = 3
_CALL_NAMES = {"chat": "call(s)", "judge": "judge call(s)", "embed": "embeddings call(s)"}

Sleep = Callable[[float], Awaitable[None]]


class RunStopped(Exception):
    """The whole run is stopping: raised instead of (or after) a call, never a verdict."""


class Unreachable(RunStopped):
    """A provider is down (no call succeeded, several failed, or the first was refused)."""

    def __init__(self, runtime: ProviderRuntime, kind: str) -> None:
        super().__init__(runtime.name)
        self.runtime = runtime
        self.kind = kind


class Halted(RunStopped):
    """Raised instead of starting a call once the run is stopping (another worker failed)."""


class StopFlag:
    """Shared by every provider runtime of a run: set once the run is stopping."""

    def __init__(self) -> None:
        self.stopped = False

    def check(self) -> None:
        if self.stopped:
            raise Halted("the run is stopping")


class RetryClock:
    """How long every running worker was waiting to retry (shared by all providers).

    While every worker sleeps before a retry no work is done: a rate and an ETA leave
    that time out. `on_change` is called whenever a call starts or stops waiting."""

    def __init__(self, on_change: Callable[[], None] = lambda: None, *, now: Callable[[], float]):
        self.workers = 0  # workers running
        self.waiting = 0  # calls sleeping before a retry
        self._stalled_since: float | None = None
        self._stalled_s = 0.0
        self._on_change = on_change
        self._now = now

    def _update(self) -> None:
        stalled = self.workers > 0 and self.waiting >= self.workers
        now = self._now()
        if stalled and self._stalled_since is None:
            self._stalled_since = now
        elif not stalled and self._stalled_since is not None:
            self._stalled_s += now - self._stalled_since
            self._stalled_since = None

    def stalled_s(self) -> float:
        since = self._stalled_since
        return self._stalled_s + (self._now() - since if since is not None else 0.0)

    def set_workers(self, count: int) -> None:
        self.workers = count
        self._update()

    async def sleep(self, seconds: float, sleep: Sleep = asyncio.sleep) -> None:
        """Sleep before a retry, counted as waiting."""
        self.waiting += 1
        self._update()
        self._on_change()
        try:
            await sleep(seconds)
        finally:
            self.waiting -= 1
            self._update()
        self._on_change()


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait between attempts (the attempt count is the provider's `max_retries`)."""

    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 300.0  # a longer Retry-After is capped to this
    jitter: Callable[[], float] = random.random  # in [0, 1): spreads the retries out

    def delay(self, error: ProviderError, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        if error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0**attempt)
        return ceiling * (0.5 + self.jitter() / 2)


@dataclass
class CallTally:
    """Outcomes of one kind of call (chat, judge, embed) to one provider."""

    successes: int = 0
    infra: int = 0
    auth: int = 0
    other: int = 0
    last_error: ProviderError | None = None


class ProviderRuntime:
    """A provider with its limits: concurrency, requests per minute, retries, pauses.

    `now` and `sleep` are the event loop's clock and `asyncio.sleep` unless given (tests
    count the waits a schedule asks for instead of timing them)."""

    def __init__(
        self,
        name: str,
        provider: Provider,
        *,
        offline: bool = False,
        policy: RetryPolicy | None = None,
        stop: StopFlag | None = None,
        clock: RetryClock | None = None,
        now: Callable[[], float] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.provider = provider
        self.config = provider.config
        self.offline = offline
        self.policy = policy or RetryPolicy()
        self.stop = stop or StopFlag()
        self._now = now or (lambda: asyncio.get_running_loop().time())
        self._sleep = sleep
        self.clock = clock or RetryClock(now=self._now)
        self.answered = False  # some call of any kind succeeded
        self.refused_at_once = False  # stopped at a connect failure before any answer
        self.attempts = 0
        self.semaphore = asyncio.Semaphore(self.config.max_concurrency)
        rpm = self.config.requests_per_minute
        self.interval = 60.0 / rpm if rpm else 0.0
        self.next_slot = 0.0
        self.paused_until = 0.0
        self.prepared = False
        # Per kind of call: a judge model that is down fails even when chat calls work.
        self.tally: dict[str, CallTally] = {}

    # the calls

    async def complete(self, request: ChatRequest, kind: str = "chat") -> Completion:
        """A chat completion, with the retries and limits; raises the last ProviderError."""
        timeout = self.config.timeout_s
        return await self.call(kind, lambda: self.provider.complete(request, timeout=timeout))

    async def embed(self, model: str, texts: list[str]) -> Embeddings:
        timeout = self.config.timeout_s
        return await self.call("embed", lambda: self.provider.embed(model, texts, timeout=timeout))

    async def call(self, kind: str, attempt_once: Callable[[], Awaitable[T]]) -> T:
        """One logical call: attempts with retries; raises the last ProviderError."""
        tally = self.tally.setdefault(kind, CallTally())
        timeout = self.config.timeout_s
        attempt = 0
        if not self.prepared:  # before the first rate-limit slot is taken
            self.prepared = True
            await self.provider.prepare()
        while True:
            await self._wait_turn()
            async with self.semaphore:
                self.stop.check()  # the run may have failed while this call waited its turn
                self.attempts += 1
                try:
                    async with asyncio.timeout(timeout):
                        result = await attempt_once()
                except ProviderError as exc:
                    error = exc
                except TimeoutError:
                    error = ProviderError("timeout", f"no answer within {timeout:g} s")
                else:
                    tally.successes += 1
                    self.answered = True
                    return result
            self.stop.check()  # decided elsewhere meanwhile: this failure changes nothing
            if error.kind == "connect" and not self.answered:
                # Nothing has answered yet: a wrong URL or a server that is not running.
                # Retrying fixes neither, so the run stops now (a restarting server, once
                # it has answered, gets the retries).
                tally.last_error = error
                tally.infra += 1
                self.refused_at_once = True
                raise Unreachable(self, kind)
            if not error.retryable or attempt >= self.config.max_retries:
                self._count_failure(kind, tally, error)
                raise error
            delay = self.policy.delay(error, attempt)
            if error.kind == "rate_limit" or error.retry_after is not None:
                # The server asked everyone to slow down, not just this request.
                self.paused_until = max(self.paused_until, self._now() + delay)
            attempt += 1
            await self.clock.sleep(delay, self._sleep)

    async def _wait_turn(self) -> None:
        """Wait for a requests-per-minute slot, then for any pause a 429 asked for."""
        if self.interval:
            now = self._now()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval  # reserve it before sleeping
            if slot > now:
                await self._sleep(slot - now)
        while (wait := self.paused_until - self._now()) > 0:
            await self.clock.sleep(wait, self._sleep)

    def _count_failure(self, kind: str, tally: CallTally, error: ProviderError) -> None:
        tally.last_error = error
        if error.infra:
            tally.infra += 1
            if tally.successes == 0 and tally.infra >= ABORT_AFTER_INFRA_FAILURES:
                raise Unreachable(self, kind)
        elif error.kind == "auth":
            tally.auth += 1
        else:
            tally.other += 1

    async def aclose(self) -> None:
        await self.provider.aclose()

    # what went wrong, as the errors the CLI reports (exit 3 and 2)

    def failure(self, partial: Path | None = None) -> InfraError | ConfigError | None:
        """Why no call of some kind succeeded, if none did: down (exit 3) or the key is
        refused (exit 2); None when every kind of call got an answer or failed otherwise."""
        if self.offline:
            return None
        for kind, tally in self.tally.items():
            if tally.successes:
                continue
            if tally.infra:
                return self.unreachable_error(kind, partial)
            if tally.auth and not tally.other:
                return self.auth_error(kind)
        return None

    def unreachable_error(self, kind: str, partial: Path | None = None) -> InfraError:
        tally = self.tally[kind]
        retries = self.config.max_retries
        last = tally.last_error.message if tally.last_error else "unknown error"
        where = f" Partial results: {partial}" if partial else ""
        if self.refused_at_once:
            return InfraError(
                f"provider {self.name!r} ({self.provider.describe()}) is unreachable: {last} "
                f"(stopped after {self.attempts} attempt(s): retrying cannot fix a refused "
                f"connection or an unknown host).{where}",
                hint=f"start the server, or fix the base URL ({self._url_setting()})",
            )
        return InfraError(
            f"provider {self.name!r} ({self.provider.describe()}) is unreachable: "
            f"{tally.infra} {_CALL_NAMES.get(kind, 'call(s)')} failed after {retries} retries, "
            f"none succeeded (last: {last}).{where}",
            hint="check that the server is up and the base URL is right, then run the same "
            "command again; finished cases are kept",
        )

    def infra_share_error(self, failed: int, rows: int, partial: Path | None) -> InfraError:
        """More rows than `max_infra_error_rate` allows ended in this provider's
        infrastructure errors: the run is no quality result (exit 3)."""
        allowed = self.config.max_infra_error_rate
        errors = [t.last_error for t in self.tally.values() if t.infra and t.last_error]
        last = f"; last: {errors[-1].message}" if errors else ""
        where = f" Partial results: {partial}" if partial else ""
        return InfraError(
            f"provider {self.name!r} ({self.provider.describe()}) failed {failed} of {rows} "
            f"case run(s) for infrastructure reasons after {self.config.max_retries} retries "
            f"({failed / rows:.0%} > max_infra_error_rate {allowed:.0%}{last}): those cases "
            f"have no verdict, so the run is not judged.{where}",
            hint="run the same command again once the provider is healthy (finished cases are "
            f"kept; only these are asked again), or allow a share with "
            f"`providers.{self.name}.max_infra_error_rate` in promptyard.yaml",
        )

    def auth_error(self, kind: str) -> ConfigError:
        tally = self.tally[kind]
        last = tally.last_error.message if tally.last_error else ""
        env = self.config.api_key_env or "the API key"
        return ConfigError(
            f"provider {self.name!r} ({self.provider.describe()}) refused every call: {last}",
            hint=f"check {env}",
        )

    def _url_setting(self) -> str:
        env = self.config.base_url_env
        if env and self.provider.environ.get(env):
            return f"${env}"
        return "base_url in promptyard.yaml"
