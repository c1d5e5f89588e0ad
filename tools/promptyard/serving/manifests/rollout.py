"""The rollout controller and the PrometheusRule with the alerts it acts on."""

from __future__ import annotations

from typing import Any

from promptyard.serving.manifests._base import (
    GATEWAY,
    _labels,
    _number,
    _secret_env,
    _small_deployment,
)
from promptyard.spec import ClusterSpec
from promptyard.spec.cluster import (
    RolloutController,
)


def alert_documents(spec: ClusterSpec) -> list[dict[str, Any]]:
    """The PrometheusRule with the gateway's alerts (error rate, p95 latency, cost per hour,
    online quality, per prompt version)."""
    from promptyard.rollout.rules import prometheus_rule

    rule = prometheus_rule("promptyard-gateway", spec.namespace)
    rule["metadata"]["labels"] = {
        **_labels("promptyard-alerts", GATEWAY, "alerts", spec.name),
        **rule["metadata"]["labels"],
    }
    return [rule]


ROLLOUT = "promptyard-rollout"
GIT_TOKEN_ENV = "PROMPTYARD_GIT_TOKEN"
# A credential helper answering with the token from the environment (never written to disk).
GIT_TOKEN_HELPER = f'!f() {{ echo username=x-access-token; echo "password=${GIT_TOKEN_ENV}"; }}; f'


def rollout_documents(spec: ClusterSpec) -> list[dict[str, Any]]:
    """The controller: an init container clones the repository, the controller runs in it."""
    rollout: RolloutController | None = spec.rollout
    assert rollout is not None
    labels = _labels(ROLLOUT, ROLLOUT, "rollout", spec.name)
    clone = "/var/lib/promptyard/repo"
    args = [
        "rollout",
        "run",
        "--prometheus",
        rollout.prometheus_url,
        "--remote",
        rollout.remote,
        "--branch",
        rollout.branch,
        "--poll",
        _number(rollout.poll_seconds),
    ]
    env: list[dict[str, Any]] = [{"name": "HOME", "value": "/tmp"}]
    if rollout.token_secret is not None:
        env += [
            _secret_env(GIT_TOKEN_ENV, rollout.token_secret),
            {"name": "GIT_CONFIG_COUNT", "value": "1"},
            {"name": "GIT_CONFIG_KEY_0", "value": "credential.helper"},
            {"name": "GIT_CONFIG_VALUE_0", "value": GIT_TOKEN_HELPER},
        ]
    volumes = [{"name": "workdir", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    mounts = [
        {"name": "workdir", "mountPath": "/var/lib/promptyard"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    deployment = _small_deployment(
        ROLLOUT,
        spec.namespace,
        labels,
        1,
        rollout.image,
        args,
        0,
        rollout.resources,
        volumes,
        mounts,
        env,
    )
    deployment["spec"]["strategy"] = {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    for key in ("ports", "startupProbe", "readinessProbe", "livenessProbe"):
        container.pop(key)  # no HTTP server: it logs and commits
    container["workingDir"] = clone
    pod["initContainers"] = [
        {
            **{k: v for k, v in container.items() if k not in ("args", "workingDir")},
            "name": "clone",
            "command": ["git"],
            "args": ["clone", "--branch", rollout.branch, rollout.remote, clone],
        }
    ]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    for key in ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path"):
        annotations.pop(key)
    if not annotations:
        del deployment["spec"]["template"]["metadata"]["annotations"]
    return [deployment]
