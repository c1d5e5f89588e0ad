"""Provider types, by name: `type:` in a `providers:` entry of promptyard.yaml.

Adding a type is one file: a `Provider` subclass decorated with `@provider("name")`
(see `base.py`), imported below so that it registers itself in `PROVIDERS`. Importing
this package never imports a provider's client library; that happens on the first call.
Every call goes through a `ProviderRuntime` (`runtime.py`: concurrency, requests per
minute, retries, pauses, the stop flag), so a registered type gets all of it.
"""

from __future__ import annotations

from collections.abc import Mapping

from promptyard.errors import ConfigError
from promptyard.evals.providers import (  # noqa: F401 - each registers its `type:`
    anthropic,
    azure,
    openai,
)
from promptyard.evals.providers.base import (
    PROVIDERS,
    SET_BY_PROMPTYARD,
    ChatRequest,
    Completion,
    Embeddings,
    Provider,
    ProviderError,
    ToolCall,
    provider,
    tool_calls_of,
)
from promptyard.spec import ProviderConfig


def create_provider(name: str, config: ProviderConfig, environ: Mapping[str, str]) -> Provider:
    """The provider for the `providers.<name>` entry; ConfigError for an unknown type."""
    cls = PROVIDERS.get(config.type)
    if cls is None:
        raise ConfigError(
            f"promptyard.yaml: provider {name!r} has unknown type {config.type!r}",
            hint=f"known types: {', '.join(sorted(PROVIDERS))}",
        )
    return cls(name, config, environ)


__all__ = [
    "PROVIDERS",
    "SET_BY_PROMPTYARD",
    "ChatRequest",
    "Completion",
    "Embeddings",
    "Provider",
    "ProviderError",
    "ToolCall",
    "create_provider",
    "provider",
    "tool_calls_of",
]
