"""The pull-request workflow `init` scaffolds, its check step run for real, and `promptyard
check` on this repository (the README's main command)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptyard.scaffold import scaffold_files
from support.evals import API_KEY_ENV, BASE_URL_ENV
from support.gate import echo_spec, gate_repo, regressing_user
from support.openai_server import OpenAIServer

ROOT = Path(__file__).parents[1]
MARKER = "<!-- promptyard-report -->"


def workflow(name: str = "prompts.yml") -> dict[str, Any]:
    return yaml.safe_load(scaffold_files("pip install -e .")[f".github/workflows/{name}"])


def step(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("name") == name or s.get("id") == name)


def test_gate_workflow_runs_check_against_the_base_with_minimal_permissions() -> None:
    flow = workflow()
    assert flow["permissions"] == {"contents": "read"}  # nothing else for the whole workflow
    (job,) = flow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    checkout = job["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0
    assert any(s.get("uses", "").startswith("actions/setup-python@") for s in job["steps"])
    cache = step(job, "Cache model answers")
    assert cache["with"]["path"] == ".promptyard/cache.sqlite"
    assert cache["with"]["key"] == (
        "promptyard-${{ runner.os }}-${{ hashFiles('prompts/**', 'golden/**') }}"
    )
    check = step(job, "check")
    assert check["env"]["BASE_REF"] == "origin/${{ github.base_ref }}"
    assert (
        'promptyard check --base "$BASE_REF" --report report.md --html report.html $offline'
        in check["run"]
    )
    assert check["env"]["OPENAI_API_KEY"] == "${{ secrets.OPENAI_API_KEY }}"
    comment = step(job, "Post the report (one comment, updated on every push)")
    assert comment["uses"].startswith("actions/github-script@")
    assert MARKER in comment["with"]["script"] and "updateComment" in comment["with"]["script"]
    assert "env.FORK != 'true'" in comment["if"]
    upload = step(job, "Upload the HTML report")
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["path"] == "report.html"
    assert step(job, "Fail when the gate blocks")["run"].strip().endswith('exit "${CODE:-1}"')


def test_fork_comment_workflow_never_runs_pull_request_code() -> None:
    flow = workflow("prompts-comment.yml")
    assert flow["permissions"] == {}
    assert flow[True]["workflow_run"]["workflows"] == ["prompts"]  # YAML 1.1: `on` is True
    (job,) = flow["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert "head_repository.full_name != github.repository" in job["if"]
    uses = [s.get("uses", "") for s in job["steps"]]
    assert not any(u.startswith("actions/checkout") for u in uses)
    assert not any("run" in s for s in job["steps"])  # no shell: nothing of the PR executes
    script = job["steps"][-1]["with"]["script"]
    assert "p.head.sha === run.head_sha" in script and MARKER in script


def run_check_step(
    repo_root: Path, tmp_path: Path, *, fork: bool, env: dict[str, str]
) -> tuple[int, str, str]:
    """The workflow's check step, run by bash as GitHub runs it (`-eo pipefail`)."""
    script = step(workflow()["jobs"]["check"], "check")["run"]
    (tmp_path / "step.sh").write_text(script)
    output = tmp_path / "github_output"
    output.write_text("")
    bin_dir = str(Path(sys.executable).parent)
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(tmp_path / "step.sh")],
        cwd=repo_root,
        env={
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FORK": "true" if fork else "false",
            "BASE_REF": "base",
            "GITHUB_OUTPUT": str(output),
            "NO_COLOR": "1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr  # the step itself never fails: a later one does
    return proc.returncode, output.read_text(), (repo_root / "comment.md").read_text()


def test_check_step_from_a_fork_runs_offline_and_says_so(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    repo = gate_repo(tmp_path / "repo")
    repo.write(
        "prompts/echo.yaml",
        echo_spec(version="1.0.1", system="Be brief.", user=regressing_user(["refund"])),
    )
    # the endpoint is configured, yet a fork must not call it
    _, output, comment = run_check_step(
        repo.root, tmp_path, fork=True, env={BASE_URL_ENV: openai_server.base_url, API_KEY_ENV: ""}
    )
    assert output == "code=1\n"  # no recordings for either side: coverage blocks, never a pass
    assert comment.startswith(
        "> **Pull request from a fork**: it gets no secrets, so this check ran offline"
    )
    assert MARKER in comment and "Ran offline" in comment
    assert openai_server.chat_requests() == []
    assert (repo.root / "report.html").is_file()


def test_check_step_live_writes_the_comment(tmp_path: Path, openai_server: OpenAIServer) -> None:
    repo = gate_repo(tmp_path / "repo")
    repo.write("prompts/echo.yaml", echo_spec(version="1.0.1", system="Keep it short."))
    _, output, comment = run_check_step(
        repo.root, tmp_path, fork=False, env={BASE_URL_ENV: openai_server.base_url, API_KEY_ENV: ""}
    )
    assert output == "code=0\n"
    assert comment.startswith(f"{MARKER}\n## ✅ promptyard check: passed")
    assert comment == (repo.root / "report.md").read_text()


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GITHUB_"))}
    return {**env, "NO_COLOR": "1"}


@pytest.mark.parametrize("args", [(), ("--base", "HEAD")])
def test_check_on_this_repository_passes(args: tuple[str, ...], tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    proc = subprocess.run(
        [sys.executable, "-m", "promptyard", "check", *args, "--report", str(report)],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Decision: PASS" in proc.stdout
    assert report.read_text().startswith(f"{MARKER}\n## ✅ promptyard check: passed")
    if not args:
        for name in ("support-reply", "intent-classifier", "ticket-summarizer"):
            assert f"ok    {name}  [checked]" in proc.stdout
        assert "running offline" in proc.stderr
