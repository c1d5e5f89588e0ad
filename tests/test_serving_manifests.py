"""`promptyard serving manifests`: valid Kubernetes documents, byte-identical output, drift."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from promptyard.lint import findings_at
from promptyard.release.bundle import build_bundle, bundle_bytes
from promptyard.release.releaser import release
from promptyard.repo.workspace import Workspace
from promptyard.spec.gateway import GatewayConfig
from support.clusters import cluster_doc, cluster_text
from support.prometheus import prometheus_binary
from support.repo import PromptRepo, prompt_doc

ROOT = Path(__file__).resolve().parents[1]
OUT = "serving/k8s/gpu"


def setup_cluster(repo: PromptRepo, doc: dict[str, Any] | None = None) -> None:
    repo.write("serving/clusters/gpu.yaml", cluster_text(doc or cluster_doc()))
    repo.write("serving/environments/production.yaml", "environment: production\nprompts: {}\n")


def documents(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        for path in sorted(folder.glob("*.yaml"))
    }


OPERATOR_API = "monitoring.coreos.com/v1"  # a CRD: checked with promtool, not the API schema


def validate(docs: dict[str, list[dict[str, Any]]], version: str, tmp: Path | None = None) -> None:
    """Every document against the Kubernetes API schema; PrometheusRules' groups with
    `promtool check rules` (in `tmp`; every document must be a core one without it)."""
    for name, items in docs.items():
        for doc in items:
            if doc["apiVersion"] == OPERATOR_API and tmp is not None:
                promtool_accepts(doc["spec"], tmp)
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']}: {exc}")


def promtool_accepts(groups: dict[str, Any], tmp: Path) -> None:
    rules = tmp / "rules.yaml"
    rules.write_text(yaml.safe_dump(groups))
    checked = subprocess.run(
        [prometheus_binary("promtool"), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def by_kind(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in items}


def test_every_document_validates_against_the_cluster_kubernetes_version(
    repo: PromptRepo, tmp_path: Path
) -> None:
    setup_cluster(repo)
    result = repo.cli("serving", "manifests")
    assert result.exit_code == 0, result.stderr
    docs = documents(repo.root / OUT)
    assert sorted(docs) == [
        "alerts.yaml",
        "gateway.yaml",
        "model-llama-70b.yaml",
        "model-llama-8b.yaml",
        "namespace.yaml",
        "registry.yaml",
    ]
    kinds = {name: [d["kind"] for d in items] for name, items in docs.items()}
    assert kinds["model-llama-8b.yaml"] == [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ]
    assert kinds["model-llama-70b.yaml"] == ["Deployment", "Service", "PodDisruptionBudget"]
    assert kinds["registry.yaml"] == ["Deployment", "Service"]
    assert kinds["gateway.yaml"] == ["ConfigMap", "Deployment", "Service"]
    assert kinds["alerts.yaml"] == ["PrometheusRule"]
    validate(docs, "1.31", tmp_path)
    assert all(
        d["metadata"].get("namespace", "serving") == "serving" for v in docs.values() for d in v
    )


def test_kubernetes_validate_really_rejects_a_broken_document(repo: PromptRepo) -> None:
    """The validation above is not vacuous: a typo or a wrong type fails it."""
    setup_cluster(repo)
    repo.cli("serving", "manifests")
    deployment = by_kind(documents(repo.root / OUT)["model-llama-8b.yaml"])["Deployment"]
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["revisionHistoryLimit"] = "five"
    for broken in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, "1.31", strict=True)


def test_the_vllm_deployment_carries_the_engine_and_the_pool(repo: PromptRepo) -> None:
    setup_cluster(repo)
    repo.cli("serving", "manifests")
    model = by_kind(documents(repo.root / OUT)["model-llama-70b.yaml"])
    pod = model["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "vllm/vllm-openai:v0.8.5"
    assert container["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    args = container["args"]
    pairs = dict(zip(args, [*args[1:], None], strict=True))
    assert pairs["--model"] == "meta-llama/Llama-3.1-70B-Instruct"
    assert pairs["--revision"] == "1605565b47bb9346c5515c34102e054115b4f98b"
    assert pairs["--tensor-parallel-size"] == "4"
    assert pairs["--max-model-len"] == "16384"
    assert pairs["--gpu-memory-utilization"] == "0.9"
    assert pairs["--max-num-seqs"] == "24"
    assert pairs["--port"] == "8000"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    # The startup window covers loading the weights (1200 s in the cluster file).
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1200
    assert startup["httpGet"]["path"] == "/health"
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    # No autoscaling: the Deployment sets its replicas.
    assert model["Deployment"]["spec"]["replicas"] == 2
    assert model["Service"]["spec"]["ports"][0]["port"] == 8000
    assert model["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_autoscaled_models_leave_replicas_to_the_hpa(repo: PromptRepo) -> None:
    setup_cluster(repo)
    repo.cli("serving", "manifests")
    model = by_kind(documents(repo.root / OUT)["model-llama-8b.yaml"])
    assert "replicas" not in model["Deployment"]["spec"]
    hpa = model["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 4)
    assert hpa["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "vllm:num_requests_waiting"},
                "target": {"type": "AverageValue", "averageValue": "4"},
            },
        }
    ]
    args = model["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    served = args[args.index("--served-model-name") + 1 : args.index("--dtype")]
    assert served == ["llama-8b"]
    assert "--enable-prefix-caching" in args and args[-1] == "--disable-log-requests"
    env = model["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}
    ]


def test_the_gateway_config_map_routes_every_served_name(repo: PromptRepo, tmp_path: Path) -> None:
    doc = cluster_doc(served_8b=("llama-8b", "test-model"))
    doc["gateway"]["upstreams"] = {
        "gpt-4o": {
            "url": "https://api.openai.com/v1",
            "api_key_secret": {"name": "openai", "key": "api-key"},
        }
    }
    setup_cluster(repo, doc)
    assert repo.cli("serving", "manifests").exit_code == 0
    gateway = by_kind(documents(repo.root / OUT)["gateway.yaml"])
    config_file = tmp_path / "gateway.json"
    config_file.write_text(gateway["ConfigMap"]["data"]["gateway.json"])
    config = GatewayConfig.load(config_file)
    assert config.models == {
        "gpt-4o": "gpt-4o",
        "llama-70b": "llama-70b",
        "llama-8b": "llama-8b",
        "test-model": "llama-8b",
    }
    assert config.endpoints["llama-8b"].url == "http://llama-8b.serving.svc.cluster.local:8000/v1"
    assert config.endpoints["gpt-4o"].api_key_env == "PROMPTYARD_UPSTREAM_GPT_4O_KEY"
    assert config.default_upstream == "llama-8b" and config.label == "production"
    assert config.pricing["test-model"].input == 1.0  # from the repository's promptyard.yaml
    container = gateway["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["gateway", "--config"]
    assert "http://promptyard-registry.serving.svc.cluster.local:8700" in container["args"]
    assert container["env"] == [
        {
            "name": "PROMPTYARD_UPSTREAM_GPT_4O_KEY",
            "valueFrom": {"secretKeyRef": {"name": "openai", "key": "api-key"}},
        }
    ]
    validate({"gateway.yaml": list(gateway.values())}, "1.31")


def test_the_gateway_is_scraped_checks_online_and_its_alerts_pass_promtool(
    repo: PromptRepo, tmp_path: Path
) -> None:
    repo.write(
        "promptyard.yaml",
        repo.read("promptyard.yaml")
        + "online_quality:\n  prompts:\n    support-reply: {sample: 0.2}\n  queue: 500\n",
    )
    setup_cluster(repo)
    assert repo.cli("serving", "manifests").exit_code == 0
    docs = documents(repo.root / OUT)
    gateway = by_kind(docs["gateway.yaml"])
    config_file = tmp_path / "gateway.json"
    config_file.write_text(gateway["ConfigMap"]["data"]["gateway.json"])
    online = GatewayConfig.load(config_file).online_quality
    assert online.prompts["support-reply"].sample == 0.2 and online.queue == 500
    pod = gateway["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert pod["prometheus.io/scrape"] == "true"
    assert (pod["prometheus.io/port"], pod["prometheus.io/path"]) == ("8080", "/metrics")
    [rule] = docs["alerts.yaml"]
    assert rule["kind"] == "PrometheusRule" and rule["metadata"]["namespace"] == "serving"
    alerts = [r["alert"] for r in rule["spec"]["groups"][0]["rules"]]
    assert "PromptyardOnlineQualityLow" in alerts and "PromptyardErrorRateHigh" in alerts
    validate(docs, "1.31", tmp_path)


def test_the_rollout_controller_is_one_replica_that_clones_and_may_push(
    repo: PromptRepo, tmp_path: Path
) -> None:
    doc = cluster_doc()
    doc["rollout"] = {
        "image": doc["gateway"]["image"],
        "prometheus_url": "http://prometheus.monitoring:9090",
        "remote": "https://github.com/acme/prompts.git",
        "token_secret": {"name": "prompts-push", "key": "token"},
    }
    setup_cluster(repo, doc)
    assert repo.cli("serving", "manifests").exit_code == 0
    docs = documents(repo.root / OUT)
    [deployment] = docs["rollout.yaml"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two at once
    pod = deployment["spec"]["template"]["spec"]
    [clone] = pod["initContainers"]
    [controller] = pod["containers"]
    assert clone["command"] == ["git"] and "https://github.com/acme/prompts.git" in clone["args"]
    assert controller["workingDir"] == clone["args"][-1]
    assert controller["args"][:4] == [
        "rollout",
        "run",
        "--prometheus",
        "http://prometheus.monitoring:9090",
    ]
    env = {e["name"]: e for e in controller["env"]}
    assert env["PROMPTYARD_GIT_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "prompts-push",
        "key": "token",
    }
    assert env["GIT_CONFIG_KEY_0"]["value"] == "credential.helper"
    assert "ports" not in controller and "readinessProbe" not in controller
    validate(docs, "1.31", tmp_path)


def test_output_is_byte_identical_and_a_second_run_touches_nothing(repo: PromptRepo) -> None:
    setup_cluster(repo)
    first = repo.cli("serving", "manifests", "--format", "json").json
    assert len(first["written"]) == 6
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (repo.root / OUT).iterdir()}
    second = repo.cli("serving", "manifests", "--format", "json").json
    assert second["written"] == [] and len(second["unchanged"]) == 6
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (repo.root / OUT).iterdir()}
    assert before == after
    # The same input elsewhere gives the same bytes.
    other = repo.root / "elsewhere"
    assert repo.cli("serving", "manifests", "--out", str(other)).exit_code == 0
    assert {p.name: p.read_bytes() for p in (other / "gpu").iterdir()} == {
        name: data for name, (data, _) in before.items()
    }


def test_check_passes_in_sync_and_fails_on_every_kind_of_drift(repo: PromptRepo) -> None:
    setup_cluster(repo)
    repo.cli("serving", "manifests")
    assert repo.cli("serving", "manifests", "--check").exit_code == 0
    folder = repo.root / OUT
    # Hand edit: changed.
    edited = folder / "model-llama-8b.yaml"
    edited.write_text(edited.read_text().replace("'8192'", "'4096'"))
    result = repo.cli("serving", "manifests", "--check")
    assert result.exit_code == 1
    assert f"changed  {OUT}/model-llama-8b.yaml" in result.stdout
    assert "-        - '4096'" in result.stdout and "+        - '8192'" in result.stdout
    # The cluster file changed but the manifests were not regenerated.
    repo.cli("serving", "manifests")
    doc = cluster_doc()
    del doc["deployments"]["llama-70b"]
    doc["registry"]["replicas"] = 3
    repo.write("serving/clusters/gpu.yaml", cluster_text(doc))
    result = repo.cli("serving", "manifests", "--check", "--format", "json")
    assert result.exit_code == 1
    # The gateway no longer routes to llama-70b; the registry has 3 replicas.
    assert result.json["changed"] == [f"{OUT}/registry.yaml", f"{OUT}/gateway.yaml"]
    assert result.json["stale"] == [f"{OUT}/model-llama-70b.yaml"]
    (folder / "gateway.yaml").unlink()
    result = repo.cli("serving", "manifests", "--check", "--format", "json")
    assert result.json["missing"] == [f"{OUT}/gateway.yaml"]
    # Regenerating fixes all of it, removes the stale file, keeps files it did not write.
    (folder / "README.md").write_text("notes")
    (folder / "extra.yaml").write_text("kind: ConfigMap\n")
    written = repo.cli("serving", "manifests", "--format", "json").json
    assert written["removed"] == [str(folder / "model-llama-70b.yaml")]
    assert (folder / "README.md").exists() and (folder / "extra.yaml").exists()
    assert repo.cli("serving", "manifests", "--check").exit_code == 0


def test_a_removed_cluster_leaves_stale_manifests(repo: PromptRepo) -> None:
    setup_cluster(repo)
    repo.write("serving/clusters/edge.yaml", cluster_text(cluster_doc("edge")))
    repo.cli("serving", "manifests")
    (repo.root / "serving/clusters/edge.yaml").unlink()
    result = repo.cli("serving", "manifests", "--check", "--format", "json")
    assert result.exit_code == 1
    assert result.json["stale"] == sorted(
        f"serving/k8s/edge/{p.name}" for p in (repo.root / "serving/k8s/edge").iterdir()
    )
    # --cluster limits the comparison to that cluster.
    assert repo.cli("serving", "manifests", "--check", "--cluster", "gpu").exit_code == 0


def test_a_cluster_with_errors_gets_no_manifests(repo: PromptRepo) -> None:
    doc = cluster_doc()
    doc["deployments"]["llama-70b"]["engine"]["tensor_parallel_size"] = 1
    doc["deployments"]["llama-70b"]["resources"]["gpus"] = 1
    setup_cluster(repo, doc)
    result = repo.cli("serving", "manifests")
    assert result.exit_code == 1
    assert "serving/clusters/gpu.yaml:" in result.stderr and "K001" in result.stderr
    assert not (repo.root / "serving/k8s").exists()


def test_the_bundle_config_map(repo: PromptRepo, tmp_path: Path) -> None:
    repo.write("prompts/greet.yaml", prompt_doc())
    setup_cluster(repo)
    repo.write(
        "serving/environments/production.yaml",
        "environment: production\nprompts:\n  greet: {version: 1.0.0}\n",
    )
    repo.commit("greet")
    release(Workspace(repo.root), lint=findings_at)
    bundle = tmp_path / "prompts.bundle.json"
    data = bundle_bytes(build_bundle(Workspace(repo.root), "main"))
    bundle.write_bytes(data)
    result = repo.cli("serving", "manifests", "--bundle", str(bundle))
    assert result.exit_code == 0, result.stderr
    docs = documents(repo.root / OUT)
    [config_map] = docs["bundle.yaml"]
    assert config_map["metadata"]["name"] == "promptyard-bundle"
    assert config_map["data"]["bundle.json"].encode() == data
    validate({"bundle.yaml": [config_map]}, "1.31")
    # The registry and the gateway mount it (optional: only where a pipeline applied it).
    registry = by_kind(docs["registry.yaml"])["Deployment"]["spec"]["template"]["spec"]
    volume = next(v for v in registry["volumes"] if v["name"] == "bundle")
    assert volume["configMap"] == {"name": "promptyard-bundle", "optional": True}
    assert "/etc/promptyard/bundle/bundle.json" in registry["containers"][0]["args"]
    # Checked against the same bundle it is in sync; a bundle that does not verify is refused.
    assert repo.cli("serving", "manifests", "--check", "--bundle", str(bundle)).exit_code == 0
    tampered = json.loads(data)
    tampered["ref"] = "elsewhere"
    bundle.write_text(json.dumps(tampered))
    result = repo.cli("serving", "manifests", "--bundle", str(bundle))
    assert result.exit_code == 2 and "modified" in result.stderr


def test_a_bundle_too_big_for_a_config_map_is_refused(repo: PromptRepo, tmp_path: Path) -> None:
    long_text = "Be brief. " * 60_000  # 600 kB, twice in a bundle (source and parsed spec)
    repo.write(
        "prompts/greet.yaml",
        prompt_doc(
            messages=[
                {"role": "system", "content": long_text},
                {"role": "user", "content": "{{ who }}"},
            ]
        ),
    )
    setup_cluster(repo)
    repo.commit("greet")
    release(Workspace(repo.root), lint=findings_at)
    bundle = tmp_path / "big.json"
    bundle.write_bytes(bundle_bytes(build_bundle(Workspace(repo.root), "main")))
    assert bundle.stat().st_size > 1 << 20
    result = repo.cli("serving", "manifests", "--bundle", str(bundle))
    assert result.exit_code == 2
    assert "a ConfigMap holds at most 1,048,576" in result.stderr
    assert not (repo.root / "serving/k8s").exists()


def test_this_repository_manifests_are_in_sync_and_valid(tmp_path: Path) -> None:
    """The committed serving/k8s/ is what the example cluster file generates."""
    from support.cli import run_cli

    result = run_cli("serving", "manifests", "--check", repo=ROOT)
    assert result.exit_code == 0, result.stdout
    spec = yaml.safe_load((ROOT / "serving/clusters/gpu-prod.yaml").read_text())
    docs = documents(ROOT / "serving/k8s/gpu-prod")
    validate(docs, spec["kubernetes_version"], tmp_path)
    assert "rollout.yaml" in docs  # the example runs the controller
    assert {d["kind"] for items in docs.values() for d in items} == {
        "PrometheusRule",
        "Namespace",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
    }
