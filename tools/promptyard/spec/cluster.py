"""Cluster: `serving/clusters/<name>.yaml` — vLLM model deployments on Kubernetes GPU node pools.

The file says which GPU node pools exist, which models run on them with which vLLM engine
arguments, and how the registry service and the gateway are deployed. `promptyard lint` and
`promptyard serving check` check it (GPU memory fit, parallelism, the prompts it serves);
`promptyard serving manifests` renders it to Kubernetes manifests under `serving/k8s/`.

The byte sizes below are what the GPU memory arithmetic (`promptyard.serving.fit`) uses.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from promptyard.spec.base import SpecModel, invalid

# Bytes per weight of each model dtype, and per weight of each quantization (which wins).
DTYPE_BYTES: dict[str, float] = {"bfloat16": 2.0, "float16": 2.0, "float32": 4.0}
QUANTIZATION_BYTES: dict[str, float] = {
    "fp8": 1.0,  # 8-bit floating point weights
    "int8": 1.0,  # 8-bit integer weights (e.g. W8A8 compressed-tensors checkpoints)
    "awq": 0.5,  # 4-bit
    "gptq": 0.5,  # 4-bit (the common GPTQ checkpoints)
    "bitsandbytes": 0.5,  # 4-bit NF4
}
# Bytes per KV-cache element; "auto" means the model's dtype.
KV_CACHE_DTYPE_BYTES: dict[str, float | None] = {
    "auto": None,
    "fp8": 1.0,
    "fp8_e4m3": 1.0,
    "fp8_e5m2": 1.0,
}
# The command-line spelling vLLM takes for `--quantization` (our `int8` is a W8A8 checkpoint).
VLLM_QUANTIZATION = {
    "fp8": "fp8",
    "int8": "compressed-tensors",
    "awq": "awq",
    "gptq": "gptq",
    "bitsandbytes": "bitsandbytes",
}

Dtype = Literal["bfloat16", "float16", "float32"]
Quantization = Literal["fp8", "int8", "awq", "gptq", "bitsandbytes"]
KvCacheDtype = Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]

# vLLM flags `extra_args` may carry. Everything the file models (max_model_len, the
# parallel sizes, ...) must be set through its own field, so the checks see it; flags that
# would break the generated pod (--host, --port, --model) or put a secret in a manifest
# (--api-key) or run code from the model repository (--trust-remote-code) are refused.
ALLOWED_EXTRA_ARGS: frozenset[str] = frozenset(
    {
        "--block-size",
        "--chat-template",
        "--disable-log-requests",
        "--disable-log-stats",
        "--enable-auto-tool-choice",
        "--enable-chunked-prefill",
        "--enforce-eager",
        "--generation-config",
        "--guided-decoding-backend",
        "--limit-mm-per-prompt",
        "--max-log-len",
        "--max-num-batched-tokens",
        "--max-seq-len-to-capture",
        "--num-scheduler-steps",
        "--reasoning-parser",
        "--scheduling-policy",
        "--seed",
        "--swap-space",
        "--tokenizer-mode",
        "--tool-call-parser",
        "--uvicorn-log-level",
    }
)
# Flags that have a field of their own (the fix names it).
MODELED_ARGS: dict[str, str] = {
    "--model": "model.id",
    "--revision": "model.revision",
    "--served-model-name": "served_model_name",
    "--dtype": "model.dtype",
    "--quantization": "model.quantization",
    "--max-model-len": "engine.max_model_len",
    "--gpu-memory-utilization": "engine.gpu_memory_utilization",
    "--max-num-seqs": "engine.max_num_seqs",
    "--tensor-parallel-size": "engine.tensor_parallel_size",
    "--pipeline-parallel-size": "engine.pipeline_parallel_size",
    "--enable-prefix-caching": "engine.enable_prefix_caching",
    "--kv-cache-dtype": "engine.kv_cache_dtype",
    "--host": "(set by the manifests)",
    "--port": "(set by the manifests)",
}

DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# Kubernetes resource quantities (the API server's own pattern), e.g. 8, 500m, 64Gi.
QUANTITY = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkKMGTPE]i?)?$"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _quantity(value: Any) -> Any:
    """`cpu: 8` is as good as `cpu: "8"`; bools and other types fall through to an error."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}"
    return value


