"""Errors with the exit codes of the CLI contract (docs/architecture.md §7).

Library code raises these; the CLI turns them into a one- or two-line message and the
matching exit code in one place (`promptyard.cli.main`).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # lint errors, gate blocked, eval below threshold
    USAGE = 2  # bad flag, unreadable config, unknown ref
    INFRA = 3  # provider unreachable after retries, git remote unreachable


class PromptyardError(Exception):
    """Base class: a message for the user and the exit code it maps to."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(PromptyardError):
    """Bad input: a file that does not parse or validate, an unknown name, a bad option."""

    exit_code = ExitCode.USAGE


class RefError(ConfigError):
    """A git ref that does not resolve."""


class CheckFailed(PromptyardError):
    """The check ran and the change must not pass (used where a command has nothing else to print)."""

    exit_code = ExitCode.CHECK_FAILED


class InfraError(PromptyardError):
    """Something outside the repository failed: a provider, a git remote, the disk."""

    exit_code = ExitCode.INFRA


class Terminated(KeyboardInterrupt):
    """SIGTERM, the way CI systems stop a cancelled job: handled like Ctrl-C (a report
    written so far says the run could not finish), with the shell's exit code 143."""

    exit_code = 143
