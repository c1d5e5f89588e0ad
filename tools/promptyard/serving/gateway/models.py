"""`GET /v1/models`: what a client of the gateway may ask for, in OpenAI's list format.

The list holds, each model once (the first entry wins):

1. the managed prompts the gateway's label pins, as `prompt:<name>` (owned by `promptyard`);
2. the served names of the routing table (owned by the endpoint serving them);
3. the default upstream's own `GET /models` list (if there is a default upstream), its
   entries as the upstream sent them.

Entries the gateway makes itself are `created` when the gateway started. The list never
fails as a whole: when the registry or the default upstream cannot answer (unreachable, an
error status, garbage, or no answer within `connect_timeout_s`), its part is left out, the
answer names it in the header `X-Promptyard-Unavailable` (`registry`, `upstream <name>`) and
the gateway logs a warning.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from promptyard.errors import ConfigError, InfraError
from promptyard.serving.gateway.runtime import Gateway
from promptyard.serving.gateway.stages import PROMPT_PREFIX

log = logging.getLogger("promptyard.gateway")

PROMPT_OWNER = "promptyard"


async def list_models(gateway: Gateway, request: Request) -> Response:
    prompts, upstream = await asyncio.gather(
        prompt_models(gateway), default_upstream_models(gateway, request)
    )
    unavailable = []
    if prompts is None:
        unavailable.append("registry")
    if upstream is None:
        unavailable.append(f"upstream {gateway.config.default_upstream}")
    seen: set[str] = set()
    data = []
    for entry in [*(prompts or []), *routed_models(gateway), *(upstream or [])]:
        if entry["id"] not in seen:
            seen.add(entry["id"])
            data.append(entry)
    headers = {"x-promptyard-unavailable": ", ".join(unavailable)} if unavailable else None
    return JSONResponse({"object": "list", "data": data}, headers=headers)


def model_entry(model_id: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owner}


async def prompt_models(gateway: Gateway) -> list[dict[str, Any]] | None:
    """`prompt:<name>` for every prompt the gateway's label pins (what `prompt:<name>`
    serves); None when the registry cannot answer."""
    try:
        catalog = await gateway.call_registry(gateway.registry.catalog)
    except (InfraError, ConfigError) as exc:
        log.warning("GET /v1/models: the registry cannot list its prompts: %s", exc.message)
        return None
    label = gateway.config.label
    return [
        model_entry(f"{PROMPT_PREFIX}{entry['name']}", PROMPT_OWNER, gateway.started)
        for entry in catalog
        if isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and label in (entry.get("labels") or {})
    ]


def routed_models(gateway: Gateway) -> list[dict[str, Any]]:
    """The routing table's served names, each owned by the endpoint serving it."""
    return [
        model_entry(model, endpoint, gateway.started)
        for model, endpoint in sorted(gateway.config.models.items())
    ]


async def default_upstream_models(
    gateway: Gateway, request: Request
) -> list[dict[str, Any]] | None:
    """The default upstream's own list ([] without one; None when it does not answer)."""
    name = gateway.config.default_upstream
    if name is None:
        return []
    upstream = gateway.upstreams[name]
    assert gateway.client is not None, "the lifespan did not run"
    try:
        async with gateway.client.get(
            f"{upstream.base_url}/models",
            headers=gateway.headers_for(upstream, request),
            timeout=aiohttp.ClientTimeout(total=gateway.config.connect_timeout_s),
        ) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            body = await response.json(content_type=None)
        entries = body["data"]
        if not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries):
            raise ValueError("an entry without an `id`")
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
        log.warning(
            "GET /v1/models: upstream %s did not list its models: %s",
            upstream.describe(),
            f"{type(exc).__name__}: {exc}",
        )
        return None
    return list(entries)
