"""The gateway config (`gateway.json`): what the gateway routes where, its pricing and its
online quality checks. `serving manifests` builds it into the gateway's ConfigMap, `gateway
--config` reads it, and `gateway --upstream/--default-upstream/--label` edit it through the
`with_*` methods."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promptyard.errors import ConfigError
from promptyard.spec.config import OnlineQuality, Price

MAX_BODY_BYTES = 16 << 20  # long contexts and images travel in chat bodies
DEFAULT_ENDPOINT = "default"  # the endpoint `with_routes(default_upstream=URL)` adds


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
    # An int stays an int, so the manifests that write it do not change (600, not 600.0).
    timeout_s: int | float = Field(600, gt=0)
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
        """Read a gateway config file (JSON); ConfigError naming the file, line and problem."""
        from promptyard.spec.loader import FormatError, load_json

        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--config {path}: cannot read ({exc.strerror or exc})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"--config {path}: not valid JSON ({exc})") from None
        try:
            return load_json(text, str(path), cls)
        except FormatError as exc:
            raise ConfigError(f"--config {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> str:
        """The file as `serving manifests` writes it: the fields that were given (nested
        values in full), sorted keys, two-space indent, trailing newline."""
        given = self.model_dump(mode="json", exclude_none=True, include=set(self.model_fields_set))
        return json.dumps(given, indent=2, sort_keys=True) + "\n"

    def _with(self, **changes: Any) -> GatewayConfig:
        """A copy with `changes`, validated again (references, URLs); ConfigError when not."""
        data = {**self.model_dump(mode="json", exclude_none=True), **changes}
        try:
            return GatewayConfig.model_validate(data)
        except ValueError as exc:
            raise ConfigError(f"gateway configuration: {exc}") from None

    def with_routes(
        self, upstreams: Mapping[str, str] | None = None, default_upstream: str | None = None
    ) -> GatewayConfig:
        """Each of `upstreams` (model -> OpenAI-compatible base URL) becomes an endpoint of
        that name serving that model; `default_upstream` (a URL) takes every other model."""
        endpoints: dict[str, Any] = {
            name: e.model_dump(exclude_none=True) for name, e in self.endpoints.items()
        }
        models = dict(self.models)
        for model, url in (upstreams or {}).items():
            endpoints[model] = {"url": url}
            models[model] = model
        changes: dict[str, Any] = {"endpoints": endpoints, "models": models}
        if default_upstream:
            if not default_upstream.startswith(("http://", "https://")):
                raise ConfigError(f"--default-upstream {default_upstream!r} is not an http(s) URL")
            endpoints[DEFAULT_ENDPOINT] = {"url": default_upstream}
            changes["default_upstream"] = DEFAULT_ENDPOINT
        return self._with(**changes)

    def with_label(self, label: str | None) -> GatewayConfig:
        return self._with(label=label) if label else self

    def describe_routes(self) -> str:
        """One line for the startup message: where each model goes, and the default upstream."""
        routes = (
            ", ".join(f"{m} -> {self.endpoints[e].url}" for m, e in sorted(self.models.items()))
            or "none"
        )
        default = self.endpoints[self.default_upstream].url if self.default_upstream else "none"
        return f"routes: {routes}; default upstream: {default}"

    @property
    def wants_pricing(self) -> bool:
        return not self.pricing

    @property
    def wants_online_quality(self) -> bool:
        return not self.online_quality.prompts

    def with_defaults(
        self, pricing: Mapping[str, Price], online_quality: OnlineQuality
    ) -> GatewayConfig:
        """The pricing and online quality checks (from promptyard.yaml) this config leaves
        empty filled in, so a gateway prices and checks like the evals do."""
        changes: dict[str, Any] = {}
        if self.wants_pricing:
            changes["pricing"] = {k: v.model_dump() for k, v in pricing.items()}
        if self.wants_online_quality:
            changes["online_quality"] = online_quality.model_dump(mode="json")
        return self._with(**changes) if changes else self
