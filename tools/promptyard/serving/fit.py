"""GPU memory arithmetic: does a model deployment fit its GPUs, and how many sequences?

Per GPU (docs/architecture.md §9):

    weights          = parameters × bytes(dtype or quantization) / (TP × PP)
    KV per token     = 2 × ceil(layers / PP) × ceil(kv_heads / TP) × head_dim × bytes(kv dtype)
    usable           = GPU memory × gpu_memory_utilization − overhead allowance
    KV budget        = usable − weights
    tokens           = floor(KV budget / KV per token)
    sequences        = floor(tokens / max_model_len)

The 2 is one key and one value vector per head. A pipeline stage holds `layers / PP` layers;
when PP does not divide the layer count the largest stage holds the ceiling, which is what
limits it. With fewer KV heads than TP ranks every rank holds (a replica of) one head.

It is an error when not even one sequence of `max_model_len` fits (vLLM refuses to start),
and a warning when fewer than `max_num_seqs` fit (requests queue or get preempted at long
contexts). Both say by how much, and `remedies` names changes that would fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from promptyard.spec.cluster import (
    DTYPE_BYTES,
    KV_CACHE_DTYPE_BYTES,
    QUANTIZATION_BYTES,
    ModelDeployment,
    NodePool,
)

GIB = float(1 << 30)
PARALLEL_SIZES = (1, 2, 4, 8, 16, 32, 64)
ENGINE_START_S = 60.0  # CUDA context, memory profiling and CUDA graph capture, roughly


@dataclass(frozen=True)
class FitInput:
    """Everything the arithmetic needs, as plain numbers."""

    gpu_memory_gib: float
    gpu_memory_utilization: float
    overhead_gib: float
    parameters_billions: float
    weight_bytes: float  # bytes per parameter (dtype, or the quantization when there is one)
    layers: int
    kv_heads: int
    head_dim: int
    kv_bytes: float  # bytes per KV-cache element
    tensor_parallel: int
    pipeline_parallel: int
    max_model_len: int
    max_num_seqs: int

    @classmethod
    def of(cls, deployment: ModelDeployment, pool: NodePool) -> FitInput:
        model, engine = deployment.model, deployment.engine
        return cls(
            gpu_memory_gib=pool.memory_gib,
            gpu_memory_utilization=engine.gpu_memory_utilization,
            overhead_gib=deployment.memory_overhead_gib,
            parameters_billions=model.parameters_billions,
            weight_bytes=weight_bytes(model.dtype, model.quantization),
            layers=model.layers,
            kv_heads=model.kv_heads,
            head_dim=model.head_dim,
            kv_bytes=kv_bytes(engine.kv_cache_dtype, model.dtype),
            tensor_parallel=engine.tensor_parallel_size,
            pipeline_parallel=engine.pipeline_parallel_size,
            max_model_len=engine.max_model_len,
            max_num_seqs=engine.max_num_seqs,
        )


def weight_bytes(dtype: str, quantization: str | None) -> float:
    """Bytes per parameter: the quantization's when the weights are quantized."""
    return QUANTIZATION_BYTES[quantization] if quantization else DTYPE_BYTES[dtype]


def kv_bytes(kv_cache_dtype: str, dtype: str) -> float:
    """Bytes per KV-cache element: `auto` stores the cache in the model's dtype."""
    explicit = KV_CACHE_DTYPE_BYTES[kv_cache_dtype]
    return explicit if explicit is not None else DTYPE_BYTES[dtype]