Quantity = Annotated[str, BeforeValidator(_quantity), Field(pattern=QUANTITY)]


def _kubernetes_version(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise invalid(
            "invalid-value",
            "kubernetes_version {value} is a number (1.30 would read as 1.3); "
            'write it quoted, e.g. "1.31"',
            value=repr(value),
        )
    return value


class Image(SpecModel):
    """A container image, pinned: a tag that is not `latest`, and/or a digest."""

    repository: str = Field(
        pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$",
        description="e.g. vllm/vllm-openai or ghcr.io/acme/promptyard",
    )
    tag: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", description="Never `latest`."
    )
    digest: str | None = Field(None, description="sha256:<64 hex>, pins the exact image.")

    @field_validator("tag")
    @classmethod
    def _not_latest(cls, tag: str | None) -> str | None:
        if tag is not None and tag.lower() == "latest":
            raise invalid(
                "image-tag",
                "image tag `latest` moves under you: every rollout may run a different "
                "version; pin a release tag (e.g. v0.6.6) or a digest",
            )
        return tag

    @field_validator("digest")
    @classmethod
    def _digest_shape(cls, digest: str | None) -> str | None:
        if digest is not None and not _DIGEST.match(digest):
            raise invalid(
                "image-tag", "digest {digest!r} is not sha256:<64 hex digits>", digest=digest
            )
        return digest

    @model_validator(mode="after")
    def _pinned(self) -> Image:
        if self.tag is None and self.digest is None:
            raise invalid(
                "image-tag",
                "image {repository} has no tag or digest (it would run `latest`); pin a "
                "release tag or a digest",
                repository=self.repository,
            )
        return self

    def reference(self) -> str:
        """`repository:tag`, `repository@digest` or both."""
        ref = self.repository
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref


