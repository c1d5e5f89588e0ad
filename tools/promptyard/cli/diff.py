"""`promptyard diff`."""

from __future__ import annotations

from pathlib import Path

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


@click.command("diff")
@click.argument("names", nargs=-1)
@click.option("--base", metavar="REF", help="Compare with the merge base of REF.")
@click.option("--head", metavar="REF", help="The head to compare (default: the working tree).")
@click.option(
    "models",
    "--model",
    multiple=True,
    metavar="[PROVIDER:]MODEL",
    help="Compare models instead of versions: run NAMEs on their own model and on MODEL "
    "(repeatable), same cases, paired. Without --base and --model: the evals' compare_models.",
)
@click.option(
    "--gate",
    is_flag=True,
    help="With a model comparison: exit 1 when a compared model would be blocked by the gates.",
)
@format_option("text", "markdown", "json", "html")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE."
)
@eval_options(record_help=RECORD_BOTH_HELP)
@click.pass_obj
def diff_command(
    app: App,
    names: tuple[str, ...],
    base: str | None,
    head: str | None,
    models: tuple[str, ...],
    gate: bool,
    fmt: str,
    out: Path | None,
    flags: EvalFlags,
) -> int:
    """Compare prompt NAMEs (default: every changed prompt) between --base and head, or
    compare models (--model, or the evals' compare_models when --base is not given).

    Each changed prompt runs in its base and head version on the head's cases, paired by
    case id: pass rate (McNemar), scores (paired t or Wilcoxon, bootstrap interval),
    errors, latency and cost, the gates of promptyard.yaml, and the cases that flipped.
    Exits 1 when a gate blocks, 2 for an unknown ref, 3 when a provider cannot be reached.
    A model comparison (the working tree: each other model against the prompt's own, the
    same statistics) exits 0 whatever it finds, 1 with --gate when a model would block.
    """
    from promptyard.cli.progress import eval_progress
    from promptyard.compare import compare_models, render, run_diff
    from promptyard.fsutil import atomic_write

    by_model = base is None
    if by_model and head is not None:
        raise click.UsageError("--head needs --base; a model comparison runs the working tree")
    if models and not by_model:
        raise click.UsageError(
            "--model compares models on the working tree; it cannot be combined with --base"
        )
    if gate and not by_model:
        raise click.UsageError("--gate applies to a model comparison; diff --base always gates")
    workspace = app.workspace()
    err = stderr_console()
    with eval_progress(err, "diff") as progress:
        options = build_eval_options(
            flags,
            workspace.root,
            progress=progress,
            notify=lambda note: err.print(escape(note), highlight=False),
            command=app.command,
        )
        if base is None:
            report = compare_models(
                workspace, names, models, options=options, selection=flags.selection
            )
        else:
            report = run_diff(
                workspace, base, head, names, options=options, selection=flags.selection
            )
    output = render(report, fmt)
    if out is not None:
        atomic_write(out, output)
        err.print(f"wrote {escape(str(out))}", highlight=False)
    else:
        click.echo(output, nl=False)
    for path in report.recordings_written:
        err.print(f"recorded responses to {escape(path)}", highlight=False)
    if by_model and not gate:
        return 0  # a comparison informs a choice; --gate makes it one
    return 1 if report.decision == "block" else 0
