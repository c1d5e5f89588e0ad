"""No write leaves the repository, no generated path clobbers a hand-written file, and a
shallow clone never judges a change from the wrong base: each was a real failure first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.clusters import cluster_doc, cluster_text
from support.repo import PromptRepo, make_repo, prompt_doc, run_git

DATASET = '{"id": "a", "vars": {"who": "Ann"}}\n{"id": "b", "vars": {"who": "Bo"}}\n'
EVAL = [{"dataset": "golden/greet.jsonl", "assert": [{"type": "contains", "value": "Ann"}]}]


def link_out(repo: PromptRepo, rel: str, outside: Path) -> Path:
    """Replace the folder `rel` of `repo` by a symbolic link to `outside` (as a PR could)."""
    outside.mkdir(parents=True, exist_ok=True)
    (repo.root / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo.root / rel).symlink_to(outside, target_is_directory=True)
    return outside


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_record_refuses_a_recordings_folder_linked_out(
    repo: PromptRepo, tmp_path: Path, openai_server: Any
) -> None:
    repo.write("prompts/greet.yaml", prompt_doc(evals=EVAL))
    repo.write("golden/greet.jsonl", DATASET)
    outside = link_out(repo, "golden/recordings", tmp_path / "elsewhere")
    live = {"OPENAI_BASE_URL": openai_server.base_url, "OPENAI_API_KEY": "unused"}

    result = repo.run("eval", "--record", env=live)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "refusing to write outside" in result.stderr
    assert "golden/recordings is a symbolic link" in result.stderr
    assert "Traceback" not in result.stderr
    assert files_under(outside) == []

    lint = repo.run("lint", "--format", "json")
    assert lint.exit_code == 1
    [finding] = [f for f in lint.json["findings"] if f["rule"] == "C002"]
    assert finding["file"] == "golden/recordings"
    assert str(outside) in finding["message"]


def test_eval_refuses_a_state_folder_linked_out(
    repo: PromptRepo, tmp_path: Path, openai_server: Any
) -> None:
    repo.write("prompts/greet.yaml", prompt_doc(evals=EVAL))
    repo.write("golden/greet.jsonl", DATASET)
    outside = link_out(repo, ".promptyard", tmp_path / "state-elsewhere")
    live = {"OPENAI_BASE_URL": openai_server.base_url, "OPENAI_API_KEY": "unused"}
    result = repo.run("eval", env=live)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert ".promptyard is a symbolic link" in result.stderr
    assert files_under(outside) == []
    assert [f["rule"] for f in repo.run("lint", "--format", "json").json["findings"]] == ["C002"]


def test_manifests_refuse_a_cluster_folder_linked_out(repo: PromptRepo, tmp_path: Path) -> None:
    repo.write("serving/clusters/gpu.yaml", cluster_text(cluster_doc()))
    repo.write("serving/environments/production.yaml", "environment: production\nprompts: {}\n")
    outside = link_out(repo, "serving/k8s/gpu", tmp_path / "k8s-elsewhere")
    result = repo.run("serving", "manifests")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "serving/k8s/gpu is a symbolic link" in result.stderr
    assert files_under(outside) == []
    # An explicit --out is the user's choice, links and all.
    chosen = link_out(repo, "out-link", tmp_path / "chosen")
    assert repo.run("serving", "manifests", "--out", "out-link").exit_code == 0
    assert "gpu/gateway.yaml" in files_under(chosen)


def test_manifests_never_overwrite_a_hand_written_file(repo: PromptRepo) -> None:
    repo.write("serving/clusters/gpu.yaml", cluster_text(cluster_doc()))
    repo.write("serving/environments/production.yaml", "environment: production\nprompts: {}\n")
    mine = "# our own gateway tweaks\napiVersion: v1\nkind: ConfigMap\n"
    repo.write("serving/k8s/gpu/gateway.yaml", mine)
    result = repo.run("serving", "manifests")
    assert result.exit_code == 2
    assert (
        "serving/k8s/gpu/gateway.yaml" in result.stderr and "refusing to overwrite" in result.stderr
    )
    assert repo.read("serving/k8s/gpu/gateway.yaml") == mine
    assert files_under(repo.root / "serving/k8s/gpu") == ["gateway.yaml"]  # nothing else either


def test_promote_refuses_an_environments_folder_linked_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.release()
    outside = tmp_path / "envs-elsewhere"
    (repo.root / "serving/environments").rename(outside)
    (repo.root / "serving/environments").symlink_to(outside, target_is_directory=True)
    before = (outside / "production.yaml").read_text()
    result = repo.run("promote", "greeter", "1.0.0", "--env", "production", "--canary", "5")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert (outside / "production.yaml").read_text() == before


@pytest.mark.parametrize("base", ["HEAD~1", "main"])
def test_a_shallow_clone_is_told_to_fetch_history(tmp_path: Path, base: str) -> None:
    origin = make_repo(tmp_path)
    origin.git("checkout", "-q", "-b", "change")
    origin.set_prompt("greeter", "1.0.1", greeting="Howdy")
    origin.commit("greeter: howdy")
    origin.git("checkout", "-q", "main")
    origin.set_prompt("support-reply", "1.1.0", extra_input=True)
    origin.commit("support-reply moved on main")  # main advanced: its tip is not the base
    clone = tmp_path / "ci"
    run_git(
        tmp_path,
        "clone",
        "-q",
        "--depth",
        "1",
        "--branch",
        "change",
        origin.root.as_uri(),
        str(clone),
    )
    ci = PromptRepo(clone)
    ci.configure()
    ci.git("fetch", "-q", "--depth", "1", "origin", "main:main")
    result = ci.run("check", "--base", base, "--offline")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "shallow clone" in result.stderr and "fetch-depth: 0" in result.stderr
    assert "internal error" not in result.stderr
    # With the history, the same check judges only the change (not support-reply).
    ci.git("fetch", "-q", "--unshallow")
    if base == "main":
        diff = ci.run("diff", "--base", "main", "--offline", "--format", "json")
        assert diff.exit_code in (0, 1), diff.stderr
        assert [p["prompt"] for p in json.loads(diff.stdout)["prompts"]] == ["greeter"]
