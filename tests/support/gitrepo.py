"""Real temporary git repositories holding a small promptyard project (for release and serve).

`PromptRepo` is a working clone with helpers to edit prompts and environments, commit, tag
(through the real `release`) and push to a bare "remote" repository.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Prompt Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Prompt Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}

CONFIG = """\
providers:
  default:
    type: openai
"""

PARTIAL = "Be brief and friendly.\n"

ENVIRONMENT = """\
# yaml-language-server: $schema=../../tools/promptyard/schemas/environment.json
environment: {env}   # where it serves
prompts:
{pins}"""


def prompt_yaml(name: str, version: str, greeting: str = "Hello", extra_input: bool = False) -> str:
    """A typical prompt: a system message with a partial, a user message, typed inputs."""
    inputs = {
        "company": {"type": "string"},
        "ticket": {"type": "string"},
        "history": {"type": "array", "items": {"type": "string"}, "default": []},
    }
    if extra_input:
        inputs["tone"] = {"type": "string", "default": "warm"}
    lines = [
        f"name: {name}",
        f"version: {version}",
        "description: Drafts a reply to a support ticket.",
        "model:",
        "  provider: default",
        "  name: gpt-4o-mini",
        "  parameters: {temperature: 0.2, max_tokens: 400}",
        "inputs:",
        *(f"  {k}: {json.dumps(v)}" for k, v in inputs.items()),
        "messages:",
        "  - role: system",
        "    content: |",
        f"      {greeting} from {{{{ company }}}}.",
        '      {% include "tone.j2" %}',
        "      {% for line in history %}Earlier: {{ line }}",
        "      {% endfor %}",
        "  - role: user",
        '    content: "{{ ticket }}"',
    ]
    return "\n".join(lines) + "\n"


def run_git(cwd: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


@dataclass
class PromptRepo:
    """A working repository (and optionally its bare remote `origin`)."""

    root: Path
    remote: Path | None = None

    def write(self, path: str, text: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def read(self, path: str) -> str:
        return (self.root / path).read_text(encoding="utf-8")

    def set_prompt(self, name: str, version: str, **kwargs: Any) -> None:
        self.write(f"prompts/{name}.yaml", prompt_yaml(name, version, **kwargs))

    def set_environment(self, env: str, pins: dict[str, Any]) -> None:
        """pins: name -> "1.0.0" or (stable, canary, weight)."""
        lines = []
        for name, pin in pins.items():
            if isinstance(pin, str):
                lines.append(f"  {name}:\n    version: {pin}\n")
            else:
                stable, canary, weight = pin
                lines.append(
                    f"  {name}:\n    version: {stable}\n"
                    f"    canary: {{version: {canary}, weight: {weight}}}\n"
                )
        self.write(
            f"serving/environments/{env}.yaml", ENVIRONMENT.format(env=env, pins="".join(lines))
        )

    def commit(self, message: str) -> str:
        run_git(self.root, "add", "-A")
        run_git(self.root, "commit", "-q", "-m", message)
        return self.head()

    def head(self) -> str:
        return run_git(self.root, "rev-parse", "HEAD")

    def git(self, *args: str, check: bool = True) -> str:
        return run_git(self.root, *args, check=check)

    def release(self, **kwargs: Any) -> Any:
        from promptyard.release.releaser import release
        from promptyard.workspace import Workspace

        return release(Workspace(self.root), **kwargs)

    def push(self) -> None:
        self.git("push", "-q", "origin", "HEAD:refs/heads/main", "--tags", "--force")


def make_repo(tmp: Path, *, with_remote: bool = False, environments: bool = True) -> PromptRepo:
    """A repository with prompt `support-reply` 1.0.0 and `greeter` 1.0.0, committed on main.

    With `environments`, production and staging pin both at 1.0.0 (untagged until release).
    """
    root = tmp / "work"
    root.mkdir(parents=True)
    run_git(root, "init", "-q", "-b", "main")
    repo = PromptRepo(root)
    repo.write("promptyard.yaml", CONFIG)
    repo.write("prompts/partials/tone.j2", PARTIAL)
    repo.set_prompt("support-reply", "1.0.0")
    repo.set_prompt("greeter", "1.0.0", greeting="Hi")
    if environments:
        repo.set_environment("production", {"support-reply": "1.0.0", "greeter": "1.0.0"})
        repo.set_environment("staging", {"support-reply": "1.0.0", "greeter": "1.0.0"})
    repo.commit("initial prompts")
    if with_remote:
        remote = tmp / "remote.git"
        run_git(tmp, "init", "-q", "--bare", "-b", "main", str(remote))
        repo.git("remote", "add", "origin", str(remote))
        repo.git("push", "-q", "origin", "main")
        repo.remote = remote
    return repo
