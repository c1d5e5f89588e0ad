"""`promptyard init`, this repository's own example content, and the generated CI files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptyard.repo.kinds import ENVIRONMENTS, EXPERIMENTS
from promptyard.repo.workspace import Workspace
from promptyard.scaffold import init_repository, scaffold_files
from promptyard.spec import SCHEMAS
from support.repo import CliResult, PromptRepo

ROOT = Path(__file__).parents[1]
WORKFLOWS = (
    ".github/workflows/prompts.yml",
    ".github/workflows/prompts-comment.yml",
    ".github/workflows/release.yml",
)
# This repository installs its own lock in CI; a scaffolded repository pins a release.
OWN_INSTALL = (
    "pip install --require-hashes -r requirements/runtime.txt && pip install --no-deps -e ."
)


def run(args: list[str], cwd: Path) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", "promptyard", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def check_workflow(path: Path) -> None:
    """GitHub's workflow schema, then actionlint (expressions, shell, deprecated actions)."""
    for command in (
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"],
        [str(Path(sys.executable).parent / "actionlint"), "-no-color"],
    ):
        proc = subprocess.run(
            [*command, str(path)], capture_output=True, text=True, timeout=120, cwd=path.parent
        )
        assert proc.returncode == 0, f"{command[-1]}: {proc.stdout}{proc.stderr}"


def test_init_scaffolds_a_repository_that_lints_clean(tmp_path: Path) -> None:
    result = run(["init", "new-prompts"], tmp_path)
    assert result.exit_code == 0, result.stderr
    target = tmp_path / "new-prompts"
    assert (target / ".git").is_dir()
    assert (target / ".gitignore").read_text().strip().endswith(".promptyard/")
    lint = run(["lint", "--format", "json"], target)
    assert lint.exit_code == 0, lint.stdout
    assert lint.json["findings"] == []
    for workflow in WORKFLOWS:
        check_workflow(target / workflow)
    # every $schema modeline points at a schema file init wrote
    for path in target.rglob("*.yaml"):
        match = re.match(r"# yaml-language-server: \$schema=(\S+)", path.read_text())
        if match:
            assert (path.parent / match.group(1)).resolve().is_file(), path


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "promptyard.yaml").write_text("mine\n")
    result = run(["init"], tmp_path)
    assert result.exit_code == 2
    assert "would overwrite promptyard.yaml" in result.stderr and "--force" in result.stderr
    assert (tmp_path / "promptyard.yaml").read_text() == "mine\n"
    assert not (tmp_path / "prompts").exists()
    init_repository(tmp_path, force=True)
    assert "providers:" in (tmp_path / "promptyard.yaml").read_text()


def test_this_repository_lints_clean() -> None:
    result = run(["lint", "--format", "json"], ROOT)
    assert result.exit_code == 0, result.stdout
    assert result.json["findings"] == [], result.json["findings"]


def test_example_content_is_substantial() -> None:
    snapshot = Workspace(ROOT).snapshot()
    kinds = set()
    assert len(snapshot.prompt_names()) >= 3
    for prompt in snapshot.prompts():
        spec = prompt.require()
        kinds.add(spec.output.format if spec.output else "text")
        for eval_spec in spec.evals:
            assert len(snapshot.dataset(eval_spec.dataset).require()) >= 30
    assert kinds == {"json", "text"}
    assert snapshot.partial_names()
    assert {Path(p).stem for p in snapshot.paths_of(ENVIRONMENTS)} >= {"staging", "production"}
    assert snapshot.paths_of(EXPERIMENTS)


def test_schema_modelines_point_at_committed_schemas() -> None:
    seen = set()
    for path in [
        *ROOT.glob("prompts/**/*.yaml"),
        *ROOT.glob("golden/*.yaml"),
        *ROOT.glob("serving/environments/*.yaml"),
        *ROOT.glob("serving/clusters/*.yaml"),  # serving/k8s/ is generated, not edited
        *ROOT.glob("experiments/*.yaml"),
        ROOT / "promptyard.yaml",
    ]:
        match = re.match(r"# yaml-language-server: \$schema=(\S+)", path.read_text())
        assert match, f"{path} has no $schema modeline"
        target = (path.parent / match.group(1)).resolve()
        assert target.is_file() and target.stem in SCHEMAS, path
        seen.add(target.stem)
    assert seen >= {"prompt", "config", "environment", "experiment", "dataset", "cluster"}


@pytest.mark.parametrize("name", WORKFLOWS)
def test_committed_workflow_is_the_scaffolded_one(name: str) -> None:
    workflow = ROOT / name
    assert workflow.read_text() == scaffold_files(OWN_INSTALL)[name]
    check_workflow(workflow)


