"""Run the real `promptyard` click group in-process and capture its exit code and output."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from support.repo import CliResult


def run_cli(*args: str, repo: Path | None = None) -> CliResult:
    """`promptyard [--repo REPO] ARGS...`; exit codes come from the group's error mapping."""
    from promptyard.cli.main import cli

    argv = [*(["--repo", str(repo)] if repo else []), *args]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)
