"""`promptyard lint`."""

from __future__ import annotations

import click

from promptyard.cli.main import App, format_option, stdout_console


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--base", metavar="REF", help="Check only what changed since REF, plus semver rules.")
@format_option("text", "json", "github", "sarif")
@click.option("--list-rules", is_flag=True, help="Print every rule code and exit.")
@click.pass_obj
def lint(app: App, paths: tuple[str, ...], base: str | None, fmt: str, list_rules: bool) -> int:
    """Check prompts, datasets, environments and experiments.

    With PATHS (files or folders), check those and the files that depend on them.
    Exits 1 when there is any error.
    """
    from promptyard.lint import lint_repository, rule_table
    from promptyard.lint.formats import FORMATS

    if list_rules:
        console = stdout_console()
        for r in rule_table():
            console.print(f"{r['code']:<5} {r['name']:<32} {r['severity']:<8} {r['summary']}")
        return 0
    result = lint_repository(app.workspace(), paths, base)
    output = FORMATS[fmt](result)
    if fmt == "text":
        stdout_console().print(output)
    else:
        click.echo(output)
    return 0 if result.ok else 1
