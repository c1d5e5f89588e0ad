"""The registry: resolve released prompts for applications, in-process or over HTTP.

- `client.Registry` — the Python client (`from_repo`, `from_bundle`, `from_server`).
- `snapshot` — the immutable served snapshot and request resolution (sticky canaries).
- `reconcile` — sources (repository, git URL, bundle) and the GitOps reconcile loop.
- `service` — the Starlette app behind `promptyard serve`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptyard.registry.client import Registry

__all__ = ["Registry"]


def __getattr__(name: str) -> Any:
    if name == "Registry":
        from promptyard.registry.client import Registry

        return Registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
