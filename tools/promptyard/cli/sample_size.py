"""`promptyard sample-size proportion|mean|margin|paired|eval`: power analysis."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import click

from promptyard.cli.main import format_option, stdout_console
from promptyard.cli.output import emit
from promptyard.errors import ConfigError

if TYPE_CHECKING:  # the statistics load only when a command runs
    from promptyard.stats._base import Sided
    from promptyard.stats.power import ProportionMethod

TITLES = {
    "two-proportions": "Two proportions",
    "two-means": "Two means (t-test)",
    "paired-t": "Paired t-test",
    "one-sample-t": "One-sample t-test",
    "margin": "Margin of error of one proportion",
    "mcnemar": "McNemar's test on paired pass/fail",
    "eval": "Eval with repeats per case",
}
METHODS = {
    "pooled": "pooled z-test",
    "unpooled": "unpooled z-test",
    "cohen-h": "Cohen's h",
    "noncentral-t": "noncentral t",
    "normal": "normal approximation",
    "connor": "Connor 1987",
    "exact": "exact binomial test, power summed over discordant counts",
    "miller-2024": "Miller 2024, clustered by case",
}
UNIT_NAMES = {
    "paired-t": "pairs (cases)",
    "mcnemar": "pairs (cases)",
    "eval": "cases",
    "margin": "units",
    "one-sample-t": "units",
}


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options every sample-size subcommand takes."""
    options = [
        click.option(
            "--alpha", type=float, default=0.05, show_default=True, help="Significance level."
        ),
        click.option("--power", type=float, default=0.8, show_default=True, help="Target power."),
        click.option(
            "--alternative",
            type=click.Choice(["two-sided", "one-sided"]),
            default="two-sided",
            show_default=True,
            help="one-sided: the test looks only in the direction of the effect.",
        ),
        click.option(
            "--n",
            "n",
            type=float,
            help="Solve the inverse: the smallest effect this n (per arm) detects.",
        ),
        click.option(
            "--daily-traffic",
            type=float,
            help="Units per day over all arms: adds the duration in days.",
        ),
        format_option(),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


# Whole numbers up to this get thousands separators; beyond it, digits are noise.
LARGEST_GROUPED = 1e15


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "—"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) < LARGEST_GROUPED else f"{value:.6g}"
    if isinstance(value, float):
        if value.is_integer() and 1000 <= abs(value) < LARGEST_GROUPED:
            return f"{value:,.0f}"
        return f"{value:.6g}"
    return str(value)


def _percent(value: float) -> str:
    """A signed share as a percentage; absurd shares (tiny baselines) in scientific notation."""
    return f"{value:+.2%}" if abs(value) < 1e6 else f"{value * 100:+.3g}%"


def _rows(rows: list[tuple[str, str]]) -> list[str]:
    """Aligned `key  value` lines (no trailing spaces, so the output pastes cleanly)."""
    width = max((len(key) for key, _ in rows), default=0)
    return [f"  {key:<{width}}  {value}" for key, value in rows]


def _emit(result: Any, fmt: str) -> int:
    """Print a SampleSize or DetectableEffect as text or JSON."""
    from promptyard.stats.power import SampleSize

    if fmt == "json":
        emit(result)
        return 0
    console = stdout_console()
    title = TITLES.get(result.test, result.test)
    method = METHODS.get(result.method, result.method)
    console.print(f"[bold]{title}[/bold] · {method} · {result.alternative}")
    unit = UNIT_NAMES.get(result.test, "units")
    rows: list[tuple[str, str]] = []
    if isinstance(result, SampleSize):
        if result.n_treatment is not None:
            per_arm = (
                f"{result.n:,}"
                if result.n_treatment == result.n
                else f"{result.n:,} control, {result.n_treatment:,} treatment"
            )
            rows += [("n per arm", per_arm), ("total", f"{result.n_total:,}")]
        else:
            rows.append((unit, f"{result.n:,}"))
        # An exact test's n is searched, not rounded: n_exact is then its normal start.
        before = "normal approximation" if result.method == "exact" else "before rounding up"
        rows.append((before, f"{result.n_exact:,.4f}"))
        if result.achieved_power is not None:
            rows.append(("achieved power", f"{result.achieved_power:.4f}"))
        if result.days is not None:
            rows.append(
                ("duration", f"{result.days:,} days at {_number(result.daily_traffic)} units/day")
            )
    else:
        label = "margin (±)" if result.test == "margin" else "detectable effect"
        rows.append((label, f"{result.effect:.6g}"))
        if result.relative_effect is not None:
            rows.append(("relative to baseline", _percent(result.relative_effect)))
        if result.effect_size is not None:
            rows.append(("standardised effect", f"{result.effect_size:.4g}"))
        if result.n_treatment is not None:
            rows.append(("n per arm", f"{result.n:,} control, {result.n_treatment:,} treatment"))
        else:
            rows.append((unit, f"{result.n:,}"))
    echoed: dict[str, Any] = {"alpha": result.alpha, "power": result.power}
    if isinstance(result, SampleSize):
        echoed["effect"] = result.effect
        if result.effect_size is not None:
            echoed["effect size"] = result.effect_size
    echoed.update({k.replace("_", " "): v for k, v in result.assumptions.items()})
    assumptions = [(key, _number(value)) for key, value in echoed.items() if value is not None]
    lines = [*_rows(rows), "assumptions", *_rows(assumptions)]
    console.print("\n".join(lines), markup=False)
    return 0


