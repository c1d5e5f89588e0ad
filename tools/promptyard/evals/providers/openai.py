"""Provider type `openai`: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp, LM Studio).

Calls go through the official `openai` client (`AsyncOpenAI`), imported only when a call is
made so that `lint` and the CLI stay fast. The client's own retries are off: the provider
runtime retries (with Retry-After) for every provider type alike.

Requests use the client's documented generic `post` with the body passed through as
given, and the JSON answer is read leniently here: OpenAI-compatible servers differ in the
extra fields they return, and building the client's typed models costs more CPU per call
than everything else in a cached eval.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from promptyard.evals.providers.base import (
    ChatRequest,
    Completion,
    Embeddings,
    Provider,
    ProviderError,
    ToolCall,
    provider,
)
from promptyard.evals.providers.sdk import post_json, sdk_client
from promptyard.spec import ProviderConfig

OPENAI_BASE_URL = "https://api.openai.com/v1"


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", None) or exc)


@provider("openai")
class OpenAIProvider(Provider):
    default_embedding_model: ClassVar[str | None] = "text-embedding-3-small"
    # The Chat Completions request body, less what promptyard sets (model, messages, stream).
    request_parameters = frozenset(
        {
            "audio",
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "max_completion_tokens",
            "max_tokens",
            "metadata",
            "modalities",
            "n",
            "parallel_tool_calls",
            "prediction",
            "presence_penalty",
            "prompt_cache_key",
            "reasoning_effort",
            "response_format",
            "safety_identifier",
            "seed",
            "service_tier",
            "stop",
            "store",
            "stream_options",
            "temperature",
            "tool_choice",
            "tools",
            "top_logprobs",
            "top_p",
            "user",
            "verbosity",
            "web_search_options",
        }
    )

    def __init__(self, name: str, config: ProviderConfig, environ: Mapping[str, str]) -> None:
        super().__init__(name, config, environ)
        self._client_instance: Any = None

    def describe(self) -> str:
        return f"openai at {self.base_url or OPENAI_BASE_URL}"

    def _client(self) -> Any:
        """The client, created on first use (inside the running event loop)."""
        if self._client_instance is None:
            import openai

            self._client_instance = sdk_client(
                openai,
                openai.AsyncOpenAI,
                self.config.timeout_s,
                api_key=self.api_key or "unused",  # local servers need no key
                base_url=self.base_url or OPENAI_BASE_URL,
            )
        return self._client_instance

    async def prepare(self) -> None:
        self._client()  # importing openai takes ~0.5 s: not inside a rate-limit slot

    async def _post(self, path: str, body: dict[str, Any], timeout: float) -> tuple[Any, float]:
        import openai

        data, latency_ms = await post_json(
            openai, self._client(), path, body, timeout, self._status_error
        )
        if isinstance(data, dict) and "error" in data and "choices" not in data:
            raise ProviderError("server", f"error in a 200 response: {_error_message(data)}")
        return data, latency_ms

    def _status_error(self, exc: Any) -> ProviderError:
        status = int(exc.status_code)
        message = f"HTTP {status}: {_error_message(exc)}"
        headers = getattr(exc.response, "headers", None)
        if status == 429:
            return ProviderError(
                "rate_limit", message, status=status, retry_after=parse_retry_after(headers)
            )
        if status >= 500:
            retry_after = parse_retry_after(headers) if status == 503 else None
            return ProviderError("server", message, status=status, retry_after=retry_after)
        if status in (401, 403):
            return ProviderError("auth", message, status=status)
        return ProviderError("request", message, status=status)

    async def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        data, latency_ms = await self._post("/chat/completions", request.body(), timeout)
        try:
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content") or ""
            if not isinstance(text, str):
                text = json.dumps(text, ensure_ascii=False)
            calls = tuple(_tool_call(call) for call in message.get("tool_calls") or ())
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ProviderError(
                "malformed", "response has no choices[0].message (not a chat completion)"
            ) from None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        finish = choice.get("finish_reason")
        refusal = message.get("refusal")
        return Completion(
            text=text,
            tokens_in=_int_or_none(usage.get("prompt_tokens")),
            tokens_out=_int_or_none(usage.get("completion_tokens")),
            latency_ms=latency_ms,
            tool_calls=calls,
            finish_reason=finish if isinstance(finish, str) else None,
            refusal=refusal if isinstance(refusal, str) else None,
        )

    async def embed(self, model: str, texts: list[str], *, timeout: float) -> Embeddings:
        body = {"model": model, "input": texts, "encoding_format": "float"}
        data, latency_ms = await self._post("/embeddings", body, timeout)
        try:
            rows = sorted(data["data"], key=lambda row: row.get("index", 0))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ProviderError("malformed", "response is not an embeddings list") from None
        if len(vectors) != len(texts):
            raise ProviderError(
                "malformed", f"asked for {len(texts)} embeddings, got {len(vectors)}"
            )
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Embeddings(vectors, _int_or_none(usage.get("prompt_tokens")), latency_ms)

    async def aclose(self) -> None:
        client, self._client_instance = self._client_instance, None
        if client is not None:
            await client.close()


def _tool_call(call: Mapping[str, Any]) -> ToolCall:
    """A `tool_calls` item of a chat completion message; arguments are kept as sent."""
    function = call["function"]
    arguments = function.get("arguments")
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(str(function["name"]), raw, call.get("id"))


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
