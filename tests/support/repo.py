"""Real temporary prompt repositories (git included) for tests.

`PromptRepo` is THE test helper for a git repository holding a promptyard project: write or
remove files, commit, run git (`repo.git(...)`, the git CLI), run promptyard in-process
(`cli`) or as a real process (`run`), release, push to a bare remote. Two ways to get one:

- `PromptRepo.create(root, config)`: promptyard.yaml only, committed (the `repo` fixture).
- `make_repo(tmp, with_remote=, environments=)`: a typical released-style project (prompts
  `support-reply` and `greeter` with a partial, production/staging environments), optionally
  with a bare `origin` — what the release and serve suites start from.
- the `scaffolded` fixture (conftest): what `promptyard init` makes, committed — where the
  tests of hostile and wrong input start (`support.cli.assert_clean_error` checks the CLI
  contract: exit code, a short error naming the file, no traceback, no hang).

`run_promptyard(cwd, *args)` runs the real console script outside any repository too.

Every repository made here has a fixed identity and signing off in its own git config, so no
test depends on the machine's git configuration. Code that needs GitPython opens the
repository itself: `promptyard.repo.workspace.Workspace(repo.root).git`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from promptyard.cli.main import cli

# The identity of every commit and tag made in tests, by a helper or by the code under test
# (conftest exports it): never the developer's.
GIT_NAME = "Prompt Author"
GIT_EMAIL = "author@example.com"
GIT_ENV = {
    "GIT_AUTHOR_NAME": GIT_NAME,
    "GIT_AUTHOR_EMAIL": GIT_EMAIL,
    "GIT_COMMITTER_NAME": GIT_NAME,
    "GIT_COMMITTER_EMAIL": GIT_EMAIL,
    "GIT_CONFIG_NOSYSTEM": "1",
}

# Written into each repository's own config: the same identity, and no signing (a
# developer's global commit.gpgsign would otherwise make every commit and tag need a key).
REPO_GIT_CONFIG = {
    "user.name": GIT_NAME,
    "user.email": GIT_EMAIL,
    "commit.gpgsign": "false",
    "tag.gpgsign": "false",
    "tag.forceSignAnnotated": "false",
}

# promptyard.yaml of `PromptRepo.create` (the `repo` fixture).
CONFIG = """\
providers:
  default:
    type: openai
pricing:
  test-model: {input: 1.0, output: 2.0}
"""

# promptyard.yaml of `make_repo` (the release and serve suites).
RELEASE_CONFIG = """\
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
    """`git ARGS` in `cwd` with the test identity; stripped stdout. Fails the test on error."""
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
class CliResult:
    """One finished `promptyard` run; `exit_code` None: killed after its timeout (a hang)."""

    exit_code: int | None
    stdout: str
    stderr: str
    args: tuple[str, ...] = ()

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

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
        return f"promptyard {' '.join(self.args)} -> exit {self.exit_code}\n{tail}"


# The real console script, next to this interpreter.
PROMPTYARD = str(Path(sys.executable).with_name("promptyard"))


