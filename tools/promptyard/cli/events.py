"""`promptyard events export`: the event store's exposures and outcomes as Parquet."""

from __future__ import annotations

from pathlib import Path

import click

from promptyard.cli.main import App, stdout_console


@click.group()
def events() -> None:
    """The experiment event store of `serve --events` and `gateway --events`."""


@events.command()
@click.argument("store", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def export(app: App, store: Path, directory: Path) -> int:
    """Write STORE's events as DIRECTORY/exposures.parquet and outcomes.parquet.

    `experiment analyze --events DIRECTORY` reads the export like the store.
    """
    from promptyard.events import export_parquet

    counts = export_parquet(store, directory)
    stdout_console().print(
        f"{counts['exposures']:,} exposures and {counts['outcomes']:,} outcomes -> {directory}"
    )
    return 0
