"""`promptyard init`, this repository's own example content, and the generated CI files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from promptyard.scaffold import init_repository, scaffold_files
from promptyard.spec import SCHEMAS
from promptyard.workspace import Workspace
from support.repo import CliResult

ROOT = Path(__file__).parents[1]
WORKFLOWS = (".github/workflows/prompts.yml", ".github/workflows/prompts-comment.yml")


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
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


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
    assert {Path(p).stem for p in snapshot.environment_paths()} >= {"staging", "production"}
    assert snapshot.experiment_paths()


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
    assert workflow.read_text() == scaffold_files("pip install -e .")[name]
    check_workflow(workflow)


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
