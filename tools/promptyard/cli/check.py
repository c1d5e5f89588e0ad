"""`promptyard check`: the pull-request gate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from promptyard.cli.main import (
    RECORD_BOTH_HELP,
    App,
    EvalFlags,
    build_eval_options,
    eval_options,
    format_option,
    stderr_console,
)

if TYPE_CHECKING:  # the library loads only when the command runs
    from promptyard.compare.check import CheckResult


def _github_annotations(result: CheckResult) -> str:
    """Lint findings and every gate that did not pass, as GitHub workflow commands."""
    from promptyard.lint.formats import FORMATS, escape_data, escape_property

    lines = [FORMATS["github"](result.lint)]
    prefix = result.lint.path_prefix
    for gate in result.report.gates:  # gates on the change as a whole: promptyard.yaml
        if gate.outcome == "pass":
            continue
        level = "error" if gate.outcome == "block" else "warning"
        where = escape_property(prefix + "promptyard.yaml")
        title = escape_property(f"promptyard gate: {gate.gate}")
        lines.append(f"::{level} file={where},title={title}::{escape_data(gate.reason)}")
    for prompt in result.report.prompts:
        for gate in prompt.all_gates:
            if gate.outcome == "pass":
                continue
            level = "error" if gate.outcome == "block" else "warning"
            where = f"file={escape_property(prefix + prompt.path)}," if prompt.path else ""
            title = escape_property(f"promptyard gate: {gate.gate}")
            lines.append(
                f"::{level} {where}title={title}::{escape_data(f'{prompt.prompt}: {gate.reason}')}"
            )
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    from promptyard.fsutil import atomic_write

    atomic_write(path, text)


def _append_step_summary(text: str) -> None:
    """GitHub Actions renders what a step appends to $GITHUB_STEP_SUMMARY on the run page."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")


@click.command("check")
@click.option("--base", metavar="REF", help="Compare with the merge base of REF (the PR base).")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Markdown report (the pull-request comment) to FILE.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the self-contained HTML report to FILE.",
)
@eval_options(record_help=RECORD_BOTH_HELP)
@format_option()
@click.pass_obj
def check(
    app: App,
    base: str | None,
    report_path: Path | None,
    html_path: Path | None,
    flags: EvalFlags,
    fmt: str,
) -> int:
    """Lint, evaluate the changed and added prompts, compare with --base and apply the gates.

    Without --base, every prompt is judged by its eval thresholds. Exits 1 when a lint
    error or a gate blocks (warnings pass), 2 for bad input or an unknown ref, 3 when a
    provider cannot be reached (never a pass). Under GitHub Actions the Markdown report
    is also added to the job summary and findings become annotations.
    """
    from promptyard.cli.progress import eval_progress
    from promptyard.compare import render, run_check
    from promptyard.compare.reports.html import failure_html
    from promptyard.compare.reports.markdown import failure_markdown
    from promptyard.errors import PromptyardError, Terminated

    workspace = app.workspace()
    err = stderr_console()
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    try:
        with eval_progress(err, "check") as progress:
            options = build_eval_options(
                flags,
                workspace.root,
                progress=progress,
                notify=lambda note: err.print(escape(note), highlight=False),
                command=app.command,
            )
            result = run_check(workspace, base, options=options, selection=flags.selection)
    except BaseException as exc:
        # A report file from an earlier run must not survive to say "pass" — not after an
        # error, and not after Ctrl-C or a cancelled CI job either (KeyboardInterrupt,
        # SystemExit). The exception itself is raised on, for the CLI to handle.
        if isinstance(exc, PromptyardError):
            why = (exc.message, exc.hint, int(exc.exit_code))
        elif isinstance(exc, Terminated):
            why = ("terminated (SIGTERM) before it finished", None, Terminated.exit_code)
        elif isinstance(exc, KeyboardInterrupt | click.exceptions.Abort):
            why = ("interrupted before it finished", None, 130)
        elif isinstance(exc, SystemExit):
            why = (f"stopped (exit {exc.code})", None, 3)
        else:
            why = (f"internal error: {type(exc).__name__}: {exc}", None, 3)
        failure = failure_markdown("check", *why)
        if report_path is not None:
            _write(report_path, failure)
        if html_path is not None:
            _write(html_path, failure_html("check", *why))
        if github:
            _append_step_summary(failure)
        raise
    report = result.report
    markdown = render(report, "markdown")
    if report_path is not None:
        _write(report_path, markdown)
    if html_path is not None:
        _write(html_path, render(report, "html"))
    if github:
        _append_step_summary(markdown)
        if fmt == "text":  # annotations go to stdout, which --format json keeps for JSON
            click.echo(_github_annotations(result))
    click.echo(render(report, fmt), nl=False)
    for path in (report_path, html_path):
        if path is not None:
            err.print(f"wrote {escape(str(path))}", highlight=False)
    return 0 if result.ok else 1