class Toleration(SpecModel):
    """A Kubernetes toleration (for the taint GPU node pools usually carry)."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class NodePool(SpecModel):
    """A pool of identical GPU nodes."""

    gpu: str = Field(description="GPU product, e.g. NVIDIA-L40S or NVIDIA-A100-SXM4-80GB.")
    memory_gib: float = Field(
        gt=0, le=1024, description="Memory per GPU in GiB, as nvidia-smi reports it (MiB/1024)."
    )
    gpus_per_node: int = Field(ge=1, le=64)
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels that select this pool."
    )
    tolerations: list[Toleration] = Field(default_factory=list)


class ModelFacts(SpecModel):
    """What the GPU memory arithmetic needs to know about the model (from its config.json)."""

    id: str = Field(min_length=1, description="Hugging Face repository id (or a local path).")
    revision: str = Field(
        min_length=1, description="The pinned revision: a commit sha (or a tag) of the model repo."
    )
    parameters_billions: float = Field(gt=0, le=100_000, description="Parameter count / 1e9.")
    layers: int = Field(ge=1, le=10_000, description="num_hidden_layers")
    attention_heads: int = Field(ge=1, le=10_000, description="num_attention_heads")
    kv_heads: int = Field(ge=1, le=10_000, description="num_key_value_heads")
    head_dim: int = Field(ge=1, le=100_000, description="hidden_size / num_attention_heads")
    dtype: Dtype = "bfloat16"
    quantization: Quantization | None = Field(None, description="How the weights are quantized.")
    context_length: int | None = Field(
        None, ge=1, description="max_position_embeddings: the longest context the model takes."
    )

    @model_validator(mode="after")
    def _kv_heads_at_most_heads(self) -> ModelFacts:
        if self.kv_heads > self.attention_heads:
            raise invalid(
                "invalid-value",
                "kv_heads {kv} is more than attention_heads {heads}; check the model's "
                "config.json (num_key_value_heads)",
                kv=self.kv_heads,
                heads=self.attention_heads,
            )
        return self


class Engine(SpecModel):
    """The vLLM OpenAI-compatible server: its image and engine arguments."""

    image: Image
    max_model_len: int = Field(ge=16, le=10_000_000, description="Longest sequence, in tokens.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of each GPU's memory vLLM may use."
    )
    max_num_seqs: int = Field(256, ge=1, le=65_536, description="Sequences batched at once.")
    tensor_parallel_size: int = Field(1, ge=1, le=64)
    pipeline_parallel_size: int = Field(1, ge=1, le=64)
    enable_prefix_caching: bool = False
    kv_cache_dtype: KvCacheDtype = "auto"
    extra_args: list[str] = Field(
        default_factory=list,
        description="More vLLM flags, from an allow-list: `--flag` or `--flag=value`.",
    )

    @field_validator("extra_args")
    @classmethod
    def _allowed(cls, args: list[str]) -> list[str]:
        for arg in args:
            flag = arg.split("=", 1)[0]
            if flag in MODELED_ARGS:
                raise invalid(
                    "engine-extra-args",
                    "{flag} has a field of its own; set {field} instead of passing it in extra_args",
                    flag=flag,
                    field=MODELED_ARGS[flag],
                )
            if flag not in ALLOWED_EXTRA_ARGS:
                raise invalid(
                    "engine-extra-args",
                    "{arg!r} is not an allowed extra argument; write `--flag` or `--flag=value` "
                    "with one of: {allowed}",
                    arg=arg,
                    allowed=", ".join(sorted(ALLOWED_EXTRA_ARGS)),
                )
        return args


class Resources(SpecModel):
    """What one pod requests (requests equal limits: GPU pods get the Guaranteed QoS class)."""

    gpus: int = Field(ge=1, le=64, description="nvidia.com/gpu; must equal TP x PP.")
    cpu: Quantity = Field(description="e.g. 8")
    memory: Quantity = Field(description="e.g. 64Gi")
    shared_memory: Quantity = Field(
        "8Gi", description="/dev/shm (NCCL needs it for tensor parallelism)."
    )


class Autoscaling(SpecModel):
    """A HorizontalPodAutoscaler (autoscaling/v2) on a per-pod custom metric."""

    min: int = Field(ge=1, le=1000)
    max: int = Field(ge=1, le=1000)
    metric: str = Field(
        "vllm:num_requests_waiting",
        pattern=r"^[A-Za-z_:][A-Za-z0-9_:]*$",
        description="A per-pod metric exposed through the custom metrics API.",
    )
    target: float = Field(gt=0, description="Target average value of the metric per pod.")

    @model_validator(mode="after")
    def _range(self) -> Autoscaling:
        if self.min > self.max:
            raise invalid(
                "autoscaling-range",
                "autoscaling min {low} is above max {high}; swap them",
                low=self.min,
                high=self.max,
            )
        return self


class Probes(SpecModel):
    """Health checks on vLLM's /health: the startup window must cover loading the weights."""

    startup_seconds: int = Field(
        600, ge=10, le=86_400, description="How long a new pod may take to load the weights."
    )
    period_seconds: int = Field(10, ge=1, le=300)
    timeout_seconds: int = Field(5, ge=1, le=300)
    failure_threshold: int = Field(
        3, ge=1, le=100, description="Liveness failures in a row before a restart."
    )


