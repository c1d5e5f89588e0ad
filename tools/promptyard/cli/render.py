"""`promptyard render`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.rule import Rule
from rich.text import Text

from promptyard.cli.main import App, format_option, stdout_console
from promptyard.cli.output import emit
from promptyard.errors import ConfigError

MAX_VARS_BYTES = 16 << 20


def _load_vars_file(path: Path) -> dict[str, Any]:
    from promptyard.documents import DocumentError, parse_json_value, parse_yaml

    try:
        if not path.is_file():
            raise ConfigError(f"--vars {path}: not a regular file")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_VARS_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"--vars {path}: cannot read ({exc.strerror})") from None
    if len(raw) > MAX_VARS_BYTES:
        raise ConfigError(f"--vars {path}: over {MAX_VARS_BYTES:,} bytes; pass a smaller file")
    try:
        if path.suffix == ".json":
            data = parse_json_value(raw.decode("utf-8"))
        else:
            data = parse_yaml(raw, str(path)).data
    except DocumentError as exc:
        raise ConfigError(str(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--vars {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--vars {path}: expected a mapping of variable names to values")
    return data


def _parse_assignment(item: str, inputs: dict[str, dict[str, Any]]) -> tuple[str, Any]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--var")
    declared = inputs.get(name, {}).get("type", "string")
    types = declared if isinstance(declared, list) else [declared]
    if "string" in types:
        return name, value
    try:  # a non-string input takes JSON: --var history='["hi"]'
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value  # validation then names the mistyped variable


@click.command()
@click.argument("name")
@click.option("--ref", metavar="REF", help="Render the prompt as it is at a git ref.")
@click.option(
    "--vars",
    "vars_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A JSON or YAML file of variables.",
)
@click.option(
    "--var",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="A variable (repeatable; JSON for non-string inputs). Wins over --vars.",
)
@click.option(
    "--case",
    "case_id",
    metavar="ID",
    help="Start from the variables of this case of the prompt's eval datasets.",
)
@click.option(
    "--dataset", metavar="PATH", help="The dataset --case is in (when several hold the id)."
)
@format_option()
@click.pass_obj
def render(
    app: App,
    name: str,
    ref: str | None,
    vars_file: Path | None,
    assignments: tuple[str, ...],
    case_id: str | None,
    dataset: str | None,
    fmt: str,
) -> int:
    """Show the messages a model would get for prompt NAME.

    Variables come from --case (a dataset case's `vars`), then --vars, then --var."""
    from promptyard.conversation import display_text
    from promptyard.evals.slicing import find_case
    from promptyard.render import render_prompt

    if dataset is not None and case_id is None:
        raise click.UsageError("--dataset chooses the dataset of --case: give --case ID too")
    snapshot = app.workspace().snapshot(ref)
    prompt = snapshot.require_prompt(name)
    spec = prompt.require()
    variables: dict[str, Any] = {}
    if case_id is not None:
        _, case = find_case(snapshot, prompt, case_id, app.dataset_path(dataset))
        variables.update(case.vars)
    variables.update(_load_vars_file(vars_file) if vars_file else {})
    variables.update(_parse_assignment(item, spec.inputs) for item in assignments)
    rendered = render_prompt(prompt, variables)
    if fmt == "json":
        emit(rendered)
        return 0
    console = stdout_console()
    params = ", ".join(f"{k}={v}" for k, v in rendered.parameters.items())
    console.print(
        Text.assemble(
            (f"{rendered.name} {rendered.version}", "bold"),
            f"  {rendered.model} via {rendered.provider}" + (f" ({params})" if params else ""),
        )
    )
    for message in rendered.messages:
        console.print(Rule(message["role"], align="left", style="dim"))
        console.print(Text(display_text(message)))
    return 0
