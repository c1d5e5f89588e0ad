"""Clients of, and one attempt over, the vendor SDKs built on the same generated client
(openai, anthropic): `sdk_client` configures a client the same way for every provider type.

Both official SDKs expose a documented generic `post(path, cast_to=..., body=...)` and the
same exception classes (`APITimeoutError`, `APIConnectionError`, `APIStatusError`). This
module turns one such call into the decoded JSON body and its latency, or a
`ProviderError` whose `kind` the runner's retries understand; each provider type maps an
HTTP error status to a kind itself (`status_error`), since vendors differ there.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from promptyard.evals.providers.base import ProviderError


def _http_client(openai: Any) -> Any:
    """The SDK's aiohttp transport when installed (`openai[aiohttp]`), else its default.

    The SDK documents aiohttp as its faster option under concurrency; on a small machine it
    halves the CPU each call costs, which is what bounds an eval's throughput.
    """
    try:
        import aiohttp  # noqa: F401

        return openai.DefaultAioHttpClient()
    except (ImportError, RuntimeError, AttributeError):
        return None


def sdk_client(sdk: ModuleType, client_class: Any, timeout_s: float, **connection: Any) -> Any:
    """A client of `client_class` (from module `sdk`) as every provider type configures it:
    `connection` (key, endpoint) as given, the entry's timeout, the faster transport when
    installed, and the SDK's own retries off, since the provider runtime retries."""
    return client_class(
        **connection, max_retries=0, timeout=timeout_s, http_client=_http_client(sdk)
    )


def connect_failure(exc: BaseException) -> str | None:
    """Why no connection could be opened (refused, unknown host), from the exception's
    causes, or None when the failure was something else (a timeout, a dropped connection).

    Both transports of the SDK wrap the socket error: httpx as `ConnectError`, the aiohttp
    transport as a connect *timeout* whose cause is aiohttp's `ClientConnectorError`."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return f"unknown host ({current.strerror or current})"
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        current = current.__cause__ or current.__context__
    return None


async def post_json(
    sdk: ModuleType,
    client: Any,
    path: str,
    body: dict[str, Any],
    timeout: float,
    status_error: Callable[[Any], ProviderError],
) -> tuple[Any, float]:
    """(decoded JSON answer, latency in ms) of one POST through `client` of module `sdk`."""
    started = time.perf_counter()
    try:
        raw = await client.post(path, cast_to=bytes, body=body, options={"timeout": timeout})
    except sdk.APITimeoutError as exc:
        why = connect_failure(exc)
        if why is not None:
            raise ProviderError("connect", why) from None
        cause = exc.__cause__ or exc.__context__
        if cause is not None and "Cannot connect to host" in str(cause):
            # the aiohttp transport reports any connect failure as a connect timeout
            raise ProviderError("connection", f"connection failed ({cause})") from None
        raise ProviderError("timeout", f"no answer within {timeout:g} s") from None
    except sdk.APIConnectionError as exc:
        why = connect_failure(exc)
        if why is not None:
            raise ProviderError("connect", why) from None
        cause = exc.__cause__ or exc.__context__
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        raise ProviderError("connection", f"connection failed ({detail})") from None
    except sdk.APIStatusError as exc:
        raise status_error(exc) from None
    latency_ms = (time.perf_counter() - started) * 1000
    try:
        return json.loads(raw), latency_ms
    except (ValueError, UnicodeDecodeError):
        snippet = raw[:80].decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        raise ProviderError("malformed", f"response is not JSON: {snippet!r}") from None
