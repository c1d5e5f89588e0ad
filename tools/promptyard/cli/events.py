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


@click.command()
@click.argument("prompt")
@click.option(
    "--events",
    "store",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The gateway's event store (`gateway --events`, with `capture:` in its config).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The candidate dataset (JSONL); existing cases are kept, new ones appended.",
)
@click.option("--max-cases", type=click.IntRange(1), default=200, show_default=True)
@click.option(
    "--max-case-bytes",
    type=click.IntRange(256),
    default=32_768,
    show_default=True,
    help="Cases larger than this (as a JSON line) are left out.",
)
@click.option(
    "--redact",
    metavar="MODULE:FUNCTION",
    help="Called with each case; returns it (redacted) or None to drop it.",
)
@click.pass_obj
def capture(
    app: App,
    prompt: str,
    store: Path,
    output: Path,
    max_cases: int,
    max_case_bytes: int,
    redact: str | None,
) -> int:
    """Turn PROMPT's sampled production requests into candidate golden cases.

    Each case's id is a hash of its variables (stable; duplicates are one case); the
    production answer is kept under metadata for the reviewer, who adds the asserts.
    """
    from promptyard.capture import capture_candidates, load_redactor

    result = capture_candidates(
        store,
        prompt,
        output,
        max_cases=max_cases,
        max_case_bytes=max_case_bytes,
        redact=load_redactor(redact) if redact else None,
    )
    stdout_console().print(
        f"{output}: {result.written:,} cases ({result.added:,} new; {result.duplicates:,} "
        f"duplicates, {result.redacted_away:,} redacted away, {result.too_large:,} too large, "
        f"{result.over_cap:,} over --max-cases)"
    )
    return 0