@click.group("sample-size")
def sample_size() -> None:
    """How many units (or golden cases) a test needs, or what a given n can detect.

    Sample sizes are rounded up; the achieved power of the rounded n is shown.
    """


@sample_size.command()
@click.option("--baseline", type=float, required=True, help="Control rate, e.g. 0.10.")
@click.option("--mde", type=float, help="Absolute change to detect, e.g. 0.02 or -0.02.")
@click.option("--relative-mde", type=float, help="Change relative to the baseline, e.g. 0.1.")
@click.option(
    "--ratio", type=float, default=1.0, show_default=True, help="n_treatment / n_control."
)
@click.option(
    "--method",
    type=click.Choice(["pooled", "unpooled", "cohen-h"]),
    default="pooled",
    show_default=True,
)
@click.option(
    "--direction",
    type=click.Choice(["increase", "decrease"]),
    default="increase",
    show_default=True,
    help="With --n: the direction of the detectable change.",
)
@_common
def proportion(
    baseline: float,
    mde: float | None,
    relative_mde: float | None,
    ratio: float,
    method: ProportionMethod,
    direction: Literal["increase", "decrease"],
    alpha: float,
    power: float,
    alternative: Sided,
    n: float | None,
    daily_traffic: float | None,
    fmt: str,
) -> int:
    """Two proportions: an A/B test on a rate (conversion, pass rate)."""
    from promptyard.stats import power as p

    if n is not None:
        _no_effect_with_n(mde, relative_mde)
        result: Any = p.two_proportions_detectable_effect(
            baseline,
            n,
            alpha=alpha,
            power=power,
            ratio=ratio,
            alternative=alternative,
            method=method,
            direction=direction,
        )
    else:
        result = p.two_proportions_sample_size(
            baseline,
            mde=mde,
            relative_mde=relative_mde,
            alpha=alpha,
            power=power,
            ratio=ratio,
            alternative=alternative,
            method=method,
        ).with_traffic(daily_traffic)
    return _emit(result, fmt)


def _no_effect_with_n(*effects: float | None) -> None:
    if any(e is not None for e in effects):
        raise ConfigError("give either an effect (--mde, ...) or --n, not both")


@sample_size.command()
@click.option("--effect-size", type=float, help="Cohen's d (difference / sd).")
@click.option("--mde", type=float, help="Absolute difference of means (with --sd).")
@click.option("--relative-mde", type=float, help="Difference relative to --baseline (with --sd).")
@click.option("--sd", type=float, help="Standard deviation of the metric.")
@click.option("--baseline", type=float, help="Control mean (for --relative-mde).")
@click.option(
    "--ratio", type=float, default=1.0, show_default=True, help="n_treatment / n_control."
)
@_common
def mean(
    effect_size: float | None,
    mde: float | None,
    relative_mde: float | None,
    sd: float | None,
    baseline: float | None,
    ratio: float,
    alpha: float,
    power: float,
    alternative: Sided,
    n: float | None,
    daily_traffic: float | None,
    fmt: str,
) -> int:
    """Two means: an A/B test on a continuous metric (two-sample t-test)."""
    from promptyard.stats import power as p

    if n is not None:
        _no_effect_with_n(effect_size, mde, relative_mde)
        result: Any = p.two_means_detectable_effect(
            n,
            sd=sd,
            baseline=baseline,
            alpha=alpha,
            power=power,
            ratio=ratio,
            alternative=alternative,
        )
    else:
        result = p.two_means_sample_size(
            effect_size=effect_size,
            mde=mde,
            sd=sd,
            baseline=baseline,
            relative_mde=relative_mde,
            alpha=alpha,
            power=power,
            ratio=ratio,
            alternative=alternative,
        ).with_traffic(daily_traffic)
    return _emit(result, fmt)


@sample_size.command()
@click.option("--baseline", type=float, required=True, help="Expected proportion, e.g. 0.9.")
@click.option("--margin", type=float, help="Half-width of the interval, e.g. 0.01.")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--n", "n", type=float, help="Solve the inverse: the margin n units give.")
@click.option("--daily-traffic", type=float, help="Units per day: adds the duration in days.")
@format_option()
def margin(
    baseline: float,
    margin: float | None,
    confidence: float,
    n: float | None,
    daily_traffic: float | None,
    fmt: str,
) -> int:
    """Units to estimate one proportion within ± margin: n = z²p(1−p)/E²."""
    from promptyard.stats import power as p

    if n is not None:
        _no_effect_with_n(margin)
        result: Any = p.margin_of_error(baseline, n, confidence=confidence)
    elif margin is None:
        raise ConfigError("give --margin (the ± half-width, e.g. 0.01) or --n")
    else:
        result = p.margin_sample_size(baseline, margin, confidence=confidence).with_traffic(
            daily_traffic
        )
    return _emit(result, fmt)


