"""The GPU memory arithmetic, against numbers computed by hand."""

from __future__ import annotations

import typing

import pytest

from promptyard.serving.fit import (
    FitInput,
    compute,
    deployment_fit,
    heads_problem,
    remedies,
    startup_estimate_s,
)
from promptyard.spec.cluster import (
    DTYPE_BYTES,
    KV_CACHE_DTYPE_BYTES,
    QUANTIZATION_BYTES,
    ClusterSpec,
    Dtype,
    KvCacheDtype,
    Quantization,
)
from support.clusters import cluster_doc

GIB = 2**30


def seventy_b(tp: int, **changes: object) -> FitInput:
    """A 70e9-parameter bf16 model (80 layers, 8 KV heads of 128) on 80 GiB GPUs."""
    values: dict[str, object] = {
        "gpu_memory_gib": 80,
        "gpu_memory_utilization": 0.9,
        "overhead_gib": 2,
        "parameters_billions": 70,
        "weight_bytes": 2,
        "layers": 80,
        "kv_heads": 8,
        "head_dim": 128,
        "kv_bytes": 2,
        "tensor_parallel": tp,
        "pipeline_parallel": 1,
        "max_model_len": 8192,
        "max_num_seqs": 16,
    }
    values.update(changes)
    return FitInput(**values)  # type: ignore[arg-type]


def test_70b_bf16_does_not_fit_one_80_gib_gpu() -> None:
    fit = compute(seventy_b(1))
    # usable: 80 GiB x 0.9 - 2 GiB = 70 GiB = 75,161,927,680 bytes; weights 140e9 bytes
    assert fit.usable_bytes == 75_161_927_680
    assert fit.weights_bytes == 140e9
    # KV per token: 2 x 80 layers x 8 heads x 128 x 2 bytes
    assert fit.kv_bytes_per_token == 327_680
    assert not fit.fits and fit.tokens == 0 and fit.sequences == 0
    # short by: 140e9 + 8192 x 327,680 - 75,161,927,680
    assert fit.shortfall_bytes == 67_522_426_880


def test_70b_bf16_fits_with_tensor_parallelism_4() -> None:
    fit = compute(seventy_b(4))
    assert fit.weights_bytes == 35e9  # a quarter of the weights per GPU
    assert fit.kv_bytes_per_token == 81_920  # 2 of the 8 KV heads per GPU
    assert fit.kv_budget_bytes == 40_161_927_680
    assert fit.tokens == 490_257  # floor(40,161,927,680 / 81,920)
    assert fit.sequences == 59  # floor(490,257 / 8,192)
    assert fit.fits and fit.fits_all and fit.shortfall_bytes == 0


def test_8b_on_an_l40s_from_the_cluster_file() -> None:
    spec = ClusterSpec.model_validate(cluster_doc())
    deployment = spec.deployments["llama-8b"]
    fit = deployment_fit(deployment, spec.node_pools["l40s"])
    # 44.99 GiB x 0.9 - 2 GiB - 8.03e9 x 2 bytes = 25,269,396,547.584 bytes of KV cache
    assert fit.kv_budget_bytes == pytest.approx(25_269_396_547.584)
    assert fit.kv_bytes_per_token == 131_072  # 2 x 32 x 8 x 128 x 2
    assert fit.tokens == 192_790 and fit.sequences == 23
    assert fit.fits_all  # max_num_seqs 16


def test_pipeline_stages_hold_the_ceiling_of_the_layers() -> None:
    fit = compute(seventy_b(1, pipeline_parallel=3))
    assert fit.kv_bytes_per_token == 2 * 27 * 8 * 128 * 2  # ceil(80 / 3) = 27 layers
    assert fit.weights_bytes == pytest.approx(140e9 / 3)


def test_fewer_kv_heads_than_ranks_keep_one_head_each() -> None:
    fit = compute(seventy_b(16))
    assert fit.kv_bytes_per_token == 2 * 80 * 1 * 128 * 2


