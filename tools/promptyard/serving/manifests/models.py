"""Model servers: per model deployment a vLLM Deployment, Service, HPA and PDB."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from promptyard.serving.manifests._base import (
    HPA_SCALE_DOWN_WINDOW_S,
    VLLM_PORT,
    _http_probe,
    _labels,
    _meta,
    _number,
    _quantity,
    _secret_env,
    _selector,
    _service,
    _tolerations,
)
from promptyard.spec import ClusterSpec
from promptyard.spec.cluster import (
    VLLM_QUANTIZATION,
    Autoscaling,
    ModelDeployment,
    NodePool,
)

# --- model deployments ------------------------------------------------------------------------------


def vllm_args(deployment: ModelDeployment) -> list[str]:
    """The vLLM OpenAI-compatible server's command line for a deployment."""
    model, engine = deployment.model, deployment.engine
    args = [
        "--model",
        model.id,
        "--revision",
        model.revision,
        "--served-model-name",
        *deployment.served_model_name,
        "--dtype",
        model.dtype,
    ]
    if model.quantization:
        args += ["--quantization", VLLM_QUANTIZATION[model.quantization]]
    args += [
        "--max-model-len",
        str(engine.max_model_len),
        "--gpu-memory-utilization",
        _number(engine.gpu_memory_utilization),
        "--max-num-seqs",
        str(engine.max_num_seqs),
        "--tensor-parallel-size",
        str(engine.tensor_parallel_size),
        "--pipeline-parallel-size",
        str(engine.pipeline_parallel_size),
        "--kv-cache-dtype",
        engine.kv_cache_dtype,
    ]
    if engine.enable_prefix_caching:
        args.append("--enable-prefix-caching")
    args += ["--host", "0.0.0.0", "--port", str(VLLM_PORT), *engine.extra_args]
    return args


def _weights_gib(deployment: ModelDeployment) -> float:
    from promptyard.serving.fit import weight_bytes

    model = deployment.model
    return model.parameters_billions * 1e9 * weight_bytes(model.dtype, model.quantization) / 2**30


def model_documents(
    spec: ClusterSpec, name: str, deployment: ModelDeployment, source: str
) -> list[dict[str, Any]]:
    """Deployment, Service, HorizontalPodAutoscaler (when autoscaled), PodDisruptionBudget."""
    labels = _labels("vllm", name, "model-server", spec.name)
    ns = spec.namespace
    annotations = {
        "promptyard.dev/source": source,
        "promptyard.dev/model": f"{deployment.model.id}@{deployment.model.revision}",
    }
    pod_spec = _vllm_pod_spec(spec.node_pools[deployment.pool], deployment)
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(name, ns, labels, annotations=annotations),
            "spec": _vllm_deployment_spec(deployment, labels, pod_spec),
        },
        _service(name, ns, labels, VLLM_PORT),
    ]
    if deployment.autoscaling is not None:
        documents.append(_autoscaler(name, ns, labels, deployment.autoscaling))
    documents.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _meta(name, ns, labels),
            "spec": {
                "maxUnavailable": deployment.max_unavailable,
                "selector": {"matchLabels": _selector(labels)},
            },
        }
    )
    return documents


def _vllm_container(deployment: ModelDeployment) -> dict[str, Any]:
    """The vLLM server container: image, arguments, GPUs, probes, mounts."""
    gpus = str(deployment.resources.gpus)
    resources = {
        "cpu": deployment.resources.cpu,
        "memory": deployment.resources.memory,
        "nvidia.com/gpu": gpus,
    }
    probes = deployment.probes
    container: dict[str, Any] = {
        "name": "vllm",
        "image": deployment.engine.image.reference(),
        "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
        "args": vllm_args(deployment),
    }
    if deployment.hf_token_secret is not None:
        container["env"] = [_secret_env("HF_TOKEN", deployment.hf_token_secret)]
    container.update(
        {
            "ports": [{"name": "http", "containerPort": VLLM_PORT, "protocol": "TCP"}],
            "resources": {"requests": dict(resources), "limits": dict(resources)},
            # The startup window covers downloading and loading the weights; liveness and
            # readiness only start once /health has answered.
            "startupProbe": _http_probe(
                "/health",
                probes.period_seconds,
                math.ceil(probes.startup_seconds / probes.period_seconds),
                probes.timeout_seconds,
            ),
            "readinessProbe": _http_probe("/health", 5, 3, probes.timeout_seconds),
            "livenessProbe": _http_probe(
                "/health", probes.period_seconds, probes.failure_threshold, probes.timeout_seconds
            ),
            "volumeMounts": [
                {"name": "dshm", "mountPath": "/dev/shm"},
                {"name": "model-cache", "mountPath": "/root/.cache/huggingface"},
            ],
        }
    )
    return container


def _model_cache_volume(deployment: ModelDeployment) -> dict[str, Any]:
    """The weights cache: the deployment's PVC, else an emptyDir sized for the weights."""
    if deployment.model_cache_pvc:
        return {
            "name": "model-cache",
            "persistentVolumeClaim": {"claimName": deployment.model_cache_pvc},
        }
    size = math.ceil(_weights_gib(deployment) * 1.2) + 1
    return {"name": "model-cache", "emptyDir": {"sizeLimit": f"{size}Gi"}}


def _vllm_pod_spec(pool: NodePool, deployment: ModelDeployment) -> dict[str, Any]:
    """The pod: on the pool's nodes, the vLLM container, shared memory and the cache."""
    pod_spec: dict[str, Any] = {}
    if pool.node_selector:
        pod_spec["nodeSelector"] = dict(sorted(pool.node_selector.items()))
    if pool.tolerations:
        pod_spec["tolerations"] = _tolerations(pool)
    pod_spec.update(
        {
            "terminationGracePeriodSeconds": 120,  # let running generations finish
            "containers": [_vllm_container(deployment)],
            "volumes": [
                {
                    "name": "dshm",
                    "emptyDir": {
                        "medium": "Memory",
                        "sizeLimit": deployment.resources.shared_memory,
                    },
                },
                _model_cache_volume(deployment),
            ],
        }
    )
    return pod_spec


def _vllm_deployment_spec(
    deployment: ModelDeployment, labels: Mapping[str, str], pod_spec: dict[str, Any]
) -> dict[str, Any]:
    """The Deployment's spec: replicas (unless autoscaled), a surge-only rollout, the pod."""
    deployment_spec: dict[str, Any] = {}
    if deployment.autoscaling is None:
        deployment_spec["replicas"] = deployment.replicas
    # With autoscaling the HPA owns `replicas`: leaving it out keeps a GitOps sync from
    # resetting what the autoscaler chose.
    deployment_spec.update(
        {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": _selector(labels)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(VLLM_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": pod_spec,
            },
        }
    )
    return deployment_spec


def _autoscaler(
    name: str, ns: str, labels: Mapping[str, str], scaling: Autoscaling
) -> dict[str, Any]:
    """The HorizontalPodAutoscaler on a per-pod metric, slow to scale down."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(name, ns, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min,
            "maxReplicas": scaling.max,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": scaling.metric},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": _quantity(scaling.target),
                        },
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": HPA_SCALE_DOWN_WINDOW_S}},
        },
    }