def _limit_memory(max_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    return apply


def run_promptyard(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    memory_limit: int | None = None,
) -> CliResult:
    """The real `promptyard ARGS` process in `cwd`, in the test's environment plus `env`
    (conftest drops the developer's provider settings); a hang is killed after `timeout`
    seconds (exit_code None); `memory_limit` caps its address space in bytes."""
    proc = subprocess.Popen(
        [PROMPTYARD, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        errors="replace",
        env={**os.environ, **GIT_ENV, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})},
        preexec_fn=_limit_memory(memory_limit) if memory_limit else None,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return CliResult(proc.returncode, out, err, args)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return CliResult(None, out, err, args)


class PromptRepo:
    """A git repository holding a promptyard project (and optionally its bare `origin`).

    `PromptRepo(root)` wraps an existing (or about to be cloned) repository; `init`, `create`
    and `clone` make one with the test identity configured.
    """

    def __init__(self, root: Path, remote: Path | None = None) -> None:
        self.root = root
        self.remote = remote

    def __repr__(self) -> str:
        return f"PromptRepo(root={self.root!r}, remote={self.remote!r})"

    # --- creation -------------------------------------------------------------------------

    @classmethod
    def init(cls, root: Path) -> PromptRepo:
        """An empty repository on branch main (no commit yet)."""
        root.mkdir(parents=True, exist_ok=True)
        run_git(root, "init", "-q", "-b", "main")
        instance = cls(root)
        instance.configure()
        return instance

    @classmethod
    def create(cls, root: Path, config: str = CONFIG) -> PromptRepo:
        """A repository whose one commit ("initial") holds promptyard.yaml = `config`."""
        instance = cls.init(root)
        instance.write("promptyard.yaml", config)
        instance.commit("initial")
        return instance

    @classmethod
    def clone(cls, source: Path, root: Path) -> PromptRepo:
        """A working clone of `source` (a path), with the test identity configured."""
        run_git(root.parent, "clone", "-q", str(source), str(root))
        instance = cls(root)
        instance.configure()
        return instance

    def configure(self) -> None:
        """Write the test identity and "no signing" into this repository's git config."""
        for key, value in REPO_GIT_CONFIG.items():
            self.git("config", key, value)

    # --- files ----------------------------------------------------------------------------

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def path(self, rel: str) -> Path:
        return self.root / rel

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink()

    def replace(self, rel: str, old: str, new: str) -> None:
        """Replace the first `old` in file `rel` (which must hold it) with `new`."""
        text = self.read(rel)
        assert old in text, f"{old!r} not in {rel}"
        self.write(rel, text.replace(old, new, 1))

    def jsonl(self, rel: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.read(rel).splitlines() if line.strip()]

    def write_jsonl(self, rel: str, rows: list[dict[str, Any]]) -> None:
        self.write(rel, "".join(json.dumps(row) + "\n" for row in rows))

    def set_prompt(self, name: str, version: str, **kwargs: Any) -> None:
        """prompts/NAME.yaml = `prompt_yaml(name, version, **kwargs)` (needs partial tone.j2)."""
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

    # --- git ------------------------------------------------------------------------------

    def git(self, *args: str, check: bool = True) -> str:
        """`git ARGS` in this repository (the git CLI); stripped stdout."""
        return run_git(self.root, *args, check=check)

    def commit(self, message: str = "change") -> str:
        """Stage everything and commit; the new HEAD's sha.

        Nothing to commit fails the test (no --allow-empty): a test that thinks it changed
        something and did not would otherwise pass for the wrong reason.
        """
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def push(self) -> None:
        self.git("push", "-q", "origin", "HEAD:refs/heads/main", "--tags", "--force")

    # --- promptyard -----------------------------------------------------------------------

    def release(self, **kwargs: Any) -> Any:
        """The library's `release(Workspace(root), lint=findings_at, **kwargs)`."""
        from promptyard.lint import findings_at
        from promptyard.release.releaser import release
        from promptyard.repo.workspace import Workspace

        return release(Workspace(self.root), lint=findings_at, **kwargs)

    def cli(self, *args: str) -> CliResult:
        """Run the CLI in-process (click's runner) with --repo pointing here."""
        result = CliRunner().invoke(cli, ["--repo", str(self.root), *args], catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    def run(self, *args: str, **options: Any) -> CliResult:
        """Run the real `promptyard` process in the repository folder (`run_promptyard`)."""
        return run_promptyard(self.root, *args, **options)


# The example `promptyard init` scaffolds (the `scaffolded` fixture): prompt, dataset, recordings.
SCAFFOLD_PROMPT = "prompts/summarize.yaml"
SCAFFOLD_DATASET = "golden/summarize.jsonl"
SCAFFOLD_RECORDINGS = "golden/recordings/summarize.jsonl"


def set_case_asserts(repo: PromptRepo, case_id: str, asserts: list[dict[str, Any]]) -> None:
    """Give case `case_id` of the scaffold's dataset these `assert` entries."""
    rows = repo.jsonl(SCAFFOLD_DATASET)
    for row in rows:
        if row["id"] == case_id:
            row["assert"] = asserts
    repo.write_jsonl(SCAFFOLD_DATASET, rows)


def set_system_template(repo: PromptRepo, line: str) -> None:
    """Replace the `{% include "style.j2" %}` line of the scaffold's prompt with `line`."""
    repo.replace(SCAFFOLD_PROMPT, '{% include "style.j2" %}', line)


def make_repo(tmp: Path, *, with_remote: bool = False, environments: bool = True) -> PromptRepo:
    """A repository with prompt `support-reply` 1.0.0 and `greeter` 1.0.0, committed on main.

    With `environments`, production and staging pin both at 1.0.0 (untagged until release).
    With `with_remote`, a bare `tmp/remote.git` is `origin` and has main.
    """
    repo = PromptRepo.init(tmp / "work")
    repo.write("promptyard.yaml", RELEASE_CONFIG)
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
