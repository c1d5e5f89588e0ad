"""The OpenAI-compatible gateway (`promptyard gateway`): managed prompts in front of vLLM.

`POST /v1/chat/completions` with `model: "prompt:<name>"` (or `prompt:<name>@<label>`,
`prompt:<name>@<version>`) renders the prompt through the registry with the request's
`variables` (the OpenAI SDK sends them with `extra_body={"variables": {...}}`); the canary is
sticky on the request's `user`. The gateway then calls the upstream that serves the prompt's
model with the rendered messages (any `messages` in the request are appended after them) and
the prompt's parameters (they win over the request's; other request fields such as `stream`,
`user` or `seed` pass through), and returns the upstream's answer as it is, with the headers
`X-Promptyard-Prompt`, `X-Promptyard-Version`, `X-Promptyard-Variant` and
`X-Promptyard-Upstream`. Streams (server-sent events) are relayed event by event as they
arrive. Any other `model` goes to the upstream serving that name, else to the default
upstream, untouched; so do other `/v1/*` paths (embeddings, completions, models).

Errors: 400 unreadable body, 404 unknown prompt/version/label (or a model nothing serves),
413 body too large, 422 bad request or variables, 502 upstream unreachable (named), 503 no
registry, 504 upstream timeout; an upstream's own error keeps its status and body.

`/metrics` (Prometheus) counts per prompt, version and variant: requests by status, errors
by kind, latency, time to first token of streams, prompt and completion tokens, and cost
from the pricing table.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import semver
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as prometheus_text
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from promptyard.errors import ConfigError, InfraError
from promptyard.evals.pricing import cost_usd
from promptyard.evals.providers.base import ChatRequest
from promptyard.registry.service import read_json_body
from promptyard.registry.snapshot import PromptNotFound, RenderResult
from promptyard.render import RenderError, VariablesError
from promptyard.spec.config import Price

log = logging.getLogger("promptyard.gateway")

PROMPT_PREFIX = "prompt:"
MAX_BODY_BYTES = 16 << 20  # long contexts and images travel in chat bodies
UNKNOWN = "_unknown"  # metric label of prompt names that do not exist (bounded cardinality)
UNMANAGED = "_unmanaged"  # metric label of requests for a plain model
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Request headers the gateway passes on to an upstream (the rest are hop-by-hop or its own).
FORWARDED_HEADERS = ("authorization", "openai-organization", "openai-project", "x-request-id")
RESPONSE_HEADERS = ("content-type", "x-request-id", "retry-after", "retry-after-ms")


# --- configuration ------------------------------------------------------------------------------


class Endpoint(BaseModel):
    """An upstream: an OpenAI-compatible base URL, and where its API key comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://\S+$")
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class GatewayConfig(BaseModel):
    """What the gateway routes where (`serving manifests` writes it into a ConfigMap)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = "production"
    endpoints: dict[str, Endpoint] = Field(default_factory=dict)
    models: dict[str, str] = Field(
        default_factory=dict, description="Served model name -> endpoint name."
    )
    default_upstream: str | None = Field(None, description="An endpoint name.")
    pricing: dict[str, Price] = Field(default_factory=dict)
    timeout_s: float = Field(600, gt=0)
    connect_timeout_s: float = Field(5, gt=0)
    max_body_bytes: int = Field(MAX_BODY_BYTES, ge=1024)

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        for model, endpoint in self.models.items():
            if endpoint not in self.endpoints:
                raise ValueError(f"model {model!r} routes to unknown endpoint {endpoint!r}")
        if self.default_upstream is not None and self.default_upstream not in self.endpoints:
            raise ValueError(f"default_upstream {self.default_upstream!r} is not an endpoint")
        return self

    @classmethod
    def load(cls, path: Path) -> GatewayConfig:
        """Read a gateway config file (JSON); ConfigError naming the problem."""
        from promptyard.documents import parse_json_value

        try:
            data = parse_json_value(path.read_text(encoding="utf-8"))
            return cls.model_validate(data)
        except OSError as exc:
            raise ConfigError(f"--config {path}: cannot read ({exc.strerror or exc})") from None
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, ValidationError):
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in first["loc"]) or "file"
                raise ConfigError(f"--config {path}: {where}: {first['msg']}") from None
            raise ConfigError(f"--config {path}: not valid JSON ({exc})") from None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class Upstream:
    """A resolved endpoint: its name, chat URL and the headers it needs."""

    name: str
    base_url: str
    api_key: str | None

    def describe(self) -> str:
        return f"{self.name} ({self.base_url})"


def _upstreams(config: GatewayConfig, environ: Mapping[str, str]) -> dict[str, Upstream]:
    out = {}
    for name, endpoint in config.endpoints.items():
        key = environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
        out[name] = Upstream(name, endpoint.url.rstrip("/"), key or None)
    return out


# --- metrics ------------------------------------------------------------------------------------


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


@dataclass
class _Call:
    """One request's bookkeeping: its metric labels, timings and usage."""

    metrics: GatewayMetrics
    pricing: Mapping[str, Price]
    started: float
    prompt: str = UNMANAGED
    version: str = ""
    variant: str = ""
    model: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    done: bool = False

    def labels(self) -> tuple[str, str, str]:
        return self.prompt, self.version, self.variant

    def usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        tokens_in = tokens_in if isinstance(tokens_in, int) and tokens_in >= 0 else None
        tokens_out = tokens_out if isinstance(tokens_out, int) and tokens_out >= 0 else None
        if tokens_in is not None:
            self.metrics.tokens.labels(*self.labels(), "prompt").inc(tokens_in)
        if tokens_out is not None:
            self.metrics.tokens.labels(*self.labels(), "completion").inc(tokens_out)
        cost = cost_usd(self.pricing, self.model, tokens_in, tokens_out) if self.model else None
        if cost:
            self.metrics.cost.labels(*self.labels()).inc(cost)

    def first_token(self) -> None:
        self.metrics.ttft.labels(*self.labels()).observe(time.perf_counter() - self.started)

    def finish(self, status: int, error: str | None = None) -> None:
        if self.done:
            return
        self.done = True
        labels = self.labels()
        self.metrics.requests.labels(*labels, str(status)).inc()
        self.metrics.latency.labels(*labels).observe(time.perf_counter() - self.started)
        if error is not None:
            self.metrics.errors.labels(*labels, error).inc()


