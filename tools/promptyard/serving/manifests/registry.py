"""The registry (`promptyard serve`) and the bundle ConfigMap it falls back to."""

from __future__ import annotations

from typing import Any

from promptyard.errors import ConfigError
from promptyard.serving.manifests._base import (
    BUNDLE,
    BUNDLE_DIR,
    BUNDLE_FILE,
    MAX_CONFIGMAP_BYTES,
    REGISTRY,
    REGISTRY_PORT,
    _bundle_volume,
    _labels,
    _meta,
    _number,
    _service,
    _small_deployment,
)
from promptyard.spec import ClusterSpec


def registry_documents(spec: ClusterSpec) -> list[dict[str, Any]]:
    registry = spec.registry
    assert registry is not None
    labels = _labels("promptyard-registry", REGISTRY, "registry", spec.name)
    args = [
        "serve",
        "--source",
        registry.source,
        "--branch",
        registry.branch,
        "--poll",
        _number(registry.poll_seconds),
        "--host",
        "0.0.0.0",
        "--port",
        str(REGISTRY_PORT),
        "--workdir",
        "/var/lib/promptyard/clone",
        "--fallback-bundle",
        f"{BUNDLE_DIR}/{BUNDLE_FILE}",
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "workdir", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    volumes.append(_bundle_volume())
    mounts: list[dict[str, Any]] = [
        {"name": "workdir", "mountPath": "/var/lib/promptyard"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "bundle", "mountPath": BUNDLE_DIR, "readOnly": True},
    ]
    env: list[dict[str, Any]] = [{"name": "HOME", "value": "/tmp"}]  # git writes under $HOME
    return [
        _small_deployment(
            REGISTRY,
            spec.namespace,
            labels,
            registry.replicas,
            registry.image,
            args,
            REGISTRY_PORT,
            registry.resources,
            volumes,
            mounts,
            env,
        ),
        _service(REGISTRY, spec.namespace, labels, REGISTRY_PORT),
    ]


def bundle_documents(spec: ClusterSpec, bundle: bytes, origin: str) -> list[dict[str, Any]]:
    """The ConfigMap holding a bundle (the registry's and the gateway's fallback)."""
    if len(bundle) > MAX_CONFIGMAP_BYTES - 4096:
        raise ConfigError(
            f"bundle {origin} is {len(bundle):,} bytes; a ConfigMap holds at most "
            f"{MAX_CONFIGMAP_BYTES:,}",
            hint="serve the bundle from a volume or object storage instead",
        )
    labels = _labels("promptyard-bundle", BUNDLE, "bundle", spec.name)
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(BUNDLE, spec.namespace, labels),
            "data": {BUNDLE_FILE: bundle.decode("utf-8")},
        }
    ]
