"""What every provider type implements, and the errors the provider runtime knows how to handle.

A provider turns a `ChatRequest` into a `Completion` (and texts into embeddings) over
some API. It does one attempt per call: retries, backoff, rate limits and concurrency live in the
`ProviderRuntime` every call goes through (`runtime.py`), the cache and recordings in the
eval engine's `responses.py`, so a new provider type gets them for free.
It reports failures as `ProviderError` with a `kind` that says whether a retry can help.
A `connect` failure (refused, unknown host) is retried only once the provider has answered
(a server restarting); before that, the runtime stops the run at once (exit 3), since
retrying cannot fix a wrong URL or a server that is not running.

A provider type is one module: a `Provider` subclass decorated with `@provider("name")`,
which registers it in `PROVIDERS` under the `type:` it answers to in promptyard.yaml.
"""

from __future__ import annotations

import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

from promptyard.spec import ProviderConfig

ErrorKind = Literal[
    "timeout",  # no answer within timeout_s
    "connect",  # no connection opened: refused, unknown host (the URL or server is wrong)
    "connection",  # reset or dropped mid-request or mid-response
    "rate_limit",  # 429
    "server",  # 5xx
    "malformed",  # a 2xx whose body is not the expected JSON
    "auth",  # 401 / 403: the key is missing or wrong
    "request",  # 400 / 404 / 422 ...: the request itself is wrong (model name, parameters)
]
RETRYABLE: frozenset[str] = frozenset(
    {"timeout", "connect", "connection", "rate_limit", "server", "malformed"}
)


class ProviderError(Exception):
    """One failed attempt. `retryable` kinds are infrastructure; the others end the case."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After)

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    @property
    def infra(self) -> bool:
        """An infrastructure failure: the provider, not the request, is at fault."""
        return self.kind in RETRYABLE


@dataclass(frozen=True)
class ChatRequest:
    """One chat call: the model, the rendered messages, parameters passed through as given."""

    model: str
    # `content` a string, or OpenAI content parts (text, image_url); turns may carry
    # `tool_calls` / `tool_call_id` (a conversation input)
    messages: list[dict[str, Any]]
    parameters: dict[str, Any] = field(default_factory=dict)
    json_mode: bool = False  # the prompt's output.format is json: ask for a JSON object
    # The prompt's tools, tool choice and structured output (as RenderedPrompt has them).
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        """The request body of an OpenAI-compatible chat completion."""
        body: dict[str, Any] = {**self.parameters, "model": self.model, "messages": self.messages}
        if self.tools:
            body["tools"] = self.tools
        if self.tool_choice is not None:
            body["tool_choice"] = self.tool_choice
        if self.response_format is not None:
            body["response_format"] = self.response_format
        elif self.json_mode and "response_format" not in body:
            body["response_format"] = {"type": "json_object"}
        return body

    def identity(self) -> dict[str, Any]:
        """What identifies this request for the cache (everything that shapes the answer)."""
        return self.body()


@dataclass(frozen=True)
class ToolCall:
    """A function call the model made: the arguments as sent, and parsed when they are JSON."""

    name: str
    raw_arguments: str
    id: str | None = None

    @property
    def arguments(self) -> Any:
        """The parsed arguments (None when they are not JSON: see `arguments_error`)."""
        return _parse_arguments(self.raw_arguments)[0]

    @property
    def arguments_error(self) -> str | None:
        return _parse_arguments(self.raw_arguments)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "raw_arguments": self.raw_arguments,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        return cls(str(data.get("name", "")), str(data.get("raw_arguments", "")), data.get("id"))


@functools.lru_cache(maxsize=4096)
def _parse_arguments(raw: str) -> tuple[Any, str | None]:
    try:
        return json.loads(raw or "{}"), None
    except json.JSONDecodeError as exc:
        return None, f"arguments are not JSON ({exc.msg} at character {exc.pos}): {raw[:80]!r}"


@dataclass(frozen=True)
class Completion:
    """A model's answer with what it cost: tokens (None when not reported) and latency.

    Besides the text: the tool calls it made, why it stopped (`stop`, `length`,
    `tool_calls`, `content_filter`, as the provider says) and its refusal message, if any.
    """

    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_ms: float = 0.0
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    refusal: str | None = None

    def payload(self) -> dict[str, Any]:
        """What the cache and recordings keep of the answer (keys only when they say something)."""
        payload: dict[str, Any] = {"text": self.text}
        if self.tool_calls:
            payload["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.finish_reason is not None:
            payload["finish_reason"] = self.finish_reason
        if self.refusal is not None:
            payload["refusal"] = self.refusal
        return payload


def tool_calls_of(payload: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The tool calls of a cached or recorded answer."""
    return tuple(ToolCall.from_dict(call) for call in payload.get("tool_calls") or ())


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    tokens_in: int | None = None
    latency_ms: float = 0.0