def test_dependency_workflow_tests_the_newest_releases_weekly() -> None:
    path = ROOT / ".github/workflows/dependencies.yml"
    check_workflow(path)
    workflow = yaml.safe_load(path.read_text())  # our own trusted file
    assert workflow[True]["schedule"]  # PyYAML reads `on:` as True
    steps = workflow["jobs"]["newest"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    assert '--upgrade -e ".[dev]"' in commands and "requirements/" not in commands
    assert "pytest" in commands
    assert any(step.get("uses", "").startswith("actions/github-script@") for step in steps)


@pytest.mark.parametrize(
    ("path", "linted"),
    [
        ("prompts/support-reply.yaml", True),
        ("golden/intent-classifier.csv", True),
        ("serving/environments/production.yaml", True),
        ("serving/clusters/gpu-prod.yaml", True),
        ("serving/k8s/gpu-prod/gateway.yaml", False),
        ("promptyard.yaml", True),
        ("golden/recordings/support-reply.jsonl", False),
        ("tools/promptyard/cli/main.py", False),
    ],
)
def test_pre_commit_hook_selects_prompt_files(path: str, linted: bool) -> None:
    import yaml

    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["entry"] == "promptyard lint" and hook["pass_filenames"] is True
    selected = re.search(hook["files"], path) and not re.search(hook["exclude"], path)
    assert bool(selected) == linted


def test_init_makes_main_whatever_git_defaults_to(tmp_path: Path) -> None:
    # A user whose git says init.defaultBranch=master still gets the `main` that the README,
    # the scaffolded workflows and `serve --branch` use.
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "init.defaultBranch"}
    env["GIT_CONFIG_VALUE_0"] = "master"
    proc = subprocess.run(
        [sys.executable, "-m", "promptyard", "init", "mine"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr
    repo = PromptRepo(tmp_path / "mine")
    assert repo.git("symbolic-ref", "--short", "HEAD") == "main"
    repo.configure()
    repo.commit("scaffold")
    assert repo.git("branch", "--show-current") == "main"


def test_a_missing_base_branch_names_the_default_branch(tmp_path: Path) -> None:
    repo = PromptRepo(tmp_path / "old")
    (tmp_path / "old").mkdir()
    repo.git("init", "-q", "-b", "master")
    repo.configure()
    init_repository(repo.root)
    repo.commit("scaffold")
    result = repo.run("lint", "--base", "main")
    assert result.exit_code == 2
    assert "unknown git ref 'main'" in result.stderr
    assert "default branch is 'master': use --base master" in result.stderr
    assert "fetch-depth" not in result.stderr  # fetching would not help here
    # a ref that names no default branch keeps the fetch advice
    assert "fetch-depth: 0" in repo.run("lint", "--base", "origin/feature-x").stderr


def test_the_scaffold_survives_its_first_change(tmp_path: Path, openai_server: Any) -> None:
    """The newcomer's path: init, commit, branch, reword the prompt, bump its version, record
    its answers, commit, then the pull-request gate passes with no finding in untouched files
    (the environments still pin 1.0.0, which `release` tags once main has run it)."""
    live = {"OPENAI_BASE_URL": openai_server.base_url, "OPENAI_API_KEY": "unused"}
    repo = PromptRepo(tmp_path / "mine")
    assert run(["init", "mine"], tmp_path).exit_code == 0
    repo.configure()
    repo.commit("scaffold")
    repo.git("checkout", "-q", "-b", "reword")
    prompt = repo.read("prompts/summarize.yaml")
    assert "version: 1.0.0" in prompt
    prompt = prompt.replace("for busy readers", "for busy, expert readers")
    repo.write("prompts/summarize.yaml", prompt.replace("version: 1.0.0", "version: 1.0.1"))
    recorded = repo.run("eval", "--record", env=live)
    assert recorded.exit_code == 0, recorded.stdout + recorded.stderr
    repo.commit("summarize: address expert readers")

    for offline in ([], ["--offline"]):
        check = repo.run("check", "--base", "main", "--format", "json", *offline, env=live)
        assert check.exit_code == 0, check.stdout + check.stderr
        report = check.json
        assert report["decision"] == "pass"
        assert report["lint"]["findings"] == []
        assert [(p["prompt"], p["head_version"]) for p in report["prompts"]] == [
            ("summarize", "1.0.1")
        ]

    # The rule still holds where it matters: a pin of a version neither tagged, nor at head,
    # nor at the base is an error.
    repo.write(
        "serving/environments/staging.yaml",
        repo.read("serving/environments/staging.yaml").replace("1.0.0", "0.9.0"),
    )
    lint = repo.run("lint", "--base", "main", "--format", "json")
    assert lint.exit_code == 1
    [finding] = lint.json["findings"]
    assert finding["rule"] == "E005" and finding["file"] == "serving/environments/staging.yaml"
