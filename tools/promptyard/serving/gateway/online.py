"""Online quality: a sample of live answers checked off the request path.

For a prompt listed under `online_quality.prompts` of promptyard.yaml (copied into the
gateway config), the `sample_answer` stage (in `stages`) picks a share (`sample`) of its requests; the
answer's bytes are kept as they pass to the client (`AnswerSample`), and when the request has
ended `OnlineChecks.observe` puts them on a bounded queue without waiting. A worker thread
runs the version's online checks (`evals.online_quality.online_checks`: reference-free,
no model, no repository code) and counts each verdict in
`promptyard_gateway_online_checks_total{prompt,version,variant,metric,result}`, where
`metric` is the assertion's `metric` or its type. A full queue drops the sample and counts it
in `promptyard_gateway_online_checks_dropped_total`. Only counts leave the gateway: no answer
text, no reason.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from promptyard.evals.assertions import AssertionContext, evaluate
from promptyard.evals.online_quality import online_checks
from promptyard.serving.gateway.answers import chat_answer
from promptyard.serving.gateway.observe import AnswerSample, Observation
from promptyard.spec import Assertion, Case, PromptSpec
from promptyard.spec.config import OnlineQuality

log = logging.getLogger("promptyard.gateway")

LIVE_CASE = Case(id="live")  # checks see no case data: they are reference-free


@dataclass(frozen=True)
class Sampled:
    """A finished, sampled request waiting for its checks."""

    labels: tuple[str, str, str]
    sample: AnswerSample
    latency_ms: float
    cost_usd: float | None


class OnlineChecks:
    """The sampler, the bounded queue, the worker thread and the counters."""

    def __init__(
        self,
        config: OnlineQuality,
        registry: CollectorRegistry,
        *,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.draw = draw
        labels = ["prompt", "version", "variant"]
        self.results = Counter(
            "promptyard_gateway_online_checks",
            "Online checks of sampled live answers by metric (the assertion's metric or "
            "type) and result (pass, fail).",
            [*labels, "metric", "result"],
            registry=registry,
        )
        self.dropped = Counter(
            "promptyard_gateway_online_checks_dropped",
            "Sampled answers not checked: the queue was full or the answer too large.",
            ["prompt"],
            registry=registry,
        )
        self.pending: queue.Queue[Sampled | None] = queue.Queue(maxsize=config.queue)
        self.checks: dict[tuple[str, str], tuple[Assertion, ...]] = {}
        self.worker: threading.Thread | None = None

    # --- on the request path: cheap, never blocking -------------------------------------------

    def pick(self, name: str, version: str, spec: PromptSpec) -> AnswerSample | None:
        """An empty sample when this request of `name` is to be checked, else None."""
        opted = self.config.prompts.get(name)
        if opted is None or self.draw() >= opted.sample:
            return None
        checks = self.checks.get((name, version))
        if checks is None:
            checks = self.checks[(name, version)] = tuple(online_checks(spec))
        return AnswerSample(checks, spec) if checks else None

    def observe(self, seen: Observation) -> None:
        """The observer: queue a sampled answer that came back whole (drop it when full)."""
        sample = seen.sample
        if sample is None or seen.status != 200 or seen.error is not None:
            return
        if sample.overflow:
            self.dropped.labels(seen.prompt).inc()
            return
        item = Sampled(seen.labels(), sample, seen.seconds * 1000, seen.cost_usd or None)
        try:
            self.pending.put_nowait(item)
        except queue.Full:
            self.dropped.labels(seen.prompt).inc()

    # --- off the request path ---------------------------------------------------------------

    def start(self) -> None:
        if self.config.prompts and self.worker is None:
            self.worker = threading.Thread(
                target=self._run, name="promptyard-online-checks", daemon=True
            )
            self.worker.start()

    def stop(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            self.pending.put(None)  # after what is queued: the queue is drained first
            worker.join(timeout=5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while (item := self.pending.get()) is not None:
                try:
                    loop.run_until_complete(self.check(item))
                except Exception:  # a check must never stop the worker
                    log.exception("online checks of %s %s failed", *item.labels[:2])
        finally:
            loop.close()

    async def check(self, item: Sampled) -> None:
        """Run the sample's checks and count each verdict (nothing else is kept)."""
        output = answer_text(bytes(item.sample.body))
        context = AssertionContext(
            output=output,
            case=LIVE_CASE,
            prompt=item.sample.spec,
            latency_ms=item.latency_ms,
            cost_usd=item.cost_usd,
        )
        for assertion in item.sample.checks:
            result = await evaluate(assertion, context)
            metric = assertion.metric or assertion.type
            self.results.labels(*item.labels, metric, "pass" if result.passed else "fail").inc()


def answer_text(body: bytes) -> str:
    """The first choice's text of a chat completion: a JSON body, or the deltas of SSE events."""
    return chat_answer(body)[0]
