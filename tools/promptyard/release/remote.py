"""Talking to a git remote (push, fetch, clone) without ever hanging or prompting.

Every failure to reach the remote becomes an `InfraError` (exit 3); a push the remote refuses
because a tag already exists there is a `CheckFailed` (exit 1) with the fix.
"""

from __future__ import annotations

import os
from typing import Any

from promptyard.errors import CheckFailed, ConfigError, InfraError

DEFAULT_TIMEOUT_S = 120.0

# Never wait for a password or a host-key prompt: a service or CI job has no one to answer.
_BATCH_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GCM_INTERACTIVE": "never",
}


def _env() -> dict[str, str]:
    env = dict(_BATCH_ENV)
    if "GIT_SSH_COMMAND" not in os.environ:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes -o ConnectTimeout=15"
    return env


def _last_line(exc: Any) -> str:
    """The line of git's stderr that says what went wrong (GitPython wraps it in quotes)."""
    text = (getattr(exc, "stderr", "") or "").strip()
    if text.startswith("stderr:"):
        text = text[len("stderr:") :].strip().strip("'")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:", "!"))]
    chosen = (fatal or lines or [f"git exited with status {getattr(exc, 'status', '?')}"])[-1]
    return chosen.removeprefix("fatal: ").removeprefix("error: ").strip()


def run_git_remote(
    repo: Any, command: str, *args: str, what: str, timeout: float = DEFAULT_TIMEOUT_S
) -> str:
    """Run `git <command> <args>` against a remote; InfraError when it cannot be reached."""
    import git

    try:
        with repo.git.custom_environment(**_env()):
            return str(getattr(repo.git, command)(*args, kill_after_timeout=timeout))
    except git.GitCommandError as exc:
        stderr = exc.stderr or ""
        if "couldn't find remote ref" in stderr:
            raise ConfigError(
                f"{what}: {_last_line(exc)}", hint="check the branch name (--branch)"
            ) from None
        if command == "push" and "[rejected]" in stderr and "already exists" in stderr:
            raise CheckFailed(
                f"{what}: the remote already has a tag of that name: {_last_line(exc)}",
                hint="someone released first: `git fetch --tags`, bump the version, re-run",
            ) from None
        raise InfraError(f"{what}: git remote unreachable or refused: {_last_line(exc)}") from None


def check_remote(repo: Any, remote: str) -> None:
    """ConfigError unless `remote` is a configured remote name or a URL."""
    names = [r.name for r in repo.remotes]
    if remote in names or "://" in remote or remote.startswith(("/", "./", "../")):
        return
    if "@" in remote and ":" in remote:  # scp-like user@host:path
        return
    raise ConfigError(
        f"no git remote named {remote!r}",
        hint=f"remotes: {', '.join(names) or 'none'}; pass --remote NAME or add one",
    )


def push_if_unchanged(repo: Any, remote: str, commit: str, branch: str, expected: str) -> bool:
    """Push `commit` to `branch` of `remote` only while the branch is still at `expected`.

    The remote checks the lease under its ref lock (compare-and-swap), so of two writers
    that started from the same commit exactly one succeeds. False when the branch moved;
    InfraError when the remote cannot be reached.
    """
    import git

    ref = f"refs/heads/{branch}"
    try:
        with repo.git.custom_environment(**_env()):
            repo.git.push(
                "--porcelain",
                f"--force-with-lease={ref}:{expected}",
                remote,
                f"{commit}:{ref}",
                kill_after_timeout=DEFAULT_TIMEOUT_S,
            )
    except git.GitCommandError as exc:
        said = f"{exc.stdout or ''}\n{exc.stderr or ''}"
        if "[rejected]" in said or "stale info" in said or "non-fast-forward" in said:
            return False
        raise InfraError(
            f"push to {branch} of {remote}: git remote unreachable or refused: {_last_line(exc)}"
        ) from None
    return True
