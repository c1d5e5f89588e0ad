"""Talking to an upstream: failures as answers, server-sent events relayed as they come,
and the pass-through of other `/v1/*` paths."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.requests import Request
from starlette.responses import Response

from promptyard.registry.service import error_response
from promptyard.serving.gateway.config import Upstream
from promptyard.serving.gateway.observe import Observation
from promptyard.serving.gateway.runtime import Gateway

log = logging.getLogger("promptyard.gateway")

# Upstream response headers the gateway passes back to the client.
RESPONSE_HEADERS = ("content-type", "x-request-id", "retry-after", "retry-after-ms")


def upstream_url(upstream: Upstream, request: Request) -> str:
    """The upstream URL of a request path (upstream base URLs end in /v1)."""
    path = request.url.path
    return f"{upstream.base_url}{path[3:] if path.startswith('/v1/') else path}"


def passed_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    return {k: v for k in RESPONSE_HEADERS if (v := response.headers.get(k)) is not None}


def failure(
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


async def pass_through(gateway: Gateway, request: Request) -> Response:
    """Other /v1/* paths go to the default upstream as they are."""
    upstream = gateway.route("")
    if upstream is None:
        return error_response(404, "not_found", f"no default upstream for {request.url.path}")
    assert gateway.client is not None
    url = upstream_url(upstream, request)
    if request.url.query:
        url += f"?{request.url.query}"
    headers = gateway.headers_for(upstream, request)
    try:
        async with gateway.client.request(
            request.method, url, data=await request.body(), headers=headers
        ) as response:
            content = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, kind, message = failure(upstream, exc)
        return error_response(status, kind, message, upstream=upstream.name)
    return Response(
        content,
        response.status,
        headers={**passed_headers(response), "x-promptyard-upstream": upstream.name},
    )


# --- server-sent events --------------------------------------------------------------------------


def usage_of(content: bytes) -> Any:
    """The `usage` of a JSON chat completion (None when there is none)."""
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


async def relay(
    response: aiohttp.ClientResponse, upstream: Upstream, strip_usage: bool, seen: Observation
) -> AsyncIterator[bytes]:
    """Relay an upstream SSE stream event by event, watching for the first token and usage."""
    buffer = bytearray()
    seen_token = False
    error: str | None = None
    try:
        async for chunk in response.content.iter_any():
            buffer += chunk
            if seen.sample is not None:
                seen.sample.add(chunk)
            if seen.stream_body is not None:
                seen.keep_stream(chunk)
            out = bytearray()
            for event in _split_events(buffer):
                keep = True
                if not seen_token or b'"usage"' in event:
                    data = _event_data(event)
                    if not seen_token and _has_content(data):
                        seen_token = True
                        seen.first_token()
                    if isinstance(data, dict) and isinstance(data.get("usage"), dict):
                        seen.usage(data["usage"])
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
        seen.finish(200, error)
