"""`promptyard schema`."""

from __future__ import annotations

import click

from promptyard.spec import SCHEMAS, json_schema_text


@click.command()
@click.argument("name", type=click.Choice(sorted(SCHEMAS)), metavar="NAME")
def schema(name: str) -> int:
    """Print the JSON Schema of a file format."""
    click.echo(json_schema_text(name), nl=False)
    return 0