def _error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


# --- the prompt reference in `model` ----------------------------------------------------------------


@dataclass(frozen=True)
class PromptRef:
    name: str
    label: str | None
    version: str | None


def parse_prompt_model(model: str, default_label: str) -> PromptRef:
    """`prompt:<name>[@<label>|@<version>]` -> PromptRef; ValueError when malformed."""
    rest = model[len(PROMPT_PREFIX) :]
    name, sep, selector = rest.partition("@")
    if not name or (sep and not selector):
        raise ValueError(
            f"model {model!r} is not prompt:<name>, prompt:<name>@<label> or "
            "prompt:<name>@<version>"
        )
    if selector and semver.Version.is_valid(selector):
        return PromptRef(name, None, selector)
    return PromptRef(name, selector or default_label, None)


# --- the app --------------------------------------------------------------------------------------


class Gateway:
    """The gateway's state: routing, the registry, the pooled upstream client, metrics."""

    def __init__(
        self,
        registry: Any,
        config: GatewayConfig,
        *,
        environ: Mapping[str, str] | None = None,
        metrics: GatewayMetrics | None = None,
        registry_blocks: bool = False,
    ) -> None:
        self.registry = registry
        self.config = config
        self.metrics = metrics or GatewayMetrics()
        self.upstreams = _upstreams(config, os.environ if environ is None else environ)
        # A server-backed registry may fetch over HTTP on a cache miss: keep that off the loop.
        self.registry_blocks = registry_blocks
        self.client: aiohttp.ClientSession | None = None

    def open(self) -> None:
        """Create the pooled upstream client (inside the running event loop)."""
        if self.client is None:
            # aiohttp, not httpx: httpcore's pool rescans (and polls) every connection on each
            # request and release, which at 32 streams cost the gateway ~4x the CPU per stream
            # (tests/benchmarks/bench_gateway.py).
            self.client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.config.connect_timeout_s,
                    sock_read=self.config.timeout_s,
                ),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    def route(self, model: str) -> Upstream | None:
        """The upstream serving `model`, else the default upstream, else None."""
        name = self.config.models.get(model) or self.config.default_upstream
        return self.upstreams.get(name) if name else None

    async def render(self, ref: PromptRef, variables: dict[str, Any], key: str | None) -> Any:
        call: Callable[[], RenderResult] = lambda: self.registry.render(  # noqa: E731
            ref.name, variables, label=ref.label or self.config.label, key=key, version=ref.version
        )
        if self.registry_blocks:
            return await run_in_threadpool(call)
        return call()

    def headers_for(self, upstream: Upstream, request: Request) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        for name in FORWARDED_HEADERS:
            value = request.headers.get(name)
            if value is not None:
                headers[name] = value
        if upstream.api_key:  # the endpoint's own key replaces whatever the client sent
            headers["authorization"] = f"Bearer {upstream.api_key}"
        return headers


