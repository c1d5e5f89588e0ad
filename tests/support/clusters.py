"""Cluster files for tests: a realistic two-model cluster as a dict, edited per test.

`cluster_doc()` is an 8B model on one L40S and a 70B model with tensor parallelism 4 on
A100 80GB nodes, with the registry and the gateway; `cluster_text(doc)` is its YAML (with the
schema modeline); `line_of(text, needle)` finds where something landed, for line asserts.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

MODELINE = "# yaml-language-server: $schema=../../tools/promptyard/schemas/cluster.json\n"

LLAMA_8B: dict[str, Any] = {
    "id": "meta-llama/Llama-3.1-8B-Instruct",
    "revision": "0e9e39f249a16976918f6564b8830bc894c89659",
    "parameters_billions": 8.03,
    "layers": 32,
    "attention_heads": 32,
    "kv_heads": 8,
    "head_dim": 128,
    "dtype": "bfloat16",
    "context_length": 131072,
}
LLAMA_70B: dict[str, Any] = {
    "id": "meta-llama/Llama-3.1-70B-Instruct",
    "revision": "1605565b47bb9346c5515c34102e054115b4f98b",
    "parameters_billions": 70.0,
    "layers": 80,
    "attention_heads": 64,
    "kv_heads": 8,
    "head_dim": 128,
    "dtype": "bfloat16",
    "context_length": 131072,
}
VLLM_IMAGE = {"repository": "vllm/vllm-openai", "tag": "v0.8.5"}
PROMPTYARD_IMAGE = {"repository": "ghcr.io/acme/promptyard", "tag": "0.1.0"}
TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def cluster_doc(name: str = "gpu", *, served_8b: tuple[str, ...] = ("llama-8b",)) -> dict[str, Any]:
    """A valid cluster that lints clean (change it per test); nothing in it is shared."""
    return json.loads(
        json.dumps(
            {
                "name": name,
                "namespace": "serving",
                "kubernetes_version": "1.31",
                "node_pools": {
                    "l40s": {
                        "gpu": "NVIDIA-L40S",
                        "memory_gib": 44.99,
                        "gpus_per_node": 4,
                        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-L40S"},
                        "tolerations": [TOLERATION],
                    },
                    "a100": {
                        "gpu": "NVIDIA-A100-SXM4-80GB",
                        "memory_gib": 80,
                        "gpus_per_node": 8,
                        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
                        "tolerations": [TOLERATION],
                    },
                },
                "deployments": {
                    "llama-8b": {
                        "served_model_name": list(served_8b),
                        "pool": "l40s",
                        "model": LLAMA_8B,
                        "engine": {
                            "image": VLLM_IMAGE,
                            "max_model_len": 8192,
                            "gpu_memory_utilization": 0.9,
                            "max_num_seqs": 16,
                            "tensor_parallel_size": 1,
                            "enable_prefix_caching": True,
                            "extra_args": ["--disable-log-requests"],
                        },
                        "resources": {"gpus": 1, "cpu": 8, "memory": "48Gi"},
                        "autoscaling": {
                            "min": 1,
                            "max": 4,
                            "metric": "vllm:num_requests_waiting",
                            "target": 4,
                        },
                        "probes": {"startup_seconds": 600},
                        "hf_token_secret": {"name": "hf-token", "key": "token"},
                    },
                    "llama-70b": {
                        "served_model_name": ["llama-70b"],
                        "pool": "a100",
                        "model": LLAMA_70B,
                        "engine": {
                            "image": VLLM_IMAGE,
                            "max_model_len": 16384,
                            "gpu_memory_utilization": 0.9,
                            "max_num_seqs": 24,
                            "tensor_parallel_size": 4,
                        },
                        "resources": {
                            "gpus": 4,
                            "cpu": 32,
                            "memory": "256Gi",
                            "shared_memory": "16Gi",
                        },
                        "replicas": 2,
                        "probes": {"startup_seconds": 1200},
                    },
                },
                "registry": {
                    "image": PROMPTYARD_IMAGE,
                    "replicas": 2,
                    "source": "https://github.com/acme/prompts.git",
                },
                "gateway": {
                    "image": PROMPTYARD_IMAGE,
                    "replicas": 2,
                    "label": "production",
                    "default_upstream": "llama-8b",
                },
            }
        )
    )


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def cluster_text(doc: dict[str, Any]) -> str:
    return MODELINE + yaml.dump(doc, Dumper=_NoAliases, sort_keys=False)


def line_of(text: str, needle: str, *, after: str | None = None) -> int:
    """1-based number of the first line containing `needle` (below the line with `after`)."""
    lines = text.splitlines()
    start = line_of(text, after) if after else 0
    for number, line in enumerate(lines[start:], start=start + 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not found in:\n{text}")
