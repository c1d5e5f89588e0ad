"""The observe stage: what each chat request did, handed to the observers when it ends.

An `Observation` follows one request through the pipeline (its prompt, version and variant
once known, the first token of a stream, the usage the upstream reported) and, when the
request finishes, is passed once to every observer of the gateway. `GatewayMetrics` is the
first observer; online checks (`online`), exposures and traces join the same list.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from promptyard.evals.pricing import cost_usd
from promptyard.spec.config import Price

UNKNOWN = "_unknown"  # metric label of prompt names that do not exist (bounded cardinality)
UNMANAGED = "_unmanaged"  # metric label of requests for a plain model
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


MAX_SAMPLE_BYTES = 1 << 20  # a sampled answer larger than this is not checked


@dataclass
class AnswerSample:
    """The bytes of a sampled answer as the client gets them (a JSON body or SSE events), for
    observers that check answers; only requests picked for online checks carry one."""

    checks: Sequence[Any]  # what to run on it (the version's online checks)
    spec: Any  # the version's PromptSpec
    body: bytearray = field(default_factory=bytearray)
    overflow: bool = False

    def add(self, data: bytes) -> None:
        if self.overflow or len(self.body) + len(data) > MAX_SAMPLE_BYTES:
            self.overflow = True
            self.body.clear()
            return
        self.body += data


@dataclass
class Observation:
    """One chat request as observed: labels, timings, usage, and how it ended."""

    started: float
    pricing: Mapping[str, Price]
    observers: Sequence[Observer]
    prompt: str = UNMANAGED
    version: str = ""
    variant: str = ""
    experiment: str | None = None  # the running experiment that chose the variant
    unit: str | None = None  # its unit (the request's `user`)
    variables: dict[str, Any] | None = None  # a managed prompt's (for capture)
    answer_body: bytes | None = None  # the upstream's non-streamed 200 body (for capture)
    capture: bool = False  # drawn for capture (`captures`)
    stream_body: bytearray | None = None  # a captured stream's bytes (None past the cap)
    model: str = ""
    first_token_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float = 0.0
    status: int = 0
    error: str | None = None
    seconds: float = 0.0
    sample: AnswerSample | None = None  # set when the answer is checked online
    done: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, pricing: Mapping[str, Price], observers: Sequence[Observer]) -> Observation:
        return cls(time.perf_counter(), pricing, observers)

    def labels(self) -> tuple[str, str, str]:
        return self.prompt, self.version, self.variant

    def usage(self, usage: Any) -> None:
        """Add a `usage` object the upstream reported (anything malformed is ignored)."""
        if not isinstance(usage, dict):
            return
        tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        tokens_in = tokens_in if isinstance(tokens_in, int) and tokens_in >= 0 else None
        tokens_out = tokens_out if isinstance(tokens_out, int) and tokens_out >= 0 else None
        if tokens_in is not None:
            self.tokens_in = (self.tokens_in or 0) + tokens_in
        if tokens_out is not None:
            self.tokens_out = (self.tokens_out or 0) + tokens_out
        cost = cost_usd(self.pricing, self.model, tokens_in, tokens_out) if self.model else None
        if cost:
            self.cost_usd += cost

    def keep_stream(self, data: bytes) -> None:
        """Keep a captured stream's bytes, up to MAX_SAMPLE_BYTES (past it: not captured)."""
        if self.stream_body is None:
            return
        if len(self.stream_body) + len(data) > MAX_SAMPLE_BYTES:
            self.stream_body = None
            return
        self.stream_body += data

    def first_token(self) -> None:
        self.first_token_s = time.perf_counter() - self.started

    def finish(self, status: int, error: str | None = None) -> None:
        """Record the outcome and hand the observation to every observer (once)."""
        if self.done:
            return
        self.done = True
        self.status, self.error = status, error
        self.seconds = time.perf_counter() - self.started
        for observer in self.observers:
            observer(self)


Observer = Callable[[Observation], None]


class GatewayMetrics:
    """The gateway's Prometheus metrics, per prompt, version and variant (own registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["prompt", "version", "variant"]
        self.requests = Counter(
            "promptyard_gateway_requests",
            "Chat requests by prompt, version, variant and HTTP status.",
            [*labels, "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "promptyard_gateway_errors",
            "Failed chat requests by kind (invalid_request, not_found, invalid_variables, "
            "upstream_<status>, upstream_unreachable, upstream_timeout, stream_interrupted, ...).",
            [*labels, "kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "promptyard_gateway_request_seconds",
            "Time from the request to the last byte of the answer.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "promptyard_gateway_time_to_first_token_seconds",
            "Streams: time from the request to the first content token.",
            labels,
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "promptyard_gateway_tokens",
            "Tokens by kind (prompt, completion), as the upstream reported them.",
            [*labels, "kind"],
            registry=self.registry,
        )
        self.cost = Counter(
            "promptyard_gateway_cost_usd",
            "Cost in USD from the pricing table of promptyard.yaml.",
            labels,
            registry=self.registry,
        )
        # The rollout controller's cost-per-request test needs each request's variance.
        self.cost_squared = Counter(
            "promptyard_gateway_cost_usd_squared",
            "Sum of each request's squared cost in USD (for the variance of cost per request).",
            labels,
            registry=self.registry,
        )

    def observe(self, seen: Observation) -> None:
        """The observer that counts a finished request."""
        labels = seen.labels()
        if seen.first_token_s is not None:
            self.ttft.labels(*labels).observe(seen.first_token_s)
        if seen.tokens_in is not None:
            self.tokens.labels(*labels, "prompt").inc(seen.tokens_in)
        if seen.tokens_out is not None:
            self.tokens.labels(*labels, "completion").inc(seen.tokens_out)
        if seen.cost_usd:
            self.cost.labels(*labels).inc(seen.cost_usd)
            self.cost_squared.labels(*labels).inc(seen.cost_usd * seen.cost_usd)
        self.requests.labels(*labels, str(seen.status)).inc()
        self.latency.labels(*labels).observe(seen.seconds)
        if seen.error is not None:
            self.errors.labels(*labels, seen.error).inc()