# Request fields promptyard fills in itself: a prompt's `parameters` must not set them.
SET_BY_PROMPTYARD: frozenset[str] = frozenset(
    {"model", "messages", "stream", "tools", "tool_choice"}
)


class Provider(ABC):
    """A configured endpoint of one provider type (a `providers:` entry of promptyard.yaml)."""

    type_name: ClassVar[str]
    default_embedding_model: ClassVar[str | None] = None
    # The `model.parameters` a prompt may set for this type (lint rule P014); an endpoint's
    # own extras go in `extra_parameters` of its providers entry.
    request_parameters: ClassVar[frozenset[str]] = frozenset()
    # False: the API has no embeddings endpoint (lint refuses `similar` on such a provider).
    has_embeddings: ClassVar[bool] = True
    # The environment variables a type reads when its entry does not name others
    # (`api_key_env`, `base_url_env`): each vendor's SDK convention, not OpenAI's.
    default_env: ClassVar[Mapping[str, str]] = {}

    def __init__(self, name: str, config: ProviderConfig, environ: Mapping[str, str]) -> None:
        self.name = name
        unset = {k: v for k, v in self.default_env.items() if k not in config.model_fields_set}
        self.config = config.model_copy(update=unset) if unset else config
        self.environ = environ

    # where it is and whether it can be reached

    @property
    def base_url(self) -> str | None:
        """`base_url_env` when set in the environment, else `base_url`, else the type's default."""
        env = self.config.base_url_env
        if env and self.environ.get(env):
            return self.environ[env]
        return self.config.base_url

    @property
    def api_key(self) -> str | None:
        env = self.config.api_key_env
        return (self.environ.get(env) or None) if env else None

    @property
    def configured(self) -> bool:
        """Whether a live call is possible at all: a key or a base URL is set.

        With neither, evals run offline (from the cache and recordings).
        """
        return bool(self.api_key or self.base_url)

    def configuration_problem(self) -> str | None:
        """What is wrong with how the endpoint is configured (a malformed base URL), if
        anything: a mistake in the settings is exit 2, not an unreachable provider (3)."""
        url = self.base_url
        if not url:
            return None
        parsed = urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            source = (
                self.config.base_url_env
                if self.config.base_url_env and self.environ.get(self.config.base_url_env)
                else "base_url in promptyard.yaml"
            )
            return (
                f"{source} is {url!r}, not an http(s) URL; set it to e.g. http://localhost:8000/v1"
            )
        try:
            parsed.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            return f"the base URL {url!r} has an invalid port"
        return None

    def unconfigured_hint(self) -> str:
        names = [n for n in (self.config.api_key_env, self.config.base_url_env) if n]
        return " or ".join(names) if names else "base_url in promptyard.yaml"

    @abstractmethod
    def describe(self) -> str:
        """How to name this endpoint in a message: type and base URL."""

    # calls: one attempt each

    @abstractmethod
    async def complete(self, request: ChatRequest, *, timeout: float) -> Completion:
        """One chat completion; raise ProviderError."""

    @abstractmethod
    async def embed(self, model: str, texts: list[str], *, timeout: float) -> Embeddings:
        """One embeddings call; raise ProviderError."""

    async def prepare(self) -> None:  # noqa: B027 - optional hook; most types need nothing
        """Get ready for the first call (load the client library, create the client).

        The runtime awaits this before it takes a rate-limit slot for the first live call,
        so a slow start does not squeeze the next calls together."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook; most types hold nothing
        """Release connections (called once when the run ends)."""


P = TypeVar("P", bound=type[Provider])

# Provider types by `type:` name, filled by `@provider` as their modules are imported.
PROVIDERS: dict[str, type[Provider]] = {}


def provider(type_name: str) -> Callable[[P], P]:
    """Register a `Provider` subclass as the provider type `type_name`.

    >>> @provider("openai")
    ... class OpenAIProvider(Provider): ...

    Sets the class's `type_name`. A name taken by another class is a ValueError: two
    modules claiming one `type:` is a programming mistake, not something to resolve silently.
    """

    def register(cls: P) -> P:
        taken = PROVIDERS.get(type_name)
        if taken is not None and taken is not cls:
            raise ValueError(
                f"provider type {type_name!r} is already registered by "
                f"{taken.__module__}.{taken.__qualname__}"
            )
        cls.type_name = type_name
        PROVIDERS[type_name] = cls
        return cls

    return register
