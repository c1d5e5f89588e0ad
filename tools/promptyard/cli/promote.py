"""`promptyard promote` and `promptyard rollback`: environment pins as reviewed changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from promptyard.cli.main import App, format_option, stdout_console
from promptyard.cli.output import emit
from promptyard.spec.environment import STRATEGIES

if TYPE_CHECKING:  # the library loads only when the command runs
    from promptyard.release.environments import EnvironmentChange


def _delivery_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options promote and rollback share: where the change goes."""
    options = [
        click.option(
            "--branch",
            metavar="NAME",
            help="Commit the change on this new branch (from --base) for a pull request; the "
            "checkout is not touched.",
        ),
        click.option(
            "--base",
            default="HEAD",
            show_default=True,
            metavar="REF",
            help="Where --branch starts from.",
        ),
        click.option("--message", "-m", metavar="TEXT", help="The commit message (with --branch)."),
        click.option("--push", is_flag=True, help="Push the new branch (with --branch)."),
        click.option("--remote", default="origin", show_default=True, metavar="NAME"),
        format_option(),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _print(change: EnvironmentChange, fmt: str) -> int:
    if fmt == "json":
        emit(change)
        return 0
    console = stdout_console()
    if not change.changed:
        console.print(f"{escape(change.path)} already says so; nothing to change")
        return 0
    console.print(escape(change.diff.rstrip("\n")))
    for note in change.notes:
        console.print(f"note: {escape(note)}")
    if change.branch:
        assert change.commit and change.base  # a change on a branch is committed on a base
        console.print(
            f"committed on branch [bold]{escape(change.branch)}[/bold] "
            f"({change.commit[:12]}, from {change.base[:12]}): {escape(change.message)}"
        )
        if change.pushed_to:
            console.print(f"pushed to {escape(change.pushed_to)}; open a pull request from it")
        else:
            console.print(
                f"next: git push {escape('<remote>')} {escape(change.branch)} "
                "and open a pull request"
            )
    else:
        console.print(f"updated {escape(change.path)}; review and commit it (or use --branch)")
    return 0


@click.command()
@click.argument("name")
@click.argument("version")
@click.option(
    "--env",
    "env",
    required=True,
    metavar="ENV",
    help="The environment (serving/environments/ENV.yaml).",
)
@click.option(
    "--canary",
    type=click.FloatRange(0, 100),
    metavar="WEIGHT",
    help="Pin VERSION as the canary for WEIGHT percent of keys instead of as stable.",
)
@click.option(
    "--strategy",
    type=click.Choice(sorted(STRATEGIES)),
    help="Give the canary a rollout strategy `promptyard rollout run` executes (standard: "
    "5% 15m, 25% 1h, 50%, 100%); the canary starts at its first step unless --canary says.",
)
@_delivery_options
@click.pass_obj
def promote(
    app: App,
    name: str,
    version: str,
    env: str,
    canary: float | None,
    strategy: str | None,
    branch: str | None,
    base: str,
    message: str | None,
    push: bool,
    remote: str,
    fmt: str,
) -> int:
    """Pin VERSION of prompt NAME in an environment, preserving the file's comments.

    VERSION must be tagged, or be the prompt's version at the same ref. Promoting the
    current canary's version makes it stable and drops the canary.
    """
    from promptyard.release.environments import promote as run_promote

    change = run_promote(
        app.workspace(),
        name,
        version,
        env,
        canary=canary,
        strategy=STRATEGIES[strategy] if strategy else None,
        branch=branch,
        base=base,
        message=message,
        push=push,
        remote=remote,
    )
    return _print(change, fmt)


@click.command()
@click.argument("name")
@click.option(
    "--env",
    "env",
    required=True,
    metavar="ENV",
    help="The environment (serving/environments/ENV.yaml).",
)
@click.option("--to", "to", metavar="VERSION", help="Pin this earlier tagged version instead.")
@_delivery_options
@click.pass_obj
def rollback(
    app: App,
    name: str,
    env: str,
    to: str | None,
    branch: str | None,
    base: str,
    message: str | None,
    push: bool,
    remote: str,
    fmt: str,
) -> int:
    """Drop the canary of prompt NAME in an environment, or pin an earlier version (--to).

    Reverting the promotion's commit (`git revert`) is a rollback too.
    """
    from promptyard.release.environments import rollback as run_rollback

    change = run_rollback(
        app.workspace(),
        name,
        env,
        to=to,
        branch=branch,
        base=base,
        message=message,
        push=push,
        remote=remote,
    )
    return _print(change, fmt)
