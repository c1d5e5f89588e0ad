"""The upstreams a gateway config (`spec/gateway.py`) resolves to, and the config a
`gateway` command or a Python caller builds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from promptyard.errors import ConfigError
from promptyard.spec.gateway import GatewayConfig

if TYPE_CHECKING:
    from promptyard.repo.workspace import Workspace


@dataclass(frozen=True)
class Upstream:
    """A resolved endpoint: its name, chat URL and the headers it needs."""

    name: str
    base_url: str
    api_key: str | None

    def describe(self) -> str:
        return f"{self.name} ({self.base_url})"


def resolve_upstreams(config: GatewayConfig, environ: Mapping[str, str]) -> dict[str, Upstream]:
    """Every endpoint of `config` with its API key read from `environ`."""
    out = {}
    for name, endpoint in config.endpoints.items():
        key = environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
        out[name] = Upstream(name, endpoint.url.rstrip("/"), key or None)
    return out


def build_gateway_config(
    base: GatewayConfig | None = None,
    *,
    upstreams: Mapping[str, str] | None = None,
    default_upstream: str | None = None,
    label: str | None = None,
    workspace: Workspace | None = None,
) -> GatewayConfig:
    """`base` (a --config file, or the defaults) with routes and a label on top of it.

    Each of `upstreams` (model -> OpenAI-compatible base URL) becomes an endpoint of that
    name serving that model; `default_upstream` (a URL) takes every other model. In a prompt
    repository (`workspace`), pricing and the online quality checks `base` leaves empty come
    from its promptyard.yaml, so a gateway prices and checks like the evals do.
    """
    config = (base or GatewayConfig()).with_routes(upstreams, default_upstream).with_label(label)
    if workspace is not None and (config.wants_pricing or config.wants_online_quality):
        try:
            project = workspace.snapshot().config_file.model
        except ConfigError:  # a broken promptyard.yaml only means no defaults from it
            project = None
        if project is not None:
            config = config.with_defaults(project.pricing, project.online_quality)
    return config
