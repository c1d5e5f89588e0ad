"""`.github/workflows/release.yml`: a valid workflow that runs `promptyard release --push`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "release.yml"


def test_workflow_validates_against_the_github_workflow_schema() -> None:
    check = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(check), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_releases_on_pushes_to_main_with_full_history() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())  # our own trusted file
    assert workflow[True]["push"]["branches"] == ["main"]  # PyYAML reads `on:` as True
    assert workflow["permissions"]["contents"] == "write"
    # An explicit `shell: bash` runs with pipefail, so `release ... | tee` fails when release does.
    assert workflow["defaults"]["run"]["shell"] == "bash"
    steps = workflow["jobs"]["release"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    assert checkout["with"]["fetch-tags"] is True
    commands = "\n".join(s.get("run", "") for s in steps)
    assert "promptyard release --push" in commands
    assert "git config user.email" in commands  # annotated tags need an identity
