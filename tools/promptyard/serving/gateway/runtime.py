"""The gateway's state: routing, the registry, the pooled upstream client, the observers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from promptyard.errors import ConfigError, InfraError
from promptyard.registry.render_workers import RenderWorkers
from promptyard.registry.snapshot import ResolvedPrompt
from promptyard.serving.gateway.config import Upstream, resolve_upstreams
from promptyard.serving.gateway.observe import GatewayMetrics, Observer
from promptyard.serving.gateway.online import OnlineChecks
from promptyard.spec.gateway import GatewayConfig

# Request headers the gateway passes on to an upstream (the rest are hop-by-hop or its own).
FORWARDED_HEADERS = ("authorization", "openai-organization", "openai-project", "x-request-id")

if TYPE_CHECKING:
    from promptyard.serving.gateway.captures import CaptureObserver

T = TypeVar("T")


class Gateway:
    """What every request of one gateway app shares."""

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
        # Called with each finished chat request (the observe stage).
        self.online = OnlineChecks(config.online_quality, self.metrics.registry)
        self.observers: list[Observer] = [self.metrics.observe, self.online.observe]
        self.upstreams = resolve_upstreams(config, os.environ if environ is None else environ)
        # A server-backed registry may fetch over HTTP on a cache miss: keep that off the loop.
        self.registry_blocks = registry_blocks
        self.renders = RenderWorkers()  # a slow template finishes off the event loop
        self.client: aiohttp.ClientSession | None = None
        self.started = int(time.time())  # `created` of the models the gateway lists
        self.capture: CaptureObserver | None = None  # samples prompts that opted in

    def open(self) -> None:
        """Create the pooled upstream client (inside the running event loop)."""
        self.online.start()
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
        self.online.stop()

    def route(self, model: str) -> Upstream | None:
        """The upstream serving `model`, else the default upstream, else None."""
        name = self.config.models.get(model) or self.config.default_upstream
        return self.upstreams.get(name) if name else None

    async def call_registry(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, a registry call: in a worker thread when the registry may block."""
        if self.registry_blocks:
            return await run_in_threadpool(fn, *args)
        return fn(*args)

    async def resolve(
        self, name: str, label: str | None, version: str | None, key: str | None
    ) -> ResolvedPrompt:
        """The prompt version serving this request (label default: the gateway's)."""
        label = label or self.config.label
        return await self.call_registry(self.registry.get, name, version, label, key)

    async def unready_reason(self) -> str | None:
        """Why no prompt request could be answered now (the registry cannot list its
        prompts and has nothing cached: server down, no fallback), or None when ready."""
        try:
            await self.call_registry(self.registry.catalog)
        except (InfraError, ConfigError) as exc:
            if self.registry.revision is None:  # no cached version could answer either
                return f"the registry cannot answer: {exc.message}"
        return None

    def headers_for(self, upstream: Upstream, request: Request) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        for name in FORWARDED_HEADERS:
            value = request.headers.get(name)
            if value is not None:
                headers[name] = value
        if upstream.api_key:  # the endpoint's own key replaces whatever the client sent
            headers["authorization"] = f"Bearer {upstream.api_key}"
        return headers


def require_served_label(registry: Any, label: str) -> None:
    """ConfigError (exit 2) when `label` is no environment the registry pins prompts in.

    A registry that cannot answer yet (server down, no fallback) is not a usage error: the
    gateway starts and `/readyz` says it is not ready.
    """
    try:
        catalog = registry.catalog()
    except InfraError:
        return
    known = sorted({name for prompt in catalog for name in prompt.get("labels", {})})
    if label not in known:
        raise ConfigError(
            f"--label {label!r} is not an environment of the registry; known: "
            f"{', '.join(known) or 'none (no environment pins a prompt)'}"
        )