def test_quantization_and_kv_cache_dtype_change_the_bytes() -> None:
    awq = compute(seventy_b(1, weight_bytes=QUANTIZATION_BYTES["awq"]))
    assert awq.weights_bytes == 35e9
    fp8_cache = compute(seventy_b(4, kv_bytes=KV_CACHE_DTYPE_BYTES["fp8"]))
    assert fp8_cache.kv_bytes_per_token == 40_960
    assert fp8_cache.tokens == 980_515  # twice the tokens of the bf16 cache (floor)


def test_byte_tables_cover_every_spelling_the_schema_accepts() -> None:
    assert set(typing.get_args(Dtype)) == set(DTYPE_BYTES)
    assert set(typing.get_args(Quantization)) == set(QUANTIZATION_BYTES)
    assert set(typing.get_args(KvCacheDtype)) == set(KV_CACHE_DTYPE_BYTES)


@pytest.mark.parametrize(
    ("heads", "kv_heads", "tp", "problem"),
    [
        (64, 8, 4, None),
        (64, 8, 16, None),  # 8 KV heads replicated over 16 ranks
        (40, 8, 16, "attention_heads 40 is not divisible by tensor_parallel_size 16"),
        (48, 6, 4, "kv_heads 6 is not divisible by tensor_parallel_size 4"),
        (48, 3, 6, None),
        (60, 4, 6, "tensor_parallel_size 6 is not a multiple of kv_heads 4"),
    ],
)
def test_heads_must_split_over_tensor_parallel_ranks(
    heads: int, kv_heads: int, tp: int, problem: str | None
) -> None:
    assert heads_problem(heads, kv_heads, tp) == problem


def test_remedies_name_a_larger_tp_a_shorter_context_and_a_quantization() -> None:
    doc = cluster_doc()
    doc["deployments"]["llama-70b"]["engine"]["tensor_parallel_size"] = 1
    spec = ClusterSpec.model_validate(doc)
    deployment, pool = spec.deployments["llama-70b"], spec.node_pools["a100"]
    fixes = remedies(deployment, pool, 1)
    # TP 2 would hold one 16,384-token sequence; TP 4 holds all 24 of max_num_seqs.
    assert fixes[0] == "tensor_parallel_size 4 (resources.gpus 4): 29 sequences"
    assert any(f.startswith("model.quantization awq (a 4-bit checkpoint)") for f in fixes)
    # Every single change it names really fits one sequence.
    for tp in (2, 4):
        doc["deployments"]["llama-70b"]["engine"]["tensor_parallel_size"] = tp
        fitted = ClusterSpec.model_validate(doc).deployments["llama-70b"]
        assert deployment_fit(fitted, pool).fits


def test_remedies_for_too_few_sequences_include_a_shorter_context() -> None:
    doc = cluster_doc()
    doc["deployments"]["llama-8b"]["engine"]["max_num_seqs"] = 64
    spec = ClusterSpec.model_validate(doc)
    deployment, pool = spec.deployments["llama-8b"], spec.node_pools["l40s"]
    assert deployment_fit(deployment, pool).sequences == 23
    fixes = remedies(deployment, pool, 64)
    length = next(f for f in fixes if f.startswith("max_model_len"))
    # 192,790 tokens // 64 = 3,012, down to a multiple of 256: 2,816 (68 sequences)
    assert length == "max_model_len 2,816: 68 sequences"
    assert "max_num_seqs 23" in fixes
    assert any(f.startswith("tensor_parallel_size 4") for f in fixes)


def test_startup_estimate_is_download_plus_engine_start() -> None:
    spec = ClusterSpec.model_validate(cluster_doc())
    # 140e9 bytes = 130.4 GiB at 0.25 GiB/s, plus 60 s
    estimate = startup_estimate_s(spec.deployments["llama-70b"], 0.25)
    assert estimate == pytest.approx(60 + 140e9 / GIB / 0.25)
