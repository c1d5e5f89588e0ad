"""Run the real `promptyard` click group in-process, and check the CLI contract of a run.

The contract (docs/architecture.md §7) for bad input: the documented exit code, an error of one or two
lines naming the file, never a traceback or an "internal error", never a hang.
"""

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


# What the contract forbids in any output.
CRASH_MARKERS = ("Traceback (most recent call last)", "internal error")


def assert_no_crash(run: CliResult) -> None:
    assert run.exit_code is not None, f"hung (killed after the timeout): {run.describe()}"
    for marker in CRASH_MARKERS:
        assert marker not in run.output, f"crashed: {run.describe()}"


def assert_clean_error(
    run: CliResult, code: int, *mentions: str, max_lines: int = 2, where: str = "stderr"
) -> None:
    """The contract for a bad input: exit `code`, no crash, a short message naming `mentions`."""
    assert_no_crash(run)
    assert run.exit_code == code, f"expected exit {code}: {run.describe()}"
    text = run.stderr if where == "stderr" else run.output
    for mention in mentions:
        assert mention in text, f"the message does not mention {mention!r}: {run.describe()}"
    if where == "stderr" and max_lines:
        lines = run.error_lines()
        assert 1 <= len(lines) <= max_lines, f"expected 1..{max_lines} error lines: {lines}"
