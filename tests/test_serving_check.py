"""Cluster files through `promptyard lint` and `promptyard serving check`: every finding with
its file, line and fix, never a traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from promptyard.lint import findings_at
from promptyard.release.releaser import release
from promptyard.repo.workspace import Workspace
from support.clusters import cluster_doc, cluster_text, line_of
from support.repo import PromptRepo, prompt_doc

CLUSTER = "serving/clusters/gpu.yaml"
ENVIRONMENT = "serving/environments/production.yaml"


def lint(repo: PromptRepo) -> list[dict[str, Any]]:
    result = repo.cli("lint", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    assert result.json["ok"] == (result.exit_code == 0)
    return result.json["findings"]


def only(repo: PromptRepo, code: str) -> dict[str, Any]:
    found = lint(repo)
    hits = [f for f in found if f["rule"] == code]
    assert len(hits) == 1, f"expected one {code}: {found}"
    return hits[0]


def write_cluster(repo: PromptRepo, doc: dict[str, Any], path: str = CLUSTER) -> str:
    """Write the cluster file (and an empty production environment for its gateway)."""
    text = cluster_text(doc)
    repo.write(path, text)
    if not (repo.root / ENVIRONMENT).exists():
        repo.write(ENVIRONMENT, "environment: production\nprompts: {}\n")
    return text


def serve_prompt(repo: PromptRepo, model: str = "llama-8b", max_tokens: int = 400) -> str:
    """A prompt with a dataset, pinned in production, which the cluster `gpu` serves."""
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(
            model={
                "provider": "default",
                "name": model,
                "parameters": {"temperature": 0, "max_tokens": max_tokens},
            },
            evals=[
                {"dataset": "golden/greet.jsonl", "assert": [{"type": "contains", "value": "Ann"}]}
            ],
        ),
    )
    repo.write(
        "golden/greet.jsonl",
        "".join(
            json.dumps({"id": f"c{i}", "vars": {"who": "Ann " * 50 * i}}) + "\n" for i in range(5)
        ),
    )
    text = "environment: production\ncluster: gpu\nprompts:\n  greet:\n    version: 1.0.0\n"
    repo.write(ENVIRONMENT, text)
    return text


def test_a_realistic_cluster_lints_clean_and_serving_check_shows_the_budget(
    repo: PromptRepo,
) -> None:
    write_cluster(repo, cluster_doc())
    serve_prompt(repo)
    assert lint(repo) == []
    result = repo.cli("serving", "check")
    assert result.exit_code == 0, result.stdout
    rows = {line.split()[1]: line for line in result.stdout.splitlines()[1:3]}
    assert "NVIDIA-L40S (44.99 GiB)" in rows["llama-8b"]
    assert "192,790" in rows["llama-8b"] and "23 x 8,192 (max_num_seqs 16)" in rows["llama-8b"]
    assert "4 x 1" in rows["llama-70b"] and "32.6 GiB" in rows["llama-70b"]
    assert "All checks passed" in result.stdout


def test_serving_check_json(repo: PromptRepo) -> None:
    write_cluster(repo, cluster_doc())
    result = repo.cli("serving", "check", "--format", "json")
    assert result.exit_code == 0
    payload = result.json
    assert payload["ok"] is True and payload["clusters"] == ["gpu"]
    budget = {d["deployment"]: d["budget"] for d in payload["deployments"]}
    assert budget["llama-70b"]["kv_tokens"] == 490_257
    assert budget["llama-70b"]["sequences"] == 29  # 490,257 // 16,384
    assert budget["llama-8b"]["fits_max_num_seqs"] is True


def test_a_model_that_cannot_fit_is_an_error_with_the_shortfall_and_the_fix(
    repo: PromptRepo,
) -> None:
    doc = cluster_doc()
    doc["deployments"]["llama-70b"]["engine"]["tensor_parallel_size"] = 1
    doc["deployments"]["llama-70b"]["resources"]["gpus"] = 1
    text = write_cluster(repo, doc)
    finding = only(repo, "K001")
    assert finding["file"] == CLUSTER
    assert finding["line"] == line_of(text, "llama-70b:", after="deployments:")
    message = finding["message"]
    assert "llama-70b does not fit on NVIDIA-A100-SXM4-80GB" in message
    assert "weights 130.4 GiB" in message and "usable 70.0 GiB" in message
    assert "short by 65.4 GiB" in message  # 140e9 + 16,384 x 327,680 bytes - 70 GiB
    assert "would fit: tensor_parallel_size 4 (resources.gpus 4): 29 sequences" in message
    result = repo.cli("serving", "check")
    assert result.exit_code == 1
    assert f"{line_of(text, 'llama-70b:', after='deployments:')}:3  error  K001" in result.stdout


def test_fewer_sequences_than_max_num_seqs_is_a_warning(repo: PromptRepo) -> None:
    doc = cluster_doc()
    doc["deployments"]["llama-8b"]["engine"]["max_num_seqs"] = 64
    text = write_cluster(repo, doc)
    finding = only(repo, "K002")
    assert finding["severity"] == "warning"
    assert finding["line"] == line_of(text, "llama-8b:", after="deployments:")
    assert "23 sequences of max_model_len 8,192, fewer than max_num_seqs 64" in finding["message"]
    assert "max_num_seqs 23" in finding["message"]
    assert repo.cli("serving", "check").exit_code == 0  # warnings do not fail


@pytest.mark.parametrize(
    ("change", "code", "needle", "message"),
    [
        (
            lambda d: d["deployments"]["llama-70b"]["model"].update(attention_heads=62),
            "K003",
            "tensor_parallel_size: 4",
            "attention_heads 62 is not divisible by tensor_parallel_size 4",
        ),
        (
            lambda d: d["deployments"]["llama-70b"]["resources"].update(gpus=8),
            "K004",
            "gpus: 8",
            "resources.gpus is 8 but tensor_parallel_size 4 x pipeline_parallel_size 1 = 4",
        ),
        (
            lambda d: d["node_pools"]["a100"].update(gpus_per_node=2),
            "K005",
            "gpus: 4",
            "a pod asks for 4 GPUs but a node of pool 'a100' has 2",
        ),
        (
            lambda d: d["deployments"]["llama-8b"].update(pool="l40"),
            "K006",
            "pool: l40",
            "no node pool 'l40'; did you mean 'l40s'?",
        ),
        (
            lambda d: d["deployments"]["llama-70b"]["probes"].update(startup_seconds=300),
            "K010",
            "startup_seconds: 300",
            "set probes.startup_seconds to 900",
        ),
        (
            lambda d: d.update(name="gpu-east"),
            "K011",
            "name: gpu-east",
            "set `name: gpu`",
        ),
        (
            lambda d: d["deployments"]["llama-70b"]["served_model_name"].append("llama-8b"),
            "K013",
            "- llama-8b",
            "llama-70b serves 'llama-8b', which deployment llama-8b serves too",
        ),
        (
            lambda d: d.update(kubernetes_version="1.22"),
            "K014",
            "kubernetes_version",
            "Kubernetes 1.22 is too old",
        ),
        (
            lambda d: d["gateway"].update(default_upstream="llama-8"),
            "K015",
            "default_upstream",
            "did you mean 'llama-8b'?",
        ),
        (
            lambda d: d["deployments"]["llama-8b"]["engine"].update(max_model_len=200_000),
            "K009",
            "max_model_len: 200000",
            "beyond the model's context length 131,072",
        ),
    ],
)
def test_each_cluster_rule_points_at_the_line_to_fix(
    repo: PromptRepo, change: Any, code: str, needle: str, message: str
) -> None:
    doc = cluster_doc()
    change(doc)
    text = write_cluster(repo, doc)
    finding = only(repo, code)
    assert finding["file"] == CLUSTER
    if code == "K013":
        assert finding["line"] == line_of(text, needle, after="llama-70b:")
    else:
        assert finding["line"] == line_of(text, needle)
    assert message in finding["message"]


@pytest.mark.parametrize(
    ("change", "code", "needle", "message"),
    [
        (
            lambda d: d["deployments"]["llama-8b"]["engine"]["image"].update(tag="latest"),
            "K007",
            "tag: latest",
            "image tag `latest` moves under you",
        ),
        (
            lambda d: d["registry"]["image"].pop("tag"),
            "K007",
            "repository: ghcr.io/acme/promptyard",
            "has no tag or digest",
        ),
        (
            lambda d: d["deployments"]["llama-8b"]["engine"].update(
                extra_args=["--max-model-len=4096"]
            ),
            "K012",
            "--max-model-len=4096",
            "set engine.max_model_len instead",
        ),
        (
            lambda d: d["deployments"]["llama-8b"]["engine"].update(
                extra_args=["--trust-remote-code"]
            ),
            "K012",
            "--trust-remote-code",
            "is not an allowed extra argument",
        ),
        (
            lambda d: d["deployments"]["llama-8b"]["autoscaling"].update(min=5),
            "K017",
            "min: 5",
            "autoscaling min 5 is above max 4; swap them",
        ),
        (
            lambda d: d.update(kubernetes_version=1.3),
            "S002",
            "kubernetes_version",
            'write it quoted, e.g. "1.31"',
        ),
        (
            lambda d: d["deployments"]["llama-8b"]["model"].update(kv_head=8),
            "S001",
            "kv_head:",
            "did you mean 'kv_heads'?",
        ),
    ],
)
def test_schema_level_problems_are_findings_too(
    repo: PromptRepo, change: Any, code: str, needle: str, message: str
) -> None:
    doc = cluster_doc()
    change(doc)
    text = write_cluster(repo, doc)
    finding = only(repo, code)
    assert finding["file"] == CLUSTER
    assert finding["line"] == line_of(text, needle)
    assert message in finding["message"]


def test_a_deployment_name_that_is_no_kubernetes_name(repo: PromptRepo) -> None:
    doc = cluster_doc()
    doc["deployments"]["Llama_8B"] = doc["deployments"].pop("llama-8b")
    doc["gateway"]["default_upstream"] = "Llama_8B"
    text = write_cluster(repo, doc)
    finding = only(repo, "K016")
    assert finding["line"] == line_of(text, "Llama_8B:") and finding["column"] == 3
    assert "is not a Kubernetes name" in finding["message"]


def test_prompts_served_by_the_cluster_must_name_a_served_model(repo: PromptRepo) -> None:
    write_cluster(repo, cluster_doc())
    env = serve_prompt(repo, model="gpt-4o-mini")
    finding = only(repo, "K008")
    assert finding["file"] == ENVIRONMENT
    assert finding["line"] == line_of(env, "version: 1.0.0")
    assert (
        "greet 1.0.0 uses model 'gpt-4o-mini', which cluster gpu does not serve"
        in (finding["message"])
    )
    assert "llama-70b, llama-8b" in finding["message"]
    # Serving it under an alias fixes it.
    write_cluster(repo, cluster_doc(served_8b=("llama-8b", "gpt-4o-mini")))
    assert lint(repo) == []


def test_max_tokens_plus_a_typical_input_must_fit_max_model_len(repo: PromptRepo) -> None:
    doc = cluster_doc()
    doc["deployments"]["llama-8b"]["engine"]["max_model_len"] = 500
    write_cluster(repo, doc)
    env = serve_prompt(repo, max_tokens=400)
    finding = only(repo, "K009")
    assert finding["file"] == ENVIRONMENT and finding["line"] == line_of(env, "version")
    # The median golden case says "Ann " 100 times. At ~4 characters a token plus 4 a
    # message: the system message "Be brief." 3 + 4, the user message "Hi " + 400
    # characters 101 + 4 -> 112 tokens.
    assert finding["message"] == (
        "greet 1.0.0: max_tokens 400 + a typical input of ~112 tokens = 512 exceeds "
        "max_model_len 500 of llama-8b (cluster gpu); raise max_model_len or lower max_tokens"
    )
    doc["deployments"]["llama-8b"]["engine"]["max_model_len"] = 1024
    write_cluster(repo, doc)
    assert lint(repo) == []


def test_an_environment_naming_a_cluster_without_a_file(repo: PromptRepo) -> None:
    write_cluster(repo, cluster_doc())
    repo.write(ENVIRONMENT, "environment: production\ncluster: gpus\nprompts: {}\n")
    finding = only(repo, "E006")
    assert finding["line"] == 2
    assert (
        "cluster 'gpus' has no file under serving/clusters/; did you mean 'gpu'?"
        in (finding["message"])
    )


def test_the_check_reads_the_pinned_tagged_version_not_the_working_copy(
    repo: PromptRepo,
) -> None:
    """A pin of a released version is checked with that version's model."""
    write_cluster(repo, cluster_doc())
    serve_prompt(repo, model="llama-8b")
    repo.commit("serve greet 1.0.0 from the cluster")
    release(Workspace(repo.root), lint=findings_at)
    # 2.0.0 moves to a model the cluster does not serve; production still pins 1.0.0.
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(
            version="2.0.0",
            model={"provider": "default", "name": "gpt-4o"},
            evals=[
                {"dataset": "golden/greet.jsonl", "assert": [{"type": "contains", "value": "Ann"}]}
            ],
        ),
    )
    assert [f["rule"] for f in lint(repo)] == []
    repo.write(
        ENVIRONMENT,
        "environment: production\ncluster: gpu\nprompts:\n  greet:\n    version: 1.0.0\n"
        "    canary: {version: 2.0.0, weight: 10}\n",
    )
    finding = only(repo, "K008")
    assert finding["line"] == 6 and "greet 2.0.0 uses model 'gpt-4o'" in finding["message"]


