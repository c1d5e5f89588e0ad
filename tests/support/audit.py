"""Helpers for the hostile-input audit (`tests/test_audit_*.py`).

Every audit test drives the REAL console script (`promptyard`, next to this interpreter) as
a subprocess, against a real temporary git repository scaffolded by `promptyard init`, and
checks the CLI contract of DESIGN.md §4: the documented exit code, an error of one or two
lines naming the file, never a traceback or an "internal error", never a hang.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.repo import GIT_ENV, PromptRepo

PROMPTYARD = str(Path(sys.executable).with_name("promptyard"))

# What the contract forbids in any output.
CRASH_MARKERS = ("Traceback (most recent call last)", "internal error")


@dataclass
class Run:
    """One finished `promptyard` process."""

    args: tuple[str, ...]
    code: int | None  # None: killed after the timeout (a hang)
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def error_lines(self) -> list[str]:
        """The stderr lines that are not progress lines."""
        return [
            line
            for line in self.stderr.splitlines()
            if line.strip() and not line.startswith(("eval: ", "running offline"))
        ]

    def describe(self) -> str:
        tail = "\n".join(self.output.strip().splitlines()[-6:])
        return f"promptyard {' '.join(self.args)} -> exit {self.code}\n{tail}"


def _limit_memory(max_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    return apply


def run_cli(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    memory_limit: int | None = None,
) -> Run:
    """`promptyard ARGS` in `cwd`; a hang is killed after `timeout` seconds (code None)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PROMPTYARD_"))}
    proc = subprocess.Popen(
        [PROMPTYARD, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        errors="replace",
        env={**base, **GIT_ENV, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})},
        preexec_fn=_limit_memory(memory_limit) if memory_limit else None,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return Run(args, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return Run(args, None, out, err)


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=False,
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


class Project:
    """A scaffolded prompt repository (`promptyard init` + one commit) in a temp folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write(self, rel: str, content: str | bytes) -> Path:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.is_file():
            target.unlink()
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
        return target

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def replace(self, rel: str, old: str, new: str) -> None:
        text = self.read(rel)
        assert old in text, f"{old!r} not in {rel}"
        self.write(rel, text.replace(old, new, 1))

    def jsonl(self, rel: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.read(rel).splitlines() if line.strip()]

    def write_jsonl(self, rel: str, rows: list[dict[str, Any]]) -> None:
        self.write(rel, "".join(json.dumps(row) + "\n" for row in rows))

    def commit(self, message: str = "change") -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", message)

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def run(self, *args: str, **kwargs: Any) -> Run:
        return run_cli(self.root, *args, **kwargs)

    def set_system_template(self, line: str) -> None:
        """Replace the `{% include "style.j2" %}` line of the scaffolded prompt with `line`."""
        self.replace("prompts/summarize.yaml", '{% include "style.j2" %}', line)


@pytest.fixture(scope="session")
def scaffold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`promptyard init` in a fresh git repository, committed once (copied by `project`)."""
    root = tmp_path_factory.mktemp("scaffold") / "repo"
    PromptRepo.init(root)  # the test identity, no signing (copied with .git by `project`)
    result = run_cli(root, "init")
    assert result.code == 0, result.describe()
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "scaffold")
    return root


@pytest.fixture
def project(scaffold: Path, tmp_path: Path) -> Project:
    """A private copy of the scaffolded repository (git history included)."""
    root = tmp_path / "repo"
    shutil.copytree(scaffold, root, symlinks=True)
    return Project(root)


@pytest.fixture
def released(project: Project) -> Project:
    """The scaffold with `summarize` 1.0.0 released (tag prompts/summarize/v1.0.0)."""
    result = project.run("release")
    assert result.code == 0, result.describe()
    return project


def assert_clean_error(
    run: Run, code: int, *mentions: str, max_lines: int = 2, where: str = "stderr"
) -> None:
    """The contract for a bad input: exit `code`, no crash, a short message naming `mentions`."""
    assert run.code is not None, f"hung (killed after the timeout): {run.describe()}"
    for marker in CRASH_MARKERS:
        assert marker not in run.output, f"crashed: {run.describe()}"
    assert run.code == code, f"expected exit {code}: {run.describe()}"
    text = run.stderr if where == "stderr" else run.output
    for mention in mentions:
        assert mention in text, f"the message does not mention {mention!r}: {run.describe()}"
    if where == "stderr" and max_lines:
        lines = run.error_lines()
        assert 1 <= len(lines) <= max_lines, f"expected 1..{max_lines} error lines: {lines}"


def assert_no_crash(run: Run) -> None:
    assert run.code is not None, f"hung (killed after the timeout): {run.describe()}"
    for marker in CRASH_MARKERS:
        assert marker not in run.output, f"crashed: {run.describe()}"
