"""What the gateway routes where: its configuration and the upstreams it resolves to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from promptyard.errors import ConfigError
from promptyard.spec.config import OnlineQuality, Price

if TYPE_CHECKING:
    from promptyard.repo.workspace import Workspace

MAX_BODY_BYTES = 16 << 20  # long contexts and images travel in chat bodies


class Endpoint(BaseModel):
    """An upstream: an OpenAI-compatible base URL, and where its API key comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://\S+$")
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class GatewayConfig(BaseModel):
    """What the gateway routes where (`serving manifests` writes it into a ConfigMap)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = "production"
    endpoints: dict[str, Endpoint] = Field(default_factory=dict)
    models: dict[str, str] = Field(
        default_factory=dict, description="Served model name -> endpoint name."
    )
    default_upstream: str | None = Field(None, description="An endpoint name.")
    pricing: dict[str, Price] = Field(default_factory=dict)
    online_quality: OnlineQuality = Field(
        default_factory=OnlineQuality,
        description="Prompts whose live answers are checked (from promptyard.yaml).",
    )
    timeout_s: float = Field(600, gt=0)
    connect_timeout_s: float = Field(5, gt=0)
    max_body_bytes: int = Field(MAX_BODY_BYTES, ge=1024)
    capture: dict[str, Annotated[float, Field(gt=0, le=100)]] = Field(
        default_factory=dict,
        description="Prompt name -> percent of its requests sampled into the event store "
        "(variables and answer) for `promptyard capture`; prompts not listed are never captured.",
    )

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        for model, endpoint in self.models.items():
            if endpoint not in self.endpoints:
                raise ValueError(f"model {model!r} routes to unknown endpoint {endpoint!r}")
        if self.default_upstream is not None and self.default_upstream not in self.endpoints:
            raise ValueError(f"default_upstream {self.default_upstream!r} is not an endpoint")
        return self

    @classmethod
    def load(cls, path: Path) -> GatewayConfig:
        """Read a gateway config file (JSON); ConfigError naming the problem."""
        from promptyard.documents import parse_json_value

        try:
            data = parse_json_value(path.read_text(encoding="utf-8"))
            return cls.model_validate(data)
        except OSError as exc:
            raise ConfigError(f"--config {path}: cannot read ({exc.strerror or exc})") from None
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, ValidationError):
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in first["loc"]) or "file"
                raise ConfigError(f"--config {path}: {where}: {first['msg']}") from None
            raise ConfigError(f"--config {path}: not valid JSON ({exc})") from None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


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
    data = (base or GatewayConfig()).model_dump(mode="json", exclude_none=True)
    for model, url in (upstreams or {}).items():
        data.setdefault("endpoints", {})[model] = {"url": url}
        data.setdefault("models", {})[model] = model
    if default_upstream:
        if not default_upstream.startswith(("http://", "https://")):
            raise ConfigError(f"--default-upstream {default_upstream!r} is not an http(s) URL")
        data.setdefault("endpoints", {})["default"] = {"url": default_upstream}
        data["default_upstream"] = "default"
    if label:
        data["label"] = label
    wants_pricing = not data.get("pricing")
    wants_quality = not data.get("online_quality", {}).get("prompts")
    if workspace is not None and (wants_pricing or wants_quality):
        try:
            config = workspace.snapshot().config_file.model
        except ConfigError:  # a broken promptyard.yaml only means no defaults from it
            config = None
        if config is not None:
            if wants_pricing:
                data["pricing"] = {k: v.model_dump() for k, v in config.pricing.items()}
            if wants_quality:
                data["online_quality"] = config.online_quality.model_dump(mode="json")
    try:
        return GatewayConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"gateway configuration: {exc}") from None
