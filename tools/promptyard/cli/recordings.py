"""`promptyard recordings prune`."""

from __future__ import annotations

import click
from rich.markup import escape

from promptyard.cli.main import App, format_option, stdout_console
from promptyard.cli.output import emit

UNUSED_SHOWN = 5


@click.group("recordings")
def recordings() -> None:
    """Maintain the recorded responses in golden/recordings/."""


@recordings.command("prune")
@click.option(
    "--base",
    default="main",
    show_default=True,
    metavar="REF",
    help="Versions at the merge base of HEAD with REF are in use too.",
)
@click.option("--check", is_flag=True, help="Only report; exit 1 when rows would be removed.")
@format_option()
@click.pass_obj
def prune(app: App, base: str, check: bool, fmt: str) -> int:
    """Remove recorded rows no prompt version asks for any more.

    A version is in use in the working tree, at HEAD and at the merge base of HEAD with
    --base. Its evals are replayed offline against the recordings to find every request
    (answers, judge and embedding calls) it makes; rows none of them asks for are removed.
    """
    from promptyard.evals.pruning import prune_recordings

    report = prune_recordings(app.workspace(), base, check=check)
    if fmt == "json":
        emit(report)
    else:
        console = stdout_console()
        verb = "would remove" if check else "removed"
        for file in report.files:
            if not file.unused:
                continue
            whole = " (the whole file)" if file.kept == 0 else ""
            console.print(
                f"{escape(file.path)}: {verb} {len(file.unused)} of {file.rows} row(s){whole}"
            )
            for row in file.unused[:UNUSED_SHOWN]:
                console.print(
                    f"  {row.kind} {escape(row.dataset)} {escape(row.case)}"
                    f"{f' #{row.repeat + 1}' if row.repeat else ''} {row.key[:12]}"
                )
            if len(file.unused) > UNUSED_SHOWN:
                console.print(f"  ... and {len(file.unused) - UNUSED_SHOWN} more")
        for prompt, why in report.skipped.items():
            console.print(
                f"kept every row of {escape(prompt)}: its evals cannot run ({escape(why)})"
            )
        where = f" or at the merge base with {report.base}" if report.base else ""
        if report.unused:
            console.print(
                f"{report.unused} recorded row(s) {'are' if check else 'were'} used by no prompt "
                f"version in the working tree, at HEAD{where}"
                + ("; run `promptyard recordings prune` to remove them" if check else "")
            )
        else:
            console.print(f"every recorded row is in use (working tree, HEAD{where})")
    return 1 if check and report.unused else 0