@dataclass(frozen=True)
class Fit:
    """The memory budget of one GPU of a deployment (bytes unless the name says GiB)."""

    input: FitInput
    weights_bytes: float
    kv_bytes_per_token: float
    usable_bytes: float

    @property
    def kv_budget_bytes(self) -> float:
        return self.usable_bytes - self.weights_bytes

    @property
    def tokens(self) -> int:
        """KV-cache capacity in tokens (0 when the weights alone do not fit)."""
        return max(0, math.floor(self.kv_budget_bytes / self.kv_bytes_per_token))

    @property
    def sequence_bytes(self) -> float:
        """The KV cache of one `max_model_len` sequence."""
        return self.input.max_model_len * self.kv_bytes_per_token

    @property
    def sequences(self) -> int:
        """How many `max_model_len` sequences the KV cache holds at once."""
        return self.tokens // self.input.max_model_len

    @property
    def fits(self) -> bool:
        return self.sequences >= 1

    @property
    def fits_all(self) -> bool:
        return self.sequences >= self.input.max_num_seqs

    @property
    def shortfall_bytes(self) -> float:
        """Memory missing for one sequence (0 when it fits)."""
        return max(0.0, self.weights_bytes + self.sequence_bytes - self.usable_bytes)

    @property
    def batch_shortfall_bytes(self) -> float:
        """Memory missing for `max_num_seqs` sequences (0 when they fit)."""
        need = self.weights_bytes + self.input.max_num_seqs * self.sequence_bytes
        return max(0.0, need - self.usable_bytes)

    def to_dict(self) -> dict[str, Any]:
        i = self.input
        return {
            "gpu_memory_gib": i.gpu_memory_gib,
            "gpu_memory_utilization": i.gpu_memory_utilization,
            "overhead_gib": i.overhead_gib,
            "tensor_parallel_size": i.tensor_parallel,
            "pipeline_parallel_size": i.pipeline_parallel,
            "usable_gib": round(self.usable_bytes / GIB, 3),
            "weights_gib_per_gpu": round(self.weights_bytes / GIB, 3),
            "kv_budget_gib": round(self.kv_budget_bytes / GIB, 3),
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_tokens": self.tokens,
            "max_model_len": i.max_model_len,
            "max_num_seqs": i.max_num_seqs,
            "sequences": self.sequences,
            "fits": self.fits,
            "fits_max_num_seqs": self.fits_all,
            "shortfall_gib": round(self.shortfall_bytes / GIB, 3),
        }


def compute(i: FitInput) -> Fit:
    """The per-GPU budget of `i` (see the module docstring for the formulas)."""
    gpus = i.tensor_parallel * i.pipeline_parallel
    weights = i.parameters_billions * 1e9 * i.weight_bytes / gpus
    layers_per_stage = math.ceil(i.layers / i.pipeline_parallel)
    heads_per_rank = math.ceil(i.kv_heads / i.tensor_parallel)
    per_token = 2 * layers_per_stage * heads_per_rank * i.head_dim * i.kv_bytes
    usable = i.gpu_memory_gib * GIB * i.gpu_memory_utilization - i.overhead_gib * GIB
    return Fit(i, weights, per_token, usable)


def deployment_fit(deployment: ModelDeployment, pool: NodePool) -> Fit:
    return compute(FitInput.of(deployment, pool))


def startup_estimate_s(deployment: ModelDeployment, load_gib_per_s: float) -> float:
    """Seconds a new pod needs to download and load the whole model, plus engine start-up."""
    model = deployment.model
    total = model.parameters_billions * 1e9 * weight_bytes(model.dtype, model.quantization)
    return ENGINE_START_S + total / GIB / load_gib_per_s


def heads_problem(attention_heads: int, kv_heads: int, tp: int) -> str | None:
    """Why vLLM cannot split these heads over `tp` ranks, or None."""
    if attention_heads % tp:
        return f"attention_heads {attention_heads} is not divisible by tensor_parallel_size {tp}"
    if kv_heads >= tp and kv_heads % tp:
        return f"kv_heads {kv_heads} is not divisible by tensor_parallel_size {tp}"
    if kv_heads < tp and tp % kv_heads:
        return f"tensor_parallel_size {tp} is not a multiple of kv_heads {kv_heads}"
    return None


def valid_tensor_parallel(deployment: ModelDeployment, pool: NodePool) -> list[int]:
    """TP sizes that split the heads and, times PP, fit on one node of the pool."""
    pp = deployment.engine.pipeline_parallel_size
    model = deployment.model
    return [
        tp
        for tp in PARALLEL_SIZES
        if tp * pp <= pool.gpus_per_node
        and heads_problem(model.attention_heads, model.kv_heads, tp) is None
    ]


def _seqs(n: int) -> str:
    return f"{n:,} sequence" + ("" if n == 1 else "s")


