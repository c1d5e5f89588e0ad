"""`promptyard bundle` and `promptyard bundle verify`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from promptyard.cli.main import App, format_option, stdout_console
from promptyard.cli.output import emit


@click.group(invoke_without_command=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the bundle here (atomically) instead of to standard output.",
)
@click.option(
    "--ref",
    default="HEAD",
    show_default=True,
    metavar="REF",
    help="Read the environment files at REF.",
)
@click.pass_context
def bundle(ctx: click.Context, out: Path | None, ref: str) -> int:
    """Write every tagged prompt version and the environment files as one JSON bundle.

    Prompt content comes from each tag's commit, never the working tree; the same
    repository state always gives byte-identical output.
    """
    if ctx.invoked_subcommand is not None:
        return 0
    from promptyard.fsutil import atomic_write
    from promptyard.release.bundle import bundle_file

    app: App = ctx.obj
    data, loaded = bundle_file(app.workspace(), ref)
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
        return 0
    atomic_write(out, data)
    versions = sum(len(v) for v in loaded.prompts.values())
    click.echo(
        f"wrote {out}: {len(loaded.prompts)} prompt(s), {versions} version(s), "
        f"{len(loaded.environments)} environment(s), hash {loaded.hash[:12]}",
        err=True,
    )
    return 0


@bundle.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@format_option()
def verify(file: Path, fmt: str) -> int:
    """Recompute every hash of a bundle FILE; exits 1 when any does not match."""
    from promptyard.release.bundle import verify_bundle

    check = verify_bundle(file)
    if fmt == "json":
        emit(check)
        return 0 if check.ok else 1
    console = stdout_console()
    if check.ok:
        console.print(
            f"[green]ok[/green] {escape(str(file))}: {check.prompts} prompt(s), "
            f"{check.versions} version(s), environments: {', '.join(check.environments) or 'none'}"
            f"; hash {check.hash}"
        )
    else:
        console.print(f"[red]invalid[/red] {escape(str(file))}")
        for problem in check.problems:
            console.print(f"  {escape(problem)}")
    return 0 if check.ok else 1