@sample_size.command()
@click.option(
    "--discordant",
    type=float,
    help="Pass/fail: expected share of cases whose outcome differs between the two versions "
    "(McNemar).",
)
@click.option("--mde", type=float, help="Change to detect: in pass rate, or in mean score.")
@click.option("--sd", type=float, help="Scores: standard deviation of the per-case differences.")
@click.option("--effect-size", type=float, help="Scores: d_z = mean difference / sd.")
@_common
def paired(
    discordant: float | None,
    mde: float | None,
    sd: float | None,
    effect_size: float | None,
    alpha: float,
    power: float,
    alternative: Sided,
    n: float | None,
    daily_traffic: float | None,
    fmt: str,
) -> int:
    """Paired designs (base vs head on the same cases): McNemar or the paired t-test.

    Pass/fail outcomes: --discordant and --mde (McNemar). Scores: --sd and --mde, or
    --effect-size (paired t-test).
    """
    from promptyard.stats import power as p

    result: Any
    if discordant is not None:
        if sd is not None or effect_size is not None:
            raise ConfigError("--discordant (pass/fail) does not combine with --sd/--effect-size")
        if n is not None:
            _no_effect_with_n(mde)
            result = p.mcnemar_detectable_effect(
                discordant,
                n,
                alpha=alpha,
                power=power,
                alternative=alternative,
            )
        elif mde is None:
            raise ConfigError("McNemar needs --mde: the change in pass rate to detect, e.g. -0.05")
        else:
            result = p.mcnemar_sample_size(
                discordant,
                mde,
                alpha=alpha,
                power=power,
                alternative=alternative,
            ).with_traffic(daily_traffic)
    elif n is not None:
        _no_effect_with_n(mde, effect_size)
        result = p.paired_t_detectable_effect(
            n,
            sd=sd,
            alpha=alpha,
            power=power,
            alternative=alternative,
        )
    else:
        if sd is None and effect_size is None:
            raise ConfigError(
                "give --discordant with --mde (pass/fail), or --sd with --mde or --effect-size "
                "(scores)"
            )
        result = p.paired_t_sample_size(
            effect_size=effect_size,
            mde=mde,
            sd=sd,
            alpha=alpha,
            power=power,
            alternative=alternative,
        ).with_traffic(daily_traffic)
    return _emit(result, fmt)


@sample_size.command("eval")
@click.option("--mde", type=float, help="Change in mean score (or pass rate) to detect.")
@click.option(
    "--repeats", type=int, default=1, show_default=True, help="Samples per case per version."
)
@click.option(
    "--between-sd",
    type=float,
    help="sd across cases of the difference of the versions' expected case scores (ω).",
)
@click.option(
    "--within-sd",
    type=float,
    help="sd of one sample around its case's expected score (σ); default for pass/fail "
    "scores: √(p(1−p)) from --baseline.",
)
@click.option("--baseline", type=float, help="Pass/fail scores: the expected pass rate.")
@_common
def eval_(
    mde: float | None,
    repeats: int,
    between_sd: float | None,
    within_sd: float | None,
    baseline: float | None,
    alpha: float,
    power: float,
    alternative: Sided,
    n: float | None,
    daily_traffic: float | None,
    fmt: str,
) -> int:
    """Golden cases for an eval run K times per case (Miller 2024, "Adding Error Bars to Evals").

    n = (z_α + z_β)² (ω² + 2σ²/K) / δ²: repeats shrink the within-case noise σ²; the
    between-case spread ω only shrinks with more cases.
    """
    from promptyard.stats import power as p
    from promptyard.stats._base import check_probability

    if between_sd is None:
        raise ConfigError(
            "--between-sd is required: the sd across cases of (head − base) expected score",
            hint="estimate it from a pilot run with promptyard.stats.eval_variance_components",
        )
    if within_sd is None:
        if baseline is None:
            raise ConfigError("give --within-sd, or --baseline for pass/fail scores")
        check_probability("--baseline", baseline)
        within_sd = (baseline * (1 - baseline)) ** 0.5
    common: dict[str, Any] = {
        "between_sd": between_sd,
        "within_sd": within_sd,
        "repeats": repeats,
        "alpha": alpha,
        "power": power,
        "alternative": alternative,
    }
    result: Any
    if n is not None:
        _no_effect_with_n(mde)
        result = p.eval_detectable_effect(n, **common)
    elif mde is None:
        raise ConfigError("give --mde (the change in mean score to detect) or --n")
    else:
        result = p.eval_sample_size(mde, **common).with_traffic(daily_traffic)
    return _emit(result, fmt)