def _gib(value: float) -> str:
    return f"{value / GIB:,.1f} GiB"


def _round_len(tokens: int) -> int:
    """A max_model_len a person would write: a multiple of 256 (or of 16 when small)."""
    step = 256 if tokens >= 1024 else 16
    return tokens // step * step


def remedies(deployment: ModelDeployment, pool: NodePool, target: int) -> list[str]:
    """Single changes that make at least `target` sequences of max_model_len fit."""
    base = FitInput.of(deployment, pool)
    out: list[str] = []
    # The smallest larger TP that fits max_num_seqs sequences, else the smallest that fits
    # `target` of them.
    larger = [
        (tp, compute(replace(base, tensor_parallel=tp)))
        for tp in valid_tensor_parallel(deployment, pool)
        if tp > base.tensor_parallel
    ]
    chosen = next((c for c in larger if c[1].sequences >= base.max_num_seqs), None) or next(
        (c for c in larger if c[1].sequences >= target), None
    )
    if chosen is not None:
        tp, fit = chosen
        gpus = tp * base.pipeline_parallel
        out.append(f"tensor_parallel_size {tp} (resources.gpus {gpus}): {_seqs(fit.sequences)}")
    current = compute(base)
    if current.tokens >= 16 * target:
        length = _round_len(current.tokens // target)
        if 16 <= length < base.max_model_len:
            out.append(f"max_model_len {length:,}: {_seqs(current.tokens // length)}")
    if target > 1 and current.fits:
        out.append(f"max_num_seqs {current.sequences}")
    if base.kv_bytes > 1:
        fit = compute(replace(base, kv_bytes=1.0))
        if fit.sequences >= target:
            out.append(f"kv_cache_dtype fp8: {_seqs(fit.sequences)}")
    if deployment.model.quantization is None:
        for name, bits in (("fp8", 8), ("awq", 4)):
            fit = compute(replace(base, weight_bytes=QUANTIZATION_BYTES[name]))
            if fit.sequences >= target:
                out.append(
                    f"model.quantization {name} (a {bits}-bit checkpoint): {_seqs(fit.sequences)}"
                )
                break
    if base.gpu_memory_utilization < 0.95:
        fit = compute(replace(base, gpu_memory_utilization=0.95))
        if fit.sequences >= target:
            out.append(f"gpu_memory_utilization 0.95: {_seqs(fit.sequences)}")
    return out


def explain_no_fit(name: str, fit: Fit, pool: NodePool, fixes: list[str]) -> str:
    """The K001 message: the arithmetic, the shortfall, and what would fit."""
    i = fit.input
    what = (
        f"weights {_gib(fit.weights_bytes)} + KV cache of one {i.max_model_len:,}-token "
        f"sequence {_gib(fit.sequence_bytes)}"
    )
    usable = (
        f"usable {_gib(fit.usable_bytes)} ({i.gpu_memory_gib:g} GiB x "
        f"{i.gpu_memory_utilization:g} - {i.overhead_gib:g} GiB overhead)"
    )
    message = (
        f"{name} does not fit on {pool.gpu} at tensor_parallel_size {i.tensor_parallel}, "
        f"pipeline_parallel_size {i.pipeline_parallel}: per GPU {what} > {usable}; short by "
        f"{_gib(fit.shortfall_bytes)}"
    )
    return message + (f"; would fit: {'; '.join(fixes)}" if fixes else "; no single change fits it")


def explain_few_sequences(name: str, fit: Fit, fixes: list[str]) -> str:
    """The K002 message: capacity against max_num_seqs, and what would fit them all."""
    i = fit.input
    return (
        f"{name}: the KV cache holds {fit.tokens:,} tokens per GPU ({_gib(fit.kv_budget_bytes)}),"
        f" {_seqs(fit.sequences)} of max_model_len {i.max_model_len:,}, fewer than "
        f"max_num_seqs {i.max_num_seqs} (short by {_gib(fit.batch_shortfall_bytes)}); long "
        "requests beyond that queue or get preempted"
        + (f"; would fit: {'; '.join(fixes)}" if fixes else "")
    )
