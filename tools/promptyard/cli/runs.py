"""`promptyard runs list|prune`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from promptyard.cli.main import App, format_option, stdout_console
from promptyard.cli.output import emit


def _runs_dir(app: App) -> Path:
    from promptyard.evals.runner import EvalOptions

    return EvalOptions(repo_root=app.workspace().root).runs_dir


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


@click.group("runs")
def runs() -> None:
    """List or prune the eval runs in .promptyard/runs."""


@runs.command("list")
@click.option("--prompt", "prompt", metavar="NAME", help="Only the runs of this prompt.")
@format_option()
@click.pass_obj
def list_command(app: App, prompt: str | None, fmt: str) -> int:
    """Every run, newest first: prompt, version, dataset, when, commit, pass rate, errors."""
    from promptyard.evals.runs import list_runs

    found = list_runs(_runs_dir(app), prompt=prompt)
    if fmt == "json":
        emit({"runs": [r.to_dict() for r in found]})
        return 0
    if not found:
        stdout_console().print("no runs yet: `promptyard eval` writes them")
        return 0
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("prompt / run", overflow="fold", min_width=24)
    table.add_column("dataset", overflow="fold")
    for column in ("started (UTC)", "commit", "cases", "pass", "errors"):
        table.add_column(column, no_wrap=True, justify="right" if column != "commit" else "left")
    for run in found:
        s = run.summary
        git = s.get("git") or {}
        commit = (git.get("commit") or "-")[:8] + ("*" if git.get("dirty") else "")
        state = "running" if run.running else ("" if s.get("complete") else "incomplete")
        mode = " ".join(x for x in (str(s.get("mode")), state) if x)
        started = (s.get("started_at") or "-").replace("T", " ")[:16]
        table.add_row(
            f"{escape(str(s.get('prompt')))} {escape(str(s.get('version')))} [dim]{mode}[/dim]"
            f"\n[dim]{escape(run.run_id)}[/dim]",
            escape(str(s.get("dataset"))),
            started,
            escape(commit),
            str(s.get("cases")),
            _percent(s.get("pass_rate")),
            str(s.get("errors")),
        )
    stdout_console().print(table)
    return 0


@runs.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Remove runs started more than DAYS days ago.",
)
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    metavar="N",
    help="Keep only the N newest runs of each prompt.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@format_option()
@click.pass_obj
def prune(app: App, days: float | None, keep: int | None, dry_run: bool, fmt: str) -> int:
    """Remove old runs (by age and/or count). A run being written is never removed."""
    from promptyard.evals.runs import prune_runs

    older_than = timedelta(days=days) if days is not None else None
    result = prune_runs(_runs_dir(app), older_than=older_than, keep=keep, dry_run=dry_run)
    if fmt == "json":
        emit(result)
        return 0
    console = stdout_console()
    verb = "would remove" if dry_run else "removed"
    console.print(f"{verb} {len(result.removed)} run(s); {result.kept} kept")
    for run_id in result.removed:
        console.print(f"  {escape(run_id)}")
    for run_id in result.skipped_running:
        console.print(f"  [yellow]skipped[/yellow] {escape(run_id)}: a process is writing it")
    return 0
