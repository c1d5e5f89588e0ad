"""`promptyard eval`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape
from rich.table import Table

from promptyard.cli.main import (
    App,
    EvalFlags,
    build_eval_options,
    eval_options,
    format_option,
    stderr_console,
    stdout_console,
)
from promptyard.cli.output import emit
from promptyard.evals.slicing import CaseSelection

if TYPE_CHECKING:  # the library loads only when the command runs
    from promptyard.evals.results import EvalSummary
    from promptyard.evals.runner import EvalReport

FAILURES_SHOWN = 10


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cost(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 1 else f"${value:.6f}".rstrip("0").rstrip(".")


def _slice(summary: EvalSummary) -> str:
    """` (slice: 2 of 40 cases)` for a run on some cases, else ""."""
    part = summary.slice
    return f" (slice: {part['selected']} of {part['total']} cases)" if part else ""


def _print_text(report: EvalReport) -> None:
    console = stdout_console()
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("prompt / dataset", overflow="fold", min_width=24)
    for column in ("cases", "pass", "score", "errors", "p50/p95 ms", "tokens in/out", "cost"):
        table.add_column(column, justify="right", no_wrap=True)
    for run in report.runs:
        s = run.summary
        style = "green" if s.ok else "red"
        table.add_row(
            f"{escape(s.prompt)} {s.version}\n[dim]{escape(s.dataset)}{escape(_slice(s))}[/dim]",
            f"{s.cases} of {s.slice['total']}" if s.slice else str(s.cases),
            f"[{style}]{_percent(s.pass_rate)}[/{style}]\n[dim]min {_percent(s.threshold)}[/dim]",
            _number(s.mean_score, 3),
            (f"[red]{s.errors}[/red]" if s.errors else "0")
            + (f"\n[dim]{s.infra_errors} infra[/dim]" if s.infra_errors else ""),
            f"{_number(s.latency_ms_p50)}/{_number(s.latency_ms_p95)}",
            f"{_number(s.tokens_in)}/{_number(s.tokens_out)}",
            _cost(s.cost_usd),
        )
    console.print(table)
    for run in report.runs:
        if not run.failures:
            continue
        s = run.summary
        console.print(
            f"\n[bold]{escape(s.prompt)}[/bold] on {escape(s.dataset)}: "
            f"{run.failures_total} failing row(s)"
        )
        for row in run.failures[:FAILURES_SHOWN]:
            repeat = f" #{row.repeat + 1}" if s.repeat > 1 else ""
            mark = "[yellow]error[/yellow]" if row.error else "[red]fail[/red]"
            console.print(f"  {mark} {escape(row.case_id)}{repeat}: {escape(row.reason)}")
        if run.failures_total > FAILURES_SHOWN:
            console.print(
                f"  ... and {run.failures_total - FAILURES_SHOWN} more in {escape(str(run.results_path))}"
            )
    console.print()
    below = [run.summary for run in report.runs if not run.ok]
    if below:
        for s in below:
            console.print(
                f"[red]below threshold:[/red] {escape(s.prompt)} on {escape(s.dataset)}"
                f"{escape(_slice(s))}: pass rate {_percent(s.pass_rate)} < {_percent(s.threshold)}"
            )
    else:
        console.print(f"[green]{len(report.runs)} eval(s) met their threshold[/green]")
    sliced = [run.summary for run in report.runs if run.summary.slice]
    if sliced:
        part = sliced[0].slice
        assert part is not None
        asked = CaseSelection(tuple(part["cases"]), tuple(part["tags"]))
        console.print(
            f"[yellow]slice only[/yellow] ({escape(asked.describe())}): the thresholds were "
            f"applied to {sum(s.cases for s in sliced)} selected case(s), not to the whole "
            "datasets"
        )
    for path in report.recordings_written:
        console.print(f"recorded responses to {escape(path)}")


@click.command("eval")
@click.argument("names", nargs=-1)
@click.option("--dataset", metavar="PATH", help="Only evals on this dataset (or run NAME on it).")
@eval_options()
@format_option(
    "text", "json", "markdown", "html", "csv",
    help="text and json print the summary; with --out, or markdown/html/csv, every case.",
)  # fmt: skip
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the full report (every case) in --format to FILE; the summary still prints.",
)
@click.pass_obj
def eval_command(
    app: App,
    names: tuple[str, ...],
    dataset: str | None,
    flags: EvalFlags,
    fmt: str,
    out: Path | None,
) -> int:
    """Run the evals of prompt NAMEs (default: every prompt with evals).

    Live against the providers in promptyard.yaml (any OpenAI-compatible endpoint); offline
    from golden/recordings when no key or base URL is set, or with --offline. Results are
    written to .promptyard/runs/. Exits 1 when an eval's pass rate is below its threshold,
    3 when a provider cannot be reached.
    """
    from promptyard.cli.progress import eval_progress
    from promptyard.evals.runner import evaluate_snapshot

    workspace = app.workspace()
    err = stderr_console()
    with eval_progress(err) as progress:
        options = build_eval_options(
            flags,
            workspace.root,
            progress=progress,
            notify=lambda note: err.print(escape(note), highlight=False),
            command=app.command,
        )
        report = evaluate_snapshot(
            workspace.snapshot(),
            names,
            options=options,
            dataset=app.dataset_path(dataset),
            selection=flags.selection,
        )
    if out is not None:
        from promptyard.evals.reports import render_eval_report
        from promptyard.fsutil import atomic_write

        atomic_write(out, render_eval_report(report, fmt))
        err.print(f"wrote the {fmt} report of every case to {escape(str(out))}", highlight=False)
        _print_text(report)
    elif fmt == "json":
        emit(report)
    elif fmt == "text":
        _print_text(report)
    else:
        from promptyard.evals.reports import EVAL_REPORT_FORMATS

        emit(report, fmt, EVAL_REPORT_FORMATS)
    return 0 if report.ok else 1
