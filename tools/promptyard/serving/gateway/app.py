"""The gateway's Starlette app: its routes, over one `Gateway`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import generate_latest as prometheus_text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from promptyard.allocation import LiveAllocations
from promptyard.events import EventRecorder, EventStore
from promptyard.registry.service import error_response, feedback_response
from promptyard.serving.gateway.captures import CaptureObserver
from promptyard.serving.gateway.exposures import ExposureObserver
from promptyard.serving.gateway.models import list_models
from promptyard.serving.gateway.observe import GatewayMetrics
from promptyard.serving.gateway.runtime import Gateway
from promptyard.serving.gateway.stages import chat_completions
from promptyard.serving.gateway.traces import TraceObserver
from promptyard.serving.gateway.upstream import pass_through
from promptyard.spec.gateway import GatewayConfig


def create_gateway_app(
    registry: Any,
    config: GatewayConfig,
    *,
    environ: Mapping[str, str] | None = None,
    metrics: GatewayMetrics | None = None,
    registry_blocks: bool = False,
    events: EventStore | None = None,
) -> Starlette:
    """The Starlette app of the gateway over a `promptyard.Registry`.

    `registry_blocks`: the registry may block (a server-backed one fetching on a cache miss),
    so registry calls run in a worker thread. With `events`, assigned requests are
    exposures and `POST /v1/feedback` takes outcomes. The app closes its upstream client at shutdown;
    the registry belongs to the caller.
    """
    gateway = Gateway(
        registry, config, environ=environ, metrics=metrics, registry_blocks=registry_blocks
    )
    recorder = EventRecorder(events, gateway.metrics.registry) if events is not None else None
    learn = getattr(registry, "learn_allocations", None)
    allocations = learn(events) if learn is not None else None
    if recorder is not None:
        gateway.observers.append(ExposureObserver(recorder))
        if config.capture:
            gateway.capture = CaptureObserver(recorder, config.capture)
            gateway.observers.append(gateway.capture)
    traces = TraceObserver.from_environment(os.environ if environ is None else environ)
    if traces is not None:
        gateway.observers.append(traces)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway.open()
        if allocations is not None:
            allocations.start()
        try:
            yield
        finally:
            await gateway.close()
            if allocations is not None:
                allocations.close()
            if traces is not None:
                traces.shutdown()  # exports the spans still pending

    def on(handler: Any) -> Any:
        return partial(handler, gateway)

    routes = [
        Route("/v1/chat/completions", on(chat_completions), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", on(readyz), methods=["GET"]),
        Route("/metrics", on(metrics_text), methods=["GET"]),
        Route("/v1/models", on(list_models), methods=["GET"]),
        Route("/v1/feedback", partial(feedback_response, recorder), methods=["POST"]),
        Route("/v1/experiments", partial(experiments_status, allocations), methods=["GET"]),
        Route("/v1/{path:path}", on(pass_through), methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    return app


async def experiments_status(allocations: LiveAllocations | None, request: Request) -> Response:
    """`GET /v1/experiments`: the live weights of `allocation: thompson` experiments (a
    gateway with --registry follows the registry service's: ask it)."""
    return JSONResponse(allocations.status() if allocations else {"experiments": []})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(gateway: Gateway, request: Request) -> Response:
    # Ready while the registry (or a server-backed one's cache or fallback bundle) can answer:
    # otherwise every prompt request would get 503, so no traffic should be sent here.
    reason = await gateway.unready_reason()
    if reason is not None:
        return error_response(503, "not_ready", reason)
    return JSONResponse(
        {
            "ready": True,
            "revision": gateway.registry.revision,
            "upstreams": sorted(gateway.upstreams),
        }
    )


async def metrics_text(gateway: Gateway, request: Request) -> Response:
    return Response(prometheus_text(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
