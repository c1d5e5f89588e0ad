"""`promptyard import`: bring another tool's configuration into a promptyard repository."""

from __future__ import annotations

from pathlib import Path

import click

from promptyard.cli.main import format_option, stdout_console
from promptyard.cli.output import emit


@click.group("import")
def import_group() -> None:
    """Import another tool's configuration as prompt specs, datasets and promptyard.yaml."""


@import_group.command("promptfoo")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder to write the repository into.",
)
@click.option("--force", is_flag=True, help="Replace files that already exist.")
@format_option("text", "json")
def promptfoo(config: Path, out: Path, force: bool, fmt: str) -> int:
    """Import CONFIG (promptfooconfig.yaml): prompts, providers, pricing, tests, assertions.

    Everything that cannot be carried over exactly is listed with its file and line."""
    from promptyard.importers.promptfoo import import_promptfoo

    plan = import_promptfoo(config, out, force=force)
    if fmt == "json":
        emit({"out": str(out), **plan.to_dict()})
        return 0
    console = stdout_console()
    for rel in sorted(plan.files):
        console.print(f"  [green]wrote[/green] {out / rel}")
    if plan.notes:
        console.print(f"\n{len(plan.notes)} thing(s) not carried over exactly:")
        for note in plan.notes:
            console.print(f"  {note}", markup=False)
    console.print(f"\nNext: cd {out} && promptyard lint && promptyard eval")
    return 0
