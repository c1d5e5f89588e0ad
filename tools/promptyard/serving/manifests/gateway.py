"""The gateway: its routing ConfigMap (a `spec.gateway.GatewayConfig`), Deployment, Service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptyard.serving.manifests._base import (
    BUNDLE_DIR,
    BUNDLE_FILE,
    GATEWAY,
    GATEWAY_CONFIG_DIR,
    GATEWAY_CONFIG_FILE,
    GATEWAY_PORT,
    REGISTRY,
    REGISTRY_PORT,
    VLLM_PORT,
    _bundle_volume,
    _labels,
    _meta,
    _secret_env,
    _service,
    _small_deployment,
    service_url,
    upstream_env_name,
)
from promptyard.spec import ClusterSpec
from promptyard.spec.config import OnlineQuality, Price
from promptyard.spec.gateway import Endpoint, GatewayConfig


def gateway_config(
    spec: ClusterSpec, pricing: Mapping[str, Price], online: OnlineQuality | None = None
) -> GatewayConfig:
    """The gateway's routing (every served model name to its deployment's Service), its
    pricing and online quality (from promptyard.yaml)."""
    gateway = spec.gateway
    assert gateway is not None
    endpoints: dict[str, Endpoint] = {}
    models: dict[str, str] = {}
    for name, deployment in sorted(spec.deployments.items()):
        endpoints[name] = Endpoint(url=service_url(name, spec.namespace, VLLM_PORT, "/v1"))
        for model in deployment.served_model_name:
            models.setdefault(model, name)
    for model, upstream in sorted(gateway.upstreams.items()):
        api_key_env = upstream_env_name(model) if upstream.api_key_secret is not None else None
        endpoints[model] = Endpoint(url=upstream.url, api_key_env=api_key_env)
        models.setdefault(model, model)
    # Only the fields given here are written (`to_json`): the gateway's defaults stay its own.
    given: dict[str, Any] = {}
    if gateway.default_upstream is not None:
        given["default_upstream"] = gateway.default_upstream
    if online is not None and online.prompts:
        given["online_quality"] = online
    return GatewayConfig(
        label=gateway.label,
        endpoints=endpoints,
        models=dict(sorted(models.items())),
        pricing=dict(sorted(pricing.items())),
        timeout_s=gateway.timeout_seconds,
        **given,
    )


def gateway_documents(
    spec: ClusterSpec, pricing: Mapping[str, Price], online: OnlineQuality | None = None
) -> list[dict[str, Any]]:
    gateway = spec.gateway
    assert gateway is not None
    labels = _labels("promptyard-gateway", GATEWAY, "gateway", spec.name)
    config_text = gateway_config(spec, pricing, online).to_json()
    # The pods roll when the routing changes (a ConfigMap edit alone does not restart them).
    from promptyard.hashing import sha256_json

    checksum = sha256_json(config_text)[:16]
    registry_url = service_url(REGISTRY, spec.namespace, REGISTRY_PORT)
    args = [
        "gateway",
        "--config",
        f"{GATEWAY_CONFIG_DIR}/{GATEWAY_CONFIG_FILE}",
        "--registry",
        registry_url,
        "--fallback-bundle",
        f"{BUNDLE_DIR}/{BUNDLE_FILE}",
        "--host",
        "0.0.0.0",
        "--port",
        str(GATEWAY_PORT),
    ]
    env = [
        _secret_env(upstream_env_name(model), upstream.api_key_secret)
        for model, upstream in sorted(gateway.upstreams.items())
        if upstream.api_key_secret is not None
    ]
    volumes = [
        {"name": "config", "configMap": {"name": GATEWAY}},
        _bundle_volume(),
    ]
    mounts = [
        {"name": "config", "mountPath": GATEWAY_CONFIG_DIR, "readOnly": True},
        {"name": "bundle", "mountPath": BUNDLE_DIR, "readOnly": True},
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(GATEWAY, spec.namespace, labels),
            "data": {GATEWAY_CONFIG_FILE: config_text},
        },
        _small_deployment(
            GATEWAY,
            spec.namespace,
            labels,
            gateway.replicas,
            gateway.image,
            args,
            GATEWAY_PORT,
            gateway.resources,
            volumes,
            mounts,
            env,
            {"promptyard.dev/config-checksum": checksum},
        ),
        _service(GATEWAY, spec.namespace, labels, GATEWAY_PORT),
    ]