class SecretKey(SpecModel):
    """A key of a Kubernetes Secret (values never go into the manifests)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$")


def _names(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class ModelDeployment(SpecModel):
    """One model served by vLLM: a Deployment, Service, HPA and PodDisruptionBudget."""

    served_model_name: Annotated[
        list[Annotated[str, Field(min_length=1, pattern=r"^\S+$")]],
        BeforeValidator(_names),
        Field(min_length=1),
    ] = Field(
        description="The model name(s) clients ask for; the first is the primary (vLLM's "
        "metrics use it), the others are aliases."
    )
    pool: str = Field(description="The node pool (a key of `node_pools`).")
    model: ModelFacts
    engine: Engine
    resources: Resources
    replicas: int = Field(1, ge=0, le=1000, description="Ignored when `autoscaling` is set.")
    autoscaling: Autoscaling | None = None
    probes: Probes = Field(default_factory=Probes)
    memory_overhead_gib: float = Field(
        2.0,
        ge=0,
        le=1024,
        description="Per-GPU allowance for activations, CUDA graphs and the CUDA context.",
    )
    max_unavailable: int = Field(
        1, ge=0, description="PodDisruptionBudget: pods a node drain may take down at once."
    )
    hf_token_secret: SecretKey | None = Field(
        None, description="A Hugging Face token for gated models (HF_TOKEN)."
    )
    model_cache_pvc: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="A PersistentVolumeClaim caching the weights (default: an emptyDir).",
    )

    @field_validator("served_model_name")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise invalid("invalid-value", "served_model_name lists a name twice")
        return names


class Container(SpecModel):
    """CPU and memory of a small service pod (registry, gateway)."""

    cpu: Quantity = "500m"
    memory: Quantity = "512Mi"


class RegistryDeployment(SpecModel):
    """`promptyard serve`: pulls tags and environment files from git and serves them."""

    image: Image = Field(description="An image with promptyard installed.")
    replicas: int = Field(2, ge=1, le=100)
    source: str = Field(
        pattern=r"^(https?|ssh|git|file)://\S+$|^[\w.-]+@[\w.-]+:\S+$",
        description="The prompt repository's git URL.",
    )
    branch: str = Field("main", pattern=r"^[\w./-]+$")
    poll_seconds: float = Field(30, gt=0, le=86_400)
    resources: Container = Field(default_factory=Container)


class ExternalUpstream(SpecModel):
    """An OpenAI-compatible endpoint outside the cluster (or any URL) the gateway may call."""

    url: str = Field(pattern=r"^https?://\S+$", description="Base URL, e.g. https://host/v1")
    api_key_secret: SecretKey | None = None


class GatewayDeployment(SpecModel):
    """`promptyard gateway`: OpenAI-compatible; renders managed prompts and calls the model."""

    image: Image = Field(description="An image with promptyard installed.")
    replicas: int = Field(2, ge=1, le=100)
    label: str = Field(
        "production",
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="The environment served when a request names no label.",
    )
    default_upstream: str | None = Field(
        None,
        description="Where requests for a model no deployment serves go: a deployment name "
        "or a key of `upstreams`.",
    )
    upstreams: dict[str, ExternalUpstream] = Field(
        default_factory=dict, description="Model name -> an endpoint outside this cluster."
    )
    timeout_seconds: float = Field(600, gt=0, le=86_400)
    resources: Container = Field(default_factory=Container)


class RolloutController(SpecModel):
    """`promptyard rollout run`: one replica that advances or aborts canaries with a strategy
    from Prometheus's measurements, pushing each step to the repository."""

    image: Image = Field(description="An image with promptyard and git installed.")
    prometheus_url: str = Field(
        pattern=r"^https?://\S+$", description="Prometheus scraping the gateways."
    )
    remote: str = Field(
        pattern=r"^(https?|ssh|git|file)://\S+$|^[\w.-]+@[\w.-]+:\S+$",
        description="The prompt repository's git URL the controller clones and pushes to.",
    )
    branch: str = Field("main", pattern=r"^[\w./-]+$")
    poll_seconds: float = Field(15, gt=0, le=3600)
    token_secret: SecretKey | None = Field(
        None, description="A token that may push over HTTPS (sent as the git password)."
    )
    resources: Container = Field(default_factory=Container)


class ClusterSpec(SpecModel):
    name: str = Field(pattern=DNS_LABEL, max_length=63, description="Must equal the file's name.")
    namespace: str = Field(pattern=DNS_LABEL, max_length=63)
    kubernetes_version: Annotated[str, BeforeValidator(_kubernetes_version)] = Field(
        pattern=r"^1\.[0-9]{1,3}$", description='MAJOR.MINOR, quoted: "1.31"'
    )
    node_pools: dict[str, NodePool] = Field(min_length=1)
    deployments: dict[str, ModelDeployment] = Field(default_factory=dict)
    registry: RegistryDeployment | None = None
    gateway: GatewayDeployment | None = None
    rollout: RolloutController | None = None
    weights_load_gib_per_s: float = Field(
        0.25,
        gt=0,
        description="How fast a pod downloads and loads weights; the startup window check uses it.",
    )
