"""`promptyard experiment plan|analyze|allocate`: A/B experiments on prompt variants."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from promptyard.cli.main import App, format_option, stdout_console
from promptyard.cli.output import emit
from promptyard.errors import ConfigError

if TYPE_CHECKING:  # the library loads only when the command runs
    from promptyard.stats.experiment import ExperimentAnalysis

OUTCOME_STYLE = {"better": "green", "worse": "red", "inconclusive": "dim"}
ACTION_STYLE = {"ship": "green", "keep-control": "yellow", "continue": "cyan", "invalid": "red"}


def load_experiment(app: App, ref: str) -> tuple[Any, str, dict[str, int]]:
    """(spec, the file as messages name it, metric name -> line of its definition).

    `ref` is an experiment name in the repository, or the path of an experiment file.
    """
    from promptyard.repo.kinds import EXPERIMENTS

    path = Path(ref)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        from promptyard.repo.snapshot import Snapshot
        from promptyard.repo.trees import WorkingTree

        loaded = Snapshot(WorkingTree(path.resolve().parent)).load(EXPERIMENTS, path.name)
        shown = ref
    else:
        loaded = app.workspace().snapshot().named(EXPERIMENTS, ref)
        shown = loaded.path
    spec = loaded.require()
    lines: dict[str, int] = {}
    if loaded.document is not None:
        for index, metric in enumerate(spec.metrics):
            lines[metric.name] = loaded.document.locate(("metrics", index)).line
    return spec, shown, lines


def load_spec(app: App, ref: str) -> Any:
    """The experiment named `ref` in the repository, or the experiment file at path `ref`."""
    return load_experiment(app, ref)[0]


def _read(spec: Any, data: Path, variant_column: str) -> Any:
    from promptyard.stats.data import read_data

    return read_data(data, text_columns=[spec.assignment.unit, variant_column])


_data_option = click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV, JSONL or Parquet: one row per unit, its variant and one column per metric.",
)
_variant_option = click.option(
    "--variant-column", default="variant", show_default=True, help="The column naming the variant."
)


def _check_seed(ctx: click.Context, param: click.Parameter, value: int) -> int:
    from promptyard.stats._base import check_seed

    return check_seed("--seed", value)  # a ConfigError: exit 2 in one line, naming the flag


_seed_option = click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    callback=_check_seed,
    help="Seed of the Monte Carlo draws (a whole number, 0 or more).",
)


@click.group()
def experiment() -> None:
    """Plan, analyze and re-allocate A/B experiments (experiments/<name>.yaml).

    EXP is an experiment name (or a path to its YAML file).
    """


# --- plan ----------------------------------------------------------------------------------


@experiment.command()
@click.argument("exp")
@format_option("text", "json")
@click.pass_obj
def plan(app: App, exp: str, fmt: str) -> int:
    """Units needed per variant for every test the analysis runs, and the duration.

    Decision metrics (the primary, and a k-of-n rule's metrics) are planned two-sided at
    Holm's strictest level; guardrails one-sided for harm at the unadjusted alpha.
    """
    from promptyard.stats.experiment import plan_experiment

    spec, source, lines = load_experiment(app, exp)
    result = plan_experiment(spec, source=source, lines=lines)
    if fmt == "json":
        emit(result)
        return 0
    from promptyard.stats.report import error_control_lines, fmt_difference, fmt_value

    console = stdout_console()
    console.print(
        f"[bold]Experiment {result.experiment}[/bold]: alpha {result.alpha:g}, "
        f"power {result.power:g}"
    )
    for line in error_control_lines(
        result.alpha,
        result.comparisons,
        result.secondary_comparisons,
        result.guardrail_comparisons,
    ):
        console.print(f"  {line}", markup=False)
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    columns = ("metric", "role", "test", "variant", "baseline", "mde", "n control", "n variant")
    for column in columns:
        table.add_column(column, justify="right" if column.startswith("n ") else "left")
    for item in result.metrics:
        size = item.sample_size
        harm = item.family == "guardrail"  # the mde is then a change in the harmful direction
        better = item.direction == "increase"
        table.add_row(
            item.metric,
            item.role,
            "harm" if harm else item.family,
            item.treatment,
            fmt_value(item.baseline, item.type),
            fmt_difference(item.mde if better != harm else -item.mde, item.type),
            f"{size.n:,}",
            f"{size.n_treatment or 0:,}",
        )
    console.print(table)
    per_variant = ", ".join(f"{name} {n:,}" for name, n in result.per_variant.items())
    console.print(
        f"needed per variant: [bold]{per_variant}[/bold] (set by {result.binding_metric})"
    )
    console.print(f"total units: [bold]{result.total:,}[/bold]")
    if result.min_samples_sufficient is None:
        from promptyard.stats.sequential import BURN_IN

        console.print(
            "[dim]min_samples: not set; analyze decides only once each variant has the units "
            f"above (sequential: {BURN_IN})[/dim]"
        )
    else:
        enough = result.min_samples_sufficient
        verdict = "[green]enough[/green]" if enough else "[red]too few[/red]"
        console.print(f"min_samples {result.min_samples:,} per variant: {verdict}")
    if result.days is not None:
        console.print(
            f"duration: [bold]{result.days:,} days[/bold] at {result.daily_traffic:,} units/day"
        )
    else:
        console.print("[dim]duration: set daily_traffic in the experiment to estimate it[/dim]")
    return 0


# --- analyze -------------------------------------------------------------------------------


def _print_analysis(analysis: ExperimentAnalysis) -> None:
    from promptyard.stats.report import (
        OUTCOME_MARK,
        analysis_error_control,
        fmt_p,
        fmt_value,
        interval,
        lift_text,
        p_text,
    )

    console = stdout_console()
    srm = analysis.srm
    counts = ", ".join(
        f"{v.name} {v.units:,} ({v.share:.1%} vs {v.weight:g}%)" for v in analysis.variants
    )
    if srm.flagged:
        console.print(
            Text.assemble(
                ("SAMPLE RATIO MISMATCH", "bold red"),
                f": chi-square {srm.statistic:.2f}, p = {srm.p_value:.3g} < {srm.threshold:g}",
            )
        )
        console.print(f"  {counts}", markup=False)
        console.print(
            Text(
                "  The units per variant do not match the weights: do not trust any result "
                "below until the cause (assignment, logging, bots) is found.",
                style="red",
            )
        )
    elif srm.skipped_reason is not None:
        console.print(f"sample ratio not checked: {srm.skipped_reason}", markup=False)
    else:
        console.print(f"sample ratio ok (p = {srm.p_value:.3g}): {counts}")
    decision = analysis.decision
    style = ACTION_STYLE.get(decision.action, "bold")
    headline = decision.action + (f" {decision.variant}" if decision.variant else "")
    console.print(
        Text.assemble(("decision: ", "bold"), (headline, f"bold {style}"), f" ({decision.rule})")
    )
    console.print(Text(decision.reason))
    for line in analysis_error_control(analysis):
        console.print(f"  {line}", markup=False, style="dim")
    conf = f"{1 - analysis.alpha:.0%}"
    for r in analysis.metrics:
        console.print(
            Text.assemble(
                (r.metric, "bold"),
                f" ({r.role}, {r.direction} is better): {r.treatment} vs {r.control}  ",
                (OUTCOME_MARK[r.outcome], OUTCOME_STYLE[r.outcome]),
            )
        )
        console.print(
            f"  {r.control} {fmt_value(r.control_mean, r.type)} (n={r.control_n:,}), "
            f"{r.treatment} {fmt_value(r.treatment_mean, r.type)} (n={r.treatment_n:,})"
        )
        console.print(f"  difference {interval(r)} ({conf}), lift {lift_text(r)}")
        console.print(
            f"  p {fmt_p(r.p_value)} ({r.test}), {p_text(r, analysis.sequential)}; "
            f"P(better) {r.prob_better:.1%}, expected loss {fmt_value(r.expected_loss, r.type)}"
        )
    check = analysis.assignment
    console.print(
        f"assignment check: {check.mismatched:,} of {check.checked:,} rows differ from assign()"
    )
    for warning in analysis.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


@experiment.command()
@click.argument("exp")
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV, JSONL or Parquet: one row per unit, its variant and one column per metric.",
)
@click.option(
    "--events",
    type=click.Path(path_type=Path),
    help="Instead of --data: the event store of `serve`/`gateway --events` (or its Parquet "
    "export); exposures and outcomes are joined per unit.",
)
@_variant_option
@format_option("text", "markdown", "json")
@click.option(
    "--plot",
    type=click.Path(path_type=Path),  # checked by check_plot_target: one-line errors
    help="Also draw each metric's interval into this PNG file, in an existing folder "
    "(needs matplotlib).",
)
@_seed_option
@click.pass_obj
def analyze(
    app: App,
    exp: str,
    data: Path | None,
    events: Path | None,
    variant_column: str,
    fmt: str,
    plot: Path | None,
    seed: int,
) -> int:
    """Analyze experiment data: SRM first, every metric, and the decision.

    The data is a file with one row per unit (--data) or the event store the registry
    service or gateway recorded (--events).

    Exits 1 when the sample ratio check fails (the data cannot be trusted).
    """
    from promptyard.stats.experiment import analyze_experiment

    spec = load_spec(app, exp)
    if plot is not None:
        from promptyard.stats.plot import check_plot_target

        check_plot_target(plot)  # before the analysis: a bad path fails fast
    if (data is None) == (events is None):
        raise ConfigError("give --data FILE or --events STORE (one of them)")
    if events is not None:
        from promptyard.events import analyze_experiment_events

        analysis = analyze_experiment_events(spec, events, seed=seed)
    else:
        assert data is not None
        analysis = analyze_experiment(
            spec,
            _read(spec, data, variant_column),
            variant_column=variant_column,
            source=str(data),
            seed=seed,
        )
    if plot is not None:
        from promptyard.stats.plot import plot_analysis

        plot_analysis(analysis, plot)
    if fmt == "text":
        _print_analysis(analysis)
    else:
        from promptyard.stats.report import ANALYSIS_FORMATS

        emit(analysis, fmt, ANALYSIS_FORMATS)
    return 1 if analysis.srm.flagged else 0


# --- allocate ------------------------------------------------------------------------------


@experiment.command()
@click.argument("exp")
@_data_option
@_variant_option
@click.option(
    "--floor",
    type=float,
    default=5.0,
    show_default=True,
    help="Smallest weight (percent) any variant keeps, so no arm starves.",
)
@_seed_option
@click.option(
    "--draws",
    type=int,
    default=100_000,
    show_default=True,
    help="Monte Carlo draws for three or more variants (two are exact); more draws, more "
    "digits in the weights.",
)
@format_option("text", "json")
@click.pass_obj
def allocate(
    app: App,
    exp: str,
    data: Path,
    variant_column: str,
    floor: float,
    seed: int,
    draws: int,
    fmt: str,
) -> int:
    """Thompson-sampling traffic weights: the probability each variant is best."""
    from promptyard.stats.experiment import allocate_traffic

    spec = load_spec(app, exp)
    result = allocate_traffic(
        spec,
        _read(spec, data, variant_column),
        floor=floor,
        variant_column=variant_column,
        source=str(data),
        seed=seed,
        draws=draws,
    )
    if fmt == "json":
        emit(result)
        return 0
    console = stdout_console()
    console.print(
        f"[bold]{result.experiment}[/bold]: weights by P(best on {result.metric}, "
        f"{result.direction} is better), floor {result.floor:g}%"
    )
    # Only the digits the Monte Carlo error supports (all of them when exact).
    decimals = max(0, -math.floor(math.log10(result.resolution) + 1e-9))
    table = Table(box=None, pad_edge=False, padding=(0, 1))
    for column in ("variant", "units", "mean", "P(best)", "current", "suggested"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for v in result.variants:
        table.add_row(
            v.name,
            f"{v.units:,}",
            "—" if v.mean is None else f"{v.mean:.4g}",
            f"{v.prob_best * 100:.{decimals}f}%",
            f"{v.current_weight:g}%",
            f"[bold]{v.weight:.{decimals}f}%[/bold]",
        )
    console.print(table)
    if result.method == "exact":
        console.print("[dim]P(best) is exact for two variants[/dim]")
    else:
        console.print(
            f"[dim]P(best) from {result.draws:,} Monte Carlo draws (seed {result.seed}): "
            f"±{2 * result.standard_error:.2%} at most, so weights are shown to "
            f"{result.resolution:g}%; --draws adds digits[/dim]"
        )
    console.print("[dim]set these as the variants' `weight` to re-allocate traffic[/dim]")
    return 0