def test_lint_of_a_changed_environment_rechecks_the_clusters(repo: PromptRepo) -> None:
    write_cluster(repo, cluster_doc())
    serve_prompt(repo)
    base = repo.commit("cluster")
    repo.write(
        ENVIRONMENT,
        "environment: production\ncluster: gpu\nprompts:\n  greet:\n    version: 1.0.0\n",
    )
    repo.write("prompts/greet.yaml", prompt_doc(model={"provider": "default", "name": "gpt-4o"}))
    result = repo.cli("lint", "--base", base, "--format", "json")
    assert "K008" in {f["rule"] for f in result.json["findings"]}


def test_serving_check_names_an_unknown_cluster(repo: PromptRepo) -> None:
    write_cluster(repo, cluster_doc())
    result = repo.cli("serving", "check", "--cluster", "gpus")
    assert result.exit_code == 2
    assert "no cluster 'gpus' under serving/clusters/" in result.stderr
    assert "did you mean 'gpu'?" in result.stderr


def test_broken_cluster_files_never_print_a_traceback(repo: PromptRepo) -> None:
    repo.write(CLUSTER, "name: gpu\nnode_pools: [unclosed\n")
    repo.write("serving/clusters/empty.yaml", "")
    result = repo.run("serving", "check")
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "3:1  error  Y001 yaml-syntax" in result.stdout
    assert "1:1  error  S002 invalid-value  expected a mapping of fields" in result.stdout
    result = repo.run("serving", "manifests")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert not (repo.root / "serving/k8s").exists()
