"""Where an answer comes from: storage, an identical request in flight, or the provider.

`Responses.chat` and `Responses.embed` answer one request, in this order:

1. offline, the committed recordings (the same answers CI gets), then the cache; live, the
   cache (unless `--no-cache`);
2. live, an identical request already in flight: the two share one call;
3. live, the provider through its `ProviderRuntime` (limits and retries); the fresh answer
   goes into the cache.

Every answer a prompt used, stored or fresh, goes to the recordings when recording. The
key of a request is `request_key`: the sha256 of everything that shapes the answer. The
cache (and the sharing of calls in flight) adds the provider's name (`cache_key`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from promptyard.evals.cache import CachedResponse, ResponseCache
from promptyard.evals.providers import ChatRequest
from promptyard.evals.providers.runtime import ProviderRuntime
from promptyard.evals.recordings import (
    RecordingRow,
    RecordingStore,
    RecordingWriter,
    record_command,
    recording_path,
)
from promptyard.hashing import sha256_json


def request_key(kind: str, provider_type: str, request: Mapping[str, Any], repeat: int = 0) -> str:
    """sha256 of the canonical request: what the recordings are keyed by."""
    return sha256_json(
        {"v": 1, "kind": kind, "provider": provider_type, "request": request, "repeat": repeat}
    )


def cache_key(provider_name: str, key: str) -> str:
    """The cache's key of request `key` sent to the provider entry named `provider_name`.

    Two entries of one type (two endpoints serving one model name) answer differently, so
    they share no answers. The recordings keep `key` alone: committed recordings stay valid."""
    return sha256_json({"v": 1, "provider_name": provider_name, "key": key})


class MissingRecording(Exception):
    """Offline, and neither the recordings nor the cache hold the answer."""


@dataclass(frozen=True)
class Origin:
    """Who asks: the prompt, dataset, case and repeat a recordings row is filed under."""

    prompt: str
    dataset: str
    case: str
    repeat: int
    recordings: str  # the recordings folder of the prompt's snapshot (for the message)


class Responses:
    """The answers of one eval invocation: storage first, then shared or fresh calls."""

    def __init__(
        self,
        store: RecordingStore,
        *,
        use_cache: bool,
        cache: ResponseCache | None = None,
        recorder: RecordingWriter | None = None,
    ) -> None:
        self.store = store
        self.use_cache = use_cache
        self.cache = cache
        self.recorder = recorder
        self.inflight: dict[str, asyncio.Future[CachedResponse]] = {}

    async def chat(
        self,
        runtime: ProviderRuntime,
        request: ChatRequest,
        origin: Origin,
        *,
        kind: str = "chat",
        repeat: int = 0,
    ) -> tuple[CachedResponse, bool]:
        """The answer to a chat request and whether it came from storage."""
        type_name = runtime.provider.type_name
        key = request_key(kind, type_name, request.identity(), repeat)

        async def live() -> CachedResponse:
            completion = await runtime.complete(request, kind)
            return CachedResponse(
                kind,
                type_name,
                request.model,
                completion.payload(),
                completion.tokens_in,
                completion.tokens_out,
                completion.latency_ms,
            )

        return await self._respond(runtime, kind, key, request.model, origin, live)

    async def embed(
        self, runtime: ProviderRuntime, model: str, text: str, origin: Origin
    ) -> list[float]:
        """The embedding of one text."""
        type_name = runtime.provider.type_name
        key = request_key("embed", type_name, {"model": model, "input": text})

        async def live() -> CachedResponse:
            result = await runtime.embed(model, [text])
            return CachedResponse(
                "embed",
                type_name,
                model,
                {"vector": result.vectors[0]},
                result.tokens_in,
                None,
                result.latency_ms,
            )

        response, _ = await self._respond(runtime, "embed", key, model, origin, live)
        return list(response.payload["vector"])

    def _lookup(
        self, runtime: ProviderRuntime, prompt: str, key: str, cached: str
    ) -> CachedResponse | None:
        if runtime.offline:  # committed recordings first: the same answers as CI gets
            hit = self.store.lookup(prompt, key)
            if hit is None and self.use_cache and self.cache is not None:
                hit = self.cache.get(cached)
            return hit
        if self.use_cache and self.cache is not None:
            return self.cache.get(cached)
        return None

    async def _respond(
        self,
        runtime: ProviderRuntime,
        kind: str,
        key: str,
        model: str,
        origin: Origin,
        live: Callable[[], Awaitable[CachedResponse]],
    ) -> tuple[CachedResponse, bool]:
        cached = cache_key(runtime.provider.name, key)
        hit = self._lookup(runtime, origin.prompt, key, cached)
        if hit is not None:
            self._record(kind, key, model, origin, hit)
            return hit, True
        if runtime.offline:
            raise MissingRecording(
                f"no recorded response (not in {recording_path(origin.recordings, origin.prompt)}"
                f" or the cache); record it with `{record_command(origin.prompt)}`"
            )
        waiting = self.inflight.get(cached)
        if waiting is not None:
            response = await asyncio.shield(waiting)
            # This caller's prompt used the response too: its recordings need the row.
            self._record(kind, key, model, origin, response)
            return response, False
        future: asyncio.Future[CachedResponse] = asyncio.get_running_loop().create_future()
        self.inflight[cached] = future
        try:
            response = await live()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark it retrieved: often nobody else is waiting
            raise
        finally:
            self.inflight.pop(cached, None)
        future.set_result(response)
        if self.cache is not None:
            self.cache.put(
                cached,
                kind,
                runtime.provider.type_name,
                model,
                response.payload,
                response.tokens_in,
                response.tokens_out,
                response.latency_ms,
            )
        self._record(kind, key, model, origin, response)
        return response, False

    def _record(
        self, kind: str, key: str, model: str, origin: Origin, response: CachedResponse
    ) -> None:
        if self.recorder is None:
            return
        self.recorder.add(
            origin.prompt,
            RecordingRow(
                key=key,
                kind=kind,
                model=model,
                dataset=origin.dataset,
                case=origin.case,
                repeat=origin.repeat,
                payload=response.payload,
                tokens_in=response.tokens_in,
                tokens_out=response.tokens_out,
                latency_ms=response.latency_ms,
            ),
        )
