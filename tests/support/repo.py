"""Real temporary prompt repositories (git included) for tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import yaml
from click.testing import CliRunner

from promptyard.cli.main import cli

CONFIG = """\
providers:
  default:
    type: openai
pricing:
  test-model: {input: 1.0, output: 2.0}
"""


def prompt_doc(
    name: str = "greet",
    version: str = "1.0.0",
    *,
    inputs: dict[str, Any] | None = None,
    messages: list[dict[str, str]] | None = None,
    evals: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> str:
    """The YAML text of a valid prompt spec; keyword arguments override or add fields."""
    doc: dict[str, Any] = {
        "name": name,
        "version": version,
        "model": {"provider": "default", "name": "test-model", "parameters": {"temperature": 0}},
        "inputs": {"who": {"type": "string"}} if inputs is None else inputs,
        "messages": messages
        if messages is not None
        else [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi {{ who }}"},
        ],
    }
    if evals is not None:
        doc["evals"] = evals
    doc.update(fields)
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


class PromptRepo:
    """A git repository with promptyard.yaml; write files, commit, run the CLI against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.git = git.Repo(root)

    @classmethod
    def create(cls, root: Path, config: str = CONFIG) -> PromptRepo:
        root.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(root, initial_branch="main")
        with repo.config_writer() as writer:
            writer.set_value("user", "name", "Test")
            writer.set_value("user", "email", "test@example.com")
            writer.set_value("commit", "gpgsign", "false")
            writer.set_value("tag", "gpgsign", "false")
        instance = cls(root)
        instance.write("promptyard.yaml", config)
        instance.commit("initial")
        return instance

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink()

    def commit(self, message: str = "change") -> str:
        self.git.git.add(A=True)
        self.git.git.commit("-m", message, "--allow-empty")
        return self.git.head.commit.hexsha

    def cli(self, *args: str) -> CliResult:
        """Run the CLI in-process (click's runner) with --repo pointing here."""
        result = CliRunner().invoke(cli, ["--repo", str(self.root), *args], catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    def run(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        """Run the real `promptyard` process in the repository folder."""
        proc = subprocess.run(
            [sys.executable, "-m", "promptyard.cli", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
            timeout=120,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)
