"""The registry HTTP service (`promptyard serve`): a Starlette app over a `Reconciler`.

Endpoints (JSON unless noted):

- `GET  /healthz`                      the process is up
- `GET  /readyz`                       200 once a snapshot is served, else 503
- `GET  /v1/prompts`                   every prompt, its tagged versions and label pins
- `GET  /v1/prompts/{name}`            `?version=V` or `?label=L` (default production), `&key=K`
- `POST /v1/prompts/{name}/render`     `{"variables": {...}, "label", "version", "key"}`
- `POST /v1/feedback`                  outcome events `{unit, metric, value[, time]}` (202)
- `GET  /v1/experiments`               live weights of `allocation: thompson` experiments
- `GET  /v1/status`                    source, synced commit, revision, Synced/Degraded + reason
- `POST /v1/reconcile`                 reconcile now (for a git webhook); returns the outcome
- `GET  /metrics`                      Prometheus text format
- `GET  /beta/litellm_prompt_management` LiteLLM's Generic Prompt Management API (`litellm.py`)

Errors are `{"error": {"type", "message"}}`: 400 unreadable body, 404 unknown prompt, version
or label, 413 body too large, 422 bad variables or a template that fails on them, 503 nothing
to serve yet. Client input never causes a 500.

Every request reads `reconciler.snapshot` once, so it is answered from one consistent
snapshot even while the reconciler swaps in a new one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from promptyard.allocation import LiveAllocations
from promptyard.events import EventRecorder, EventStore, InvalidEvent, parse_feedback
from promptyard.registry.litellm import litellm_routes
from promptyard.registry.reconcile import ReconcileOutcome, Reconciler
from promptyard.registry.render_workers import RenderWorkers
from promptyard.registry.snapshot import DEFAULT_LABEL, PromptNotFound, ServedSnapshot
from promptyard.render import RenderError, RenderResult, VariablesError

log = logging.getLogger("promptyard.registry")

MAX_BODY_BYTES = 1 << 20
MAX_FEEDBACK_BYTES = MAX_BODY_BYTES
RENDER_FIELDS = {"variables", "label", "version", "key"}
UNKNOWN = "_unknown"  # the metric label of names not in the snapshot (bounded cardinality)
LATENCY_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


class Metrics:
    """The service's Prometheus metrics, in their own registry (one per app)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "promptyard_requests",
            "Prompt requests by endpoint, prompt, version, variant and HTTP status.",
            ["endpoint", "prompt", "version", "variant", "status"],
            registry=self.registry,
        )
        self.render_seconds = Histogram(
            "promptyard_render_seconds",
            "Time to resolve and render a prompt (server side).",
            ["prompt"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reconciles = Counter(
            "promptyard_reconciles",
            "Reconcile attempts by outcome (applied, unchanged, refused, unreachable, error).",
            ["outcome"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "promptyard_reconcile_seconds",
            "Duration of a reconcile (pull, build, verify, swap).",
            registry=self.registry,
        )
        self.revision = Gauge(
            "promptyard_revision_info",
            "The revision (bundle hash) and commit being served (value 1).",
            ["revision", "commit", "serving"],
            registry=self.registry,
        )
        self.degraded = Gauge(
            "promptyard_degraded",
            "1 when the last reconcile failed and an older snapshot (or the fallback) serves.",
            registry=self.registry,
        )
        self.snapshot_time = Gauge(
            "promptyard_snapshot_timestamp_seconds",
            "When the served snapshot was built (Unix time).",
            registry=self.registry,
        )
        self._served: tuple[str, str, str] | None = None

    def observe_reconcile(self, outcome: ReconcileOutcome, snapshot: ServedSnapshot | None) -> None:
        self.reconciles.labels(outcome.outcome).inc()
        self.reconcile_seconds.observe(outcome.seconds)
        self.degraded.set(
            1 if outcome.outcome in ("refused", "unreachable", "error", "fallback") else 0
        )
        if snapshot is not None:
            served = (
                snapshot.revision,
                snapshot.commit,
                "fallback-bundle" if snapshot.is_fallback else "source",
            )
            if served != self._served:
                if self._served is not None:
                    self.revision.remove(*self._served)
                self.revision.labels(*served).set(1)
                self._served = served
                self.snapshot_time.set(snapshot.built_at)


def error_response(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    """The JSON error answer `{"error": {"type", "message", ...}}` (the gateway's too)."""
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


def _not_ready() -> JSONResponse:
    return error_response(503, "not_ready", "no snapshot is being served yet; see /v1/status")


def create_app(
    reconciler: Reconciler, *, metrics: Metrics | None = None, events: EventStore | None = None
) -> Starlette:
    """The Starlette app serving what `reconciler` holds.

    With `events`, every render a running experiment assigned is an exposure, and
    `POST /v1/feedback` takes outcomes (without, it answers 503).

    The app does not start the reconcile loop (`promptyard serve` does, with
    `reconciler.start`); when the app shuts down it closes the reconciler.
    """
    metrics = metrics or Metrics()
    reconciler.listeners.append(metrics.observe_reconcile)
    if reconciler.last_outcome is not None:  # reflect what happened before the app existed
        metrics.observe_reconcile(reconciler.last_outcome, reconciler.snapshot)
    recorder = EventRecorder(events, metrics.registry) if events is not None else None
    allocations = LiveAllocations.of(reconciler, events)
    service = _Service(reconciler, metrics, RenderWorkers(), recorder, allocations)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        allocations.start()
        try:
            yield
        finally:
            await run_in_threadpool(allocations.close)
            await run_in_threadpool(reconciler.close)

    def on(handler: Callable[[_Service, Request], Awaitable[Response]]) -> Any:
        return partial(handler, service)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", on(readyz), methods=["GET"]),
        Route("/v1/prompts", on(list_prompts), methods=["GET"]),
        Route("/v1/prompts/{name:path}/render", on(render_prompt), methods=["POST"]),
        Route("/v1/prompts/{name:path}", on(get_prompt), methods=["GET"]),
        Route("/v1/status", on(status), methods=["GET"]),
        Route("/v1/feedback", on(take_feedback), methods=["POST"]),
        Route("/v1/experiments", on(experiments_status), methods=["GET"]),
        Route("/v1/reconcile", on(reconcile_now), methods=["POST"]),
        Route("/metrics", on(metrics_text), methods=["GET"]),
        *litellm_routes(on, _known),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.reconciler = reconciler
    app.state.metrics = metrics
    app.state.allocations = allocations
    return app


@dataclass(frozen=True)
class _Service:
    """What every request of one app shares."""

    reconciler: Reconciler
    metrics: Metrics
    renders: RenderWorkers
    events: EventRecorder | None = None
    allocations: LiveAllocations | None = None

    def count(self, endpoint: str, name: str, version: str, variant: str, status: int) -> None:
        self.metrics.requests.labels(endpoint, name, version, variant, str(status)).inc()


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(service: _Service, request: Request) -> Response:
    snapshot = service.reconciler.snapshot
    if snapshot is None:
        return _not_ready()
    return JSONResponse(
        {"ready": True, "revision": snapshot.revision, "state": service.reconciler.state}
    )


async def list_prompts(service: _Service, request: Request) -> Response:
    snapshot = service.reconciler.snapshot
    if snapshot is None:
        return _not_ready()
    return JSONResponse({"revision": snapshot.revision, "prompts": snapshot.catalog()})


async def get_prompt(service: _Service, request: Request) -> Response:
    """`GET /v1/prompts/{name}`: the resolution (`?version=`, `?label=`, `&key=`)."""
    snapshot = service.reconciler.snapshot
    if snapshot is None:
        return _not_ready()
    name = request.path_params["name"]
    params = request.query_params
    try:
        resolved = snapshot.resolve(
            name,
            params.get("version") or None,  # `?version=` means no version
            params.get("label") or DEFAULT_LABEL,
            params.get("key") or None,
            service.allocations,
        )
    except PromptNotFound as exc:
        service.count("get", _known(snapshot, name), "", "", 404)
        return error_response(404, "not_found", exc.message)
    service.count("get", name, resolved.version, resolved.variant, 200)
    return JSONResponse(resolved.to_dict())


async def render_prompt(service: _Service, request: Request) -> Response:
    """`POST /v1/prompts/{name}/render`: resolve as the body says, render its variables."""
    snapshot = service.reconciler.snapshot
    if snapshot is None:
        return _not_ready()
    name = request.path_params["name"]
    body, problem = await _read_json(request)
    if problem is None:
        problem = _render_request_problem(body)
    if problem is not None:
        service.count("render", _known(snapshot, name), "", "", problem.status_code)
        return problem
    started = time.perf_counter()
    label, version = body.get("label") or DEFAULT_LABEL, body.get("version") or None
    try:
        resolved = snapshot.resolve(name, version, label, body.get("key"), service.allocations)
    except PromptNotFound as exc:
        service.count("render", _known(snapshot, name), "", "", 404)
        return error_response(404, "not_found", exc.message)
    try:
        result = await service.renders.render(resolved, body.get("variables", {}))
    except VariablesError as exc:
        failed = error_response(422, "invalid_variables", exc.message, problems=exc.problems)
    except RenderError as exc:
        failed = error_response(422, "render_error", exc.message)
    else:
        service.metrics.render_seconds.labels(name).observe(time.perf_counter() - started)
        service.count("render", name, resolved.version, resolved.variant, 200)
        key = body.get("key")
        if service.events is not None and key is not None:
            service.events.exposure(result, key)
        return JSONResponse(result.to_dict(), headers=variant_headers(result))
    service.count("render", name, resolved.version, resolved.variant, 422)
    return failed


def variant_headers(rendered: RenderResult) -> dict[str, str]:
    """The response headers saying which prompt version (and experiment variant) served."""
    headers = {
        "x-promptyard-prompt": rendered.name,
        "x-promptyard-version": rendered.version,
        "x-promptyard-variant": rendered.variant,
    }
    if rendered.experiment is not None:
        headers["x-promptyard-experiment"] = rendered.experiment
    return headers


async def feedback_response(
    events: EventRecorder | None, request: Request, max_bytes: int = MAX_FEEDBACK_BYTES
) -> Response:
    """`POST /v1/feedback` (registry service and gateway): queue outcome events, 202.

    Malformed events are 422 (none of the batch is kept); a unit or metric no experiment
    knows is kept all the same (`experiment analyze` reports it as unmatched).
    """
    if events is None:
        return error_response(
            503, "no_event_store", "this server records no events (started with --no-events)"
        )
    _, body, problem = await read_json_body(request, max_bytes)
    if problem is not None:
        return problem
    try:
        outcomes = parse_feedback(body)
    except InvalidEvent as exc:
        return error_response(422, "invalid_event", str(exc))
    accepted = sum(events.record(outcome) for outcome in outcomes)
    return JSONResponse(
        {"accepted": accepted, "dropped": len(outcomes) - accepted}, status_code=202
    )


async def take_feedback(service: _Service, request: Request) -> Response:
    return await feedback_response(service.events, request)


async def experiments_status(service: _Service, request: Request) -> Response:
    """`GET /v1/experiments`: each `allocation: thompson` experiment's weights and changes."""
    assert service.allocations is not None
    return JSONResponse(service.allocations.status())


async def status(service: _Service, request: Request) -> Response:
    return JSONResponse(service.reconciler.status())


async def reconcile_now(service: _Service, request: Request) -> Response:
    outcome = await run_in_threadpool(service.reconciler.reconcile)
    return JSONResponse({"outcome": outcome.to_dict(), "status": service.reconciler.status()})


async def metrics_text(service: _Service, request: Request) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _known(snapshot: ServedSnapshot, name: str) -> str:
    """`name` as a metric label: only names the snapshot has (bounded cardinality)."""
    return name if name in snapshot.bundle.prompts else UNKNOWN


async def _read_json(request: Request) -> tuple[dict[str, Any], JSONResponse | None]:
    """The request body as a JSON object, or the 400/413 response that refuses it."""
    _, body, problem = await read_json_body(request, MAX_BODY_BYTES)
    return body, problem


async def read_json_body(
    request: Request, max_bytes: int
) -> tuple[bytes, dict[str, Any], JSONResponse | None]:
    """(raw bytes, the body as a JSON object, None), or the 400/413 response refusing it.

    An empty body is an empty object. Duplicate keys and NaN are refused like in files.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        return b"", {}, error_response(413, "too_large", f"request body over {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return b"", {}, error_response(413, "too_large", f"request body over {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return raw, {}, None  # an empty body renders with no variables
    try:
        from promptyard.documents import parse_json_value

        body = parse_json_value(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return raw, {}, error_response(400, "bad_request", f"the body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return raw, {}, error_response(400, "bad_request", "the body must be a JSON object")
    return raw, body, None


def _render_request_problem(body: dict[str, Any]) -> JSONResponse | None:
    """The 422 answer to a render body with unknown or mistyped fields, else None."""
    unknown = sorted(set(body) - RENDER_FIELDS)
    if unknown:
        message = f"unknown field {unknown[0]!r}; the body takes {', '.join(sorted(RENDER_FIELDS))}"
        return error_response(422, "invalid_request", message)
    if not isinstance(body.get("variables", {}), dict):
        message = "`variables` must be a JSON object of variable names to values"
        return error_response(422, "invalid_request", message)
    for field_name in ("label", "version", "key"):
        value = body.get(field_name)
        if value is not None and not isinstance(value, str):
            return error_response(422, "invalid_request", f"`{field_name}` must be a string")
    return None
