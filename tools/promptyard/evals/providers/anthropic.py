"""Provider type `anthropic`: Claude models through the Messages API and the official SDK.

Requests are built from the provider-neutral `ChatRequest` (OpenAI-shaped messages, tools
and structured output, as the renderer produces them) and answers are mapped back to a
`Completion`, so assertions, the cache and the recordings see the same result whichever
vendor answered:

- system (and developer) messages become the top-level `system`; the conversation keeps
  user and assistant turns, with consecutive turns of one role merged (the API alternates);
- content parts: text, and images from a data URL (base64) or an http(s) URL;
- assistant `tool_calls` become `tool_use` blocks and `tool` messages `tool_result` blocks;
  the answer's `tool_use` blocks become `ToolCall`s (arguments kept as JSON text);
- `tool_choice` auto / required / none / a named function -> auto / any / none / tool;
- structured output (`output.strict`: a JSON Schema) has no request field here, so it is
  asked for as a forced tool whose input is the answer; its input becomes the text;
- `stop_reason` -> `finish_reason`: end_turn and stop_sequence -> stop, max_tokens -> length,
  tool_use -> tool_calls, refusal -> content_filter (with a `refusal`);
- usage: `input_tokens` (plus cache writes and reads) and `output_tokens`.

Errors: 429 and 5xx (529 `overloaded_error` included) are retried by the runner, honouring
`retry-after`; 400 `invalid_request_error` and the other 4xx are not. The SDK's own
retries are off, as for every type: the runner retries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from promptyard.evals.providers.base import (
    ChatRequest,
    Completion,
    Embeddings,
    Provider,
    ProviderError,
    ToolCall,
    provider,
)
from promptyard.evals.providers.openai import (
    _error_message,
    _int_or_none,
    parse_retry_after,
)
from promptyard.evals.providers.sdk import post_json, sdk_client

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
# The Messages API requires `max_tokens`; this is used when a prompt does not set it.
DEFAULT_MAX_TOKENS = 4096
# The forced tool that carries a structured answer (its input is the answer).
OUTPUT_TOOL = "structured_output"
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _request_error(message: str) -> ProviderError:
    return ProviderError("request", message)


# --- request -------------------------------------------------------------------------------


def _image_block(part: Mapping[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str):
        raise _request_error("an image_url content part has no url")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[len("data:") :].split(";")[0]
        if ";base64" not in header or not media_type:
            raise _request_error("an image data URL must be base64 with a media type")
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if urlsplit(url).scheme in ("http", "https"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _request_error(f"an image URL must be a data: or http(s) URL, not {url[:40]!r}")


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI-shaped content (a string or a list of parts) as Messages API blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            blocks.append(_image_block(part))
        else:
            raise _request_error(f"content part of type {kind!r} is not supported by anthropic")
    return blocks


def _text_of(content: Any) -> str:
    return "\n".join(b["text"] for b in _content_blocks(content) if b["type"] == "text")


def _turn(message: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """(role, blocks) of one non-system message."""
    role = message.get("role")
    if role == "tool":
        result = {
            "type": "tool_result",
            "tool_use_id": str(message.get("tool_call_id", "")),
            "content": _text_of(message.get("content")),
        }
        return "user", [result]
    if role == "assistant":
        blocks = _content_blocks(message.get("content"))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            arguments = function.get("arguments") or "{}"
            try:
                parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
            except ValueError:
                raise _request_error(
                    f"tool call {function.get('name')!r} has arguments that are not JSON"
                ) from None
            blocks.append(
                {
                    "type": "tool_use",
                    "id": str(call.get("id", "")),
                    "name": str(function.get("name", "")),
                    "input": parsed,
                }
            )
        return "assistant", blocks
    if role == "user":
        return "user", _content_blocks(message.get("content"))
    raise _request_error(f"message role {role!r} is not supported by anthropic")


def split_messages(
    messages: Iterable[Mapping[str, Any]],
) -> tuple[str | None, list[dict[str, Any]]]:
    """(system text, conversation) for the Messages API."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") in ("system", "developer"):
            system.append(_text_of(message.get("content")))
            continue
        role, blocks = _turn(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # plain text turns stay strings: the common, cheaper shape
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    return ("\n\n".join(system) if system else None), turns


def _tool(definition: Mapping[str, Any]) -> dict[str, Any]:
    function = definition.get("function") or {}
    tool: dict[str, Any] = {
        "name": str(function.get("name", "")),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        tool["description"] = function["description"]
    return tool


def _tool_choice(choice: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name")
        if name:
            return {"type": "tool", "name": str(name)}
    raise _request_error(f"tool_choice {choice!r} cannot be mapped to anthropic")


def _output_tool(response_format: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The forced tool standing for a json_schema response format, or None."""
    if not response_format or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    return {
        "name": OUTPUT_TOOL,
        "description": "Give the answer: its input is the whole answer, as the schema says.",
        "input_schema": spec.get("schema") or {"type": "object"},
    }


def messages_body(request: ChatRequest) -> dict[str, Any]:
    """The Messages API request body for a provider-neutral chat request."""
    system, turns = split_messages(request.messages)
    body: dict[str, Any] = {**request.parameters, "model": request.model, "messages": turns}
    body.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    if system:
        body["system"] = system
    tools = [_tool(t) for t in request.tools]
    choice = _tool_choice(request.tool_choice)
    output = _output_tool(request.response_format)
    if output is not None:
        # The answer must come as the output tool's input; the prompt's own tools stay
        # callable unless it said none (a named tool choice stays as it is).
        if choice is None or choice["type"] == "none":
            tools, choice = [output], {"type": "tool", "name": OUTPUT_TOOL}
        else:
            tools.append(output)
            if choice["type"] == "auto":
                choice = {"type": "any"}
    if tools:
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    return body


# --- answer --------------------------------------------------------------------------------


def completion_from(data: Any, latency_ms: float) -> Completion:
    """The `Completion` of a Messages API answer; ProviderError("malformed") if it is none."""
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        if isinstance(data, dict) and data.get("type") == "error":
            raise ProviderError("server", f"error in a 200 response: {_error_message(data)}")
        raise ProviderError("malformed", "response has no content list (not a Messages answer)")
    texts: list[str] = []
    calls: list[ToolCall] = []
    try:
        for block in data["content"]:
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block["text"]))
            elif kind == "tool_use" and block.get("name") == OUTPUT_TOOL:
                texts.append(json.dumps(block.get("input"), ensure_ascii=False))
            elif kind == "tool_use":
                raw = json.dumps(block.get("input", {}), ensure_ascii=False)
                calls.append(ToolCall(str(block["name"]), raw, block.get("id")))
    except (KeyError, TypeError, AttributeError):
        raise ProviderError("malformed", "a content block lacks its fields") from None
    stop = data.get("stop_reason")
    finish = FINISH_REASONS.get(stop, stop) if isinstance(stop, str) else None
    if finish == "tool_calls" and not calls:
        finish = "stop"  # only the structured-output tool was used: that is the answer
    text = "".join(texts)
    refusal = (text or "the model refused") if stop == "refusal" else None
    usage: dict[str, Any] = data["usage"] if isinstance(data.get("usage"), dict) else {}
    tokens_in = _int_or_none(usage.get("input_tokens"))
    if tokens_in is not None:  # prompt caching reports cached input tokens apart
        for key in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            tokens_in += _int_or_none(usage.get(key)) or 0
    return Completion(
        text="" if refusal is not None else text,
        tokens_in=tokens_in,
        tokens_out=_int_or_none(usage.get("output_tokens")),
        latency_ms=latency_ms,
        tool_calls=tuple(calls),
        finish_reason=finish,
        refusal=refusal,
    )


def status_error(exc: Any) -> ProviderError:
    """The kind of an HTTP error answer: 429 and 5xx (529 overloaded) retry, other 4xx end."""
    status = int(exc.status_code)
    body = getattr(exc, "body", None)
    inner = body.get("error") if isinstance(body, dict) else None
    error_type = inner.get("type") if isinstance(inner, dict) else None
    label = f"HTTP {status} {error_type}" if isinstance(error_type, str) else f"HTTP {status}"
    message = f"{label}: {_error_message(exc)}"
    retry_after = parse_retry_after(getattr(exc.response, "headers", None))
    if status == 429:
        return ProviderError("rate_limit", message, status=status, retry_after=retry_after)
    if status >= 500:
        return ProviderError("server", message, status=status, retry_after=retry_after)
    if status in (401, 403):
        return ProviderError("auth", message, status=status)
    return ProviderError("request", message, status=status)


@provider("anthropic")
class AnthropicProvider(Provider):
    default_env: ClassVar[Mapping[str, str]] = {
        "api_key_env": "ANTHROPIC_API_KEY",
        "base_url_env": "ANTHROPIC_BASE_URL",
    }
    has_embeddings = False  # Anthropic has no embeddings endpoint
    # The Messages API request body, less what promptyard sets (model, messages, system,
    # tools, tool_choice, stream).
    request_parameters = frozenset(
        {
            "max_tokens",
            "metadata",
            "service_tier",
            "stop_sequences",
            "temperature",
            "thinking",
            "top_k",
            "top_p",
        }
    )

    def __init__(self, name: str, config: Any, environ: Mapping[str, str]) -> None:
        super().__init__(name, config, environ)
        self._client_instance: Any = None

    def describe(self) -> str:
        return f"anthropic at {self.base_url or ANTHROPIC_BASE_URL}"

    def configuration_problem(self) -> str | None:
        problem = super().configuration_problem()
        # A local server needs no key; Anthropic's own API does.
        official = urlsplit(ANTHROPIC_BASE_URL).hostname
        host = urlsplit(self.base_url).hostname if self.base_url else None
        if problem is None and not self.api_key and host == official:
            return f"the Anthropic API needs a key: set {self.config.api_key_env}"
        return problem

    def _client(self) -> Any:
        """The client, created on first use (inside the running event loop)."""
        if self._client_instance is None:
            import anthropic

            self._client_instance = sdk_client(
                anthropic,
                anthropic.AsyncAnthropic,
                self.config.timeout_s,
                api_key=self.api_key or "unused",  # local servers need no key
                base_url=self.base_url or ANTHROPIC_BASE_URL,
            )
        return self._client_instance

    async def prepare(self) -> None:
        self._client()  # importing the SDK takes a while: not inside a rate-limit slot

    async def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        import anthropic

        body = messages_body(request)
        data, latency_ms = await post_json(
            anthropic, self._client(), "/v1/messages", body, timeout, status_error
        )
        return completion_from(data, latency_ms)

    async def embed(self, model: str, texts: list[str], *, timeout: float) -> Embeddings:
        raise ProviderError(
            "request", "anthropic has no embeddings endpoint; name another provider in `similar`"
        )

    async def aclose(self) -> None:
        client, self._client_instance = self._client_instance, None
        if client is not None:
            await client.close()