def create_gateway_app(
    registry: Any,
    config: GatewayConfig,
    *,
    environ: Mapping[str, str] | None = None,
    metrics: GatewayMetrics | None = None,
    registry_blocks: bool = False,
) -> Starlette:
    """The Starlette app of the gateway over a `promptyard.Registry`.

    `registry_blocks`: the registry may block (a server-backed one fetching on a cache miss),
    so rendering runs in a worker thread. The app closes its upstream client at shutdown; the
    registry belongs to the caller.
    """
    gateway = Gateway(
        registry, config, environ=environ, metrics=metrics, registry_blocks=registry_blocks
    )

    async def chat_completions(request: Request) -> Response:
        call = _Call(gateway.metrics, config.pricing, time.perf_counter())
        raw, body, problem = await read_json_body(request, config.max_body_bytes)
        if problem is not None:
            call.finish(problem.status_code, "invalid_request")
            return problem
        model = body.get("model")
        if not isinstance(model, str) or not model:
            call.finish(422, "invalid_request")
            return _error(422, "invalid_request", "`model` must be a non-empty string")
        if model.startswith(PROMPT_PREFIX):
            return await _managed(request, body, model, call)
        call.model = model
        upstream = gateway.route(model)
        if upstream is None:
            call.finish(404, "no_upstream")
            known = ", ".join(sorted(config.models)) or "none"
            return _error(
                404,
                "model_not_found",
                f"no upstream serves model {model!r} and there is no default upstream; "
                f"served models: {known}; managed prompts are prompt:<name>",
            )
        stream = body.get("stream") is True
        return await _forward(request, upstream, raw, stream, False, call)  # byte for byte

    async def _managed(request: Request, body: dict[str, Any], model: str, call: _Call) -> Response:
        try:
            ref = parse_prompt_model(model, config.label)
        except ValueError as exc:
            call.finish(422, "invalid_request")
            return _error(422, "invalid_request", str(exc))
        variables = body.get("variables", {})
        user = body.get("user")
        extra = body.get("messages", [])
        invalid = _request_problem(variables, user, extra)
        if invalid:
            call.finish(422, "invalid_request")
            return _error(422, "invalid_request", invalid)
        # Metric labels carry a prompt name only once the registry knows it: names from
        # requests must not grow the label set.
        call.prompt = UNKNOWN
        try:
            result = await gateway.render(ref, variables, user)
        except PromptNotFound as exc:
            call.finish(404, "not_found")
            return _error(404, "not_found", exc.message)
        except VariablesError as exc:
            call.prompt = ref.name
            call.finish(422, "invalid_variables")
            return _error(422, "invalid_variables", exc.message, problems=exc.problems)
        except RenderError as exc:
            call.prompt = ref.name
            call.finish(422, "render_error")
            return _error(422, "render_error", exc.message)
        except (InfraError, ConfigError) as exc:
            call.finish(503, "registry_unavailable")
            return _error(503, "registry_unavailable", f"the registry cannot answer: {exc.message}")
        call.prompt, call.version, call.variant = result.name, result.version, result.variant
        call.model = result.model
        call.headers = {
            "x-promptyard-prompt": result.name,
            "x-promptyard-version": result.version,
            "x-promptyard-variant": result.variant,
        }
        upstream = gateway.route(result.model)
        if upstream is None:
            call.finish(502, "no_upstream")
            return _error(
                502,
                "no_upstream",
                f"{result.name} {result.version} uses model {result.model!r}, which no upstream "
                "serves, and there is no default upstream",
            )
        out = ChatRequest(
            result.model,
            [*result.messages, *extra],
            result.parameters,
            result.output_format == "json",
        ).body()
        for key, value in body.items():
            if key not in ("model", "messages", "variables"):
                out.setdefault(key, value)  # the prompt's parameters win
        stream = out.get("stream") is True
        strip_usage = False
        if stream:
            options = out.get("stream_options")
            if not (isinstance(options, dict) and options.get("include_usage")):
                # Ask for usage (for the token and cost metrics) and keep the extra chunk from
                # a client that did not ask for it.
                out["stream_options"] = {**(options or {}), "include_usage": True}
                strip_usage = True
        payload = json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()
        return await _forward(request, upstream, payload, stream, strip_usage, call)

    async def _forward(
        request: Request,
        upstream: Upstream,
        payload: bytes,
        stream: bool,
        strip_usage: bool,
        call: _Call,
    ) -> Response:
        assert gateway.client is not None, "the gateway's lifespan did not run"
        call.headers["x-promptyard-upstream"] = upstream.name
        url = f"{upstream.base_url}{_suffix(request.url.path)}"
        headers = gateway.headers_for(upstream, request)
        try:
            response = await gateway.client.post(url, data=payload, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, kind, message = _failure(upstream, exc)
            call.finish(status, kind)
            return _error(status, kind, message, upstream=upstream.name)
        passed = {k: v for k in RESPONSE_HEADERS if (v := response.headers.get(k)) is not None}
        if not stream or response.status != 200:
            try:
                content = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, kind, message = _failure(upstream, exc, "broke off its answer")
                call.finish(status, kind)
                return _error(status, kind, message, upstream=upstream.name)
            finally:
                response.release()
            status = response.status
            if status == 200:
                call.usage(_usage_of(content))
            call.finish(status, None if status < 400 else f"upstream_{status}")
            return Response(content, status, headers={**passed, **call.headers})
        relay = _relay(response, upstream, strip_usage, call)
        return StreamingResponse(relay, 200, headers={**passed, **call.headers})

    async def passthrough(request: Request) -> Response:
        """Other /v1/* paths go to the default upstream as they are."""
        upstream = gateway.route("")
        if upstream is None:
            return _error(404, "not_found", f"no default upstream for {request.url.path}")
        assert gateway.client is not None
        url = f"{upstream.base_url}{_suffix(request.url.path)}"
        if request.url.query:
            url += f"?{request.url.query}"
        headers = gateway.headers_for(upstream, request)
        try:
            async with gateway.client.request(
                request.method, url, data=await request.body(), headers=headers
            ) as response:
                content = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, kind, message = _failure(upstream, exc)
            return _error(status, kind, message, upstream=upstream.name)
        passed = {k: v for k in RESPONSE_HEADERS if (v := response.headers.get(k)) is not None}
        return Response(
            content, response.status, headers={**passed, "x-promptyard-upstream": upstream.name}
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        # Ready once started: pass-through needs no prompts, and a server-backed registry
        # (or its fallback bundle) is asked on demand.
        return JSONResponse(
            {
                "ready": True,
                "revision": gateway.registry.revision,
                "upstreams": sorted(gateway.upstreams),
            }
        )

    async def metrics_endpoint(request: Request) -> Response:
        return Response(prometheus_text(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway.open()
        try:
            yield
        finally:
            await gateway.close()

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/v1/{path:path}", passthrough, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    return app


def _suffix(path: str) -> str:
    """The part of a request path after `/v1` (upstream base URLs end in /v1)."""
    return path[3:] if path.startswith("/v1/") else path


def _request_problem(variables: Any, user: Any, messages: Any) -> str | None:
    if not isinstance(variables, dict):
        return "`variables` must be a JSON object of variable names to values"
    if user is not None and not isinstance(user, str):
        return "`user` must be a string"
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
    ):
        return "`messages` must be a list of {role, content} objects (appended after the prompt's)"
    return None


def _usage_of(content: bytes) -> Any:
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return data.get("usage") if isinstance(data, dict) else None


def _event_data(event: bytes) -> Any:
    """The JSON of an SSE event's `data:` line (None for [DONE], comments, garbage)."""
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            raw = line[5:].strip()
            if not raw or raw == b"[DONE]":
                return None
            try:
                return json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                return None
    return None


def _has_content(data: Any) -> bool:
    try:
        for choice in data["choices"]:
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
                return True
    except (KeyError, TypeError, AttributeError):
        return False
    return False


def _split_events(buffer: bytearray) -> list[bytes]:
    """Remove and return the complete SSE events (ending in a blank line) from `buffer`."""
    events: list[bytes] = []
    while True:
        lf = buffer.find(b"\n\n")
        crlf = buffer.find(b"\r\n\r\n")
        if lf < 0 and crlf < 0:
            return events
        end = crlf + 4 if crlf >= 0 and (lf < 0 or crlf < lf) else lf + 2
        events.append(bytes(buffer[:end]))
        del buffer[:end]


def _failure(
    upstream: Upstream, exc: BaseException, what: str = "is unreachable"
) -> tuple[int, str, str]:
    """(status, error type, message) for an upstream call that failed."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return 504, "upstream_timeout", f"upstream {upstream.describe()} did not answer in time"
    detail = str(exc) or type(exc).__name__
    return (
        502,
        "upstream_unreachable",
        (f"upstream {upstream.describe()} {what}: {type(exc).__name__}: {detail}"),
    )


async def _relay(
    response: aiohttp.ClientResponse, upstream: Upstream, strip_usage: bool, call: _Call
) -> AsyncIterator[bytes]:
    """Relay an upstream SSE stream event by event, watching for the first token and usage."""
    buffer = bytearray()
    seen_token = False
    error: str | None = None
    try:
        async for chunk in response.content.iter_any():
            buffer += chunk
            out = bytearray()
            for event in _split_events(buffer):
                keep = True
                if not seen_token or b'"usage"' in event:
                    data = _event_data(event)
                    if not seen_token and _has_content(data):
                        seen_token = True
                        call.first_token()
                    if isinstance(data, dict) and isinstance(data.get("usage"), dict):
                        call.usage(data["usage"])
                        keep = not (strip_usage and not data.get("choices"))
                if keep:
                    out += event
            if out:
                yield bytes(out)
        if buffer:
            yield bytes(buffer)
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = "stream_interrupted"
        message = f"upstream {upstream.describe()} broke off the stream: {type(exc).__name__}"
        log.warning("%s", message)
        payload = json.dumps({"error": {"type": "upstream_error", "message": message}})
        yield f"data: {payload}\n\n".encode()
    except BaseException:  # the client went away (cancelled): count it, then let it propagate
        error = "client_disconnected"
        raise
    finally:
        if error is None:
            response.release()  # read to the end: the connection goes back to the pool
        else:
            response.close()
        call.finish(200, error)
