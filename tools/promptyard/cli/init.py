"""`promptyard init`."""

from __future__ import annotations

from pathlib import Path

import click

from promptyard.cli.main import stdout_console


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path, force: bool) -> int:
    """Scaffold a prompt repository in DIRECTORY (default: here) that lints clean."""
    from promptyard.scaffold import init_repository

    result = init_repository(directory, force=force)
    console = stdout_console()
    replaced = set(result.overwritten)
    for rel in result.written:
        if rel in replaced:
            console.print(f"  [yellow]overwrote[/yellow] {rel}")
        else:
            console.print(f"  [green]created[/green] {rel}")
    if result.git_initialized:
        console.print(f"  [green]initialized[/green] a git repository in {result.root}")
    console.print(f"\nNext: cd {directory} && promptyard lint && promptyard eval --offline")
    return 0
