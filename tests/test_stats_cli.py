"""`promptyard sample-size ...`: exit codes, JSON output and the echoed assumptions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from promptyard.cli.main import cli
from support.cli import assert_clean_error, assert_no_crash
from support.repo import PromptRepo, run_promptyard


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["sample-size", *args])


def as_json(*args: str) -> Any:
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def test_proportion_json_and_duration() -> None:
    data = as_json("proportion", "--baseline", "0.1", "--mde", "0.02", "--daily-traffic", "1000")
    assert (data["n"], data["n_treatment"], data["n_total"]) == (3841, 3841, 7682)
    assert data["days"] == 8
    assert data["n_exact"] == pytest.approx(3840.8475, rel=1e-4)
    assert data["assumptions"] == {
        "baseline": 0.1,
        "treatment_rate": pytest.approx(0.12),
        "relative_effect": pytest.approx(0.2),
        "ratio": 1.0,
    }
    assert (data["alpha"], data["power"], data["alternative"]) == (0.05, 0.8, "two-sided")
    relative = as_json("proportion", "--baseline", "0.1", "--relative-mde", "0.2")
    assert relative["n"] == 3841
    h = as_json("proportion", "--baseline", "0.1", "--mde", "0.02", "--method", "cohen-h")
    assert h["method"] == "cohen-h" and h["n"] == 3835


def test_proportion_text_echoes_assumptions() -> None:
    result = run("proportion", "--baseline", "0.1", "--mde", "-0.02", "--ratio", "2")
    assert result.exit_code == 0
    for needle in ("n per arm", "control", "treatment", "total", "baseline", "ratio", "alpha"):
        assert needle in result.stdout


def test_mean_reference_and_inverse() -> None:
    data = as_json("mean", "--effect-size", "0.5")
    assert data["n"] == 64 and data["n_exact"] == pytest.approx(63.7656, rel=1e-4)
    gpower = as_json("mean", "--effect-size", "0.5", "--power", "0.9")
    assert gpower["n"] == 86 and gpower["achieved_power"] == pytest.approx(0.9032, rel=1e-4)
    absolute = as_json("mean", "--mde", "5", "--sd", "10")
    assert absolute["n"] == 64 and absolute["effect"] == 5
    relative = as_json("mean", "--relative-mde", "0.05", "--baseline", "100", "--sd", "10")
    assert relative["n"] == 64
    inverse = as_json("mean", "--n", "64", "--sd", "10")
    assert inverse["effect"] == pytest.approx(10 * inverse["effect_size"])
    assert inverse["effect_size"] == pytest.approx(0.4991, abs=1e-3)


def test_margin_reference() -> None:
    data = as_json("margin", "--baseline", "0.9", "--margin", "0.01")
    assert data["n"] == 3458
    assert data["assumptions"]["confidence"] == 0.95
    inverse = as_json("margin", "--baseline", "0.9", "--n", "3458")
    assert inverse["effect"] <= 0.01


def test_paired_mcnemar_and_t() -> None:
    mcnemar = as_json(
        "paired", "--discordant", "0.1", "--mde", "-0.03", "--alternative", "one-sided"
    )
    # The exact test the gate runs needs 739 pairs (Connor's approximation: 685; see
    # test_stats_power's exact-enumeration reference).
    assert mcnemar["test"] == "mcnemar" and mcnemar["n"] == 739 and mcnemar["method"] == "exact"
    t = as_json("paired", "--sd", "0.2", "--mde", "-0.05")
    assert t["test"] == "paired-t" and t["effect_size"] == pytest.approx(-0.25)
    inverse = as_json("paired", "--discordant", "0.1", "--n", "739", "--alternative", "one-sided")
    assert inverse["effect"] == pytest.approx(0.03, rel=2e-3)


def test_eval_with_repeats() -> None:
    data = as_json(
        "eval", "--mde", "0.05", "--between-sd", "0.3", "--within-sd", "0.2", "--repeats", "3"
    )
    assert data["n"] == 367 and data["method"] == "miller-2024"
    assert data["assumptions"]["repeats"] == 3
    pass_fail = as_json("eval", "--mde", "0.05", "--between-sd", "0.2", "--baseline", "0.8")
    assert pass_fail["assumptions"]["within_sd"] == pytest.approx(0.4)
    text = run("eval", "--mde", "0.05", "--between-sd", "0.3", "--within-sd", "0.2")
    assert text.exit_code == 0 and "cases" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["proportion", "--baseline", "1.2", "--mde", "0.1"], "between 0 and 1"),
        (["proportion", "--baseline", "0.95", "--mde", "0.1"], "outside (0, 1)"),
        (["proportion", "--baseline", "0.1", "--mde", "0.02", "--alpha", "1.5"], "alpha"),
        (["proportion", "--baseline", "0.1", "--mde", "0.02", "--power", "0"], "power"),
        (["proportion", "--baseline", "0.1"], "exactly one"),
        (["proportion", "--baseline", "0.1", "--mde", "0.02", "--n", "100"], "not both"),
        (["mean", "--mde", "1"], "standard deviation"),
        (["mean", "--mde", "1", "--sd", "-2"], "sd must be a positive"),
        (["margin", "--baseline", "0.9"], "--margin"),
        (["paired", "--discordant", "0.02", "--mde", "-0.05"], "discordant"),
        (["paired", "--mde", "-0.05"], "--discordant"),
        (["eval", "--mde", "0.05", "--within-sd", "0.2"], "--between-sd"),
        (["eval", "--mde", "0.05", "--between-sd", "0.2", "--baseline", "2"], "--baseline"),
        (
            [
                "eval",
                "--mde",
                "0.05",
                "--between-sd",
                "0.2",
                "--within-sd",
                "0.1",
                "--repeats",
                "0",
            ],
            "repeats",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert 1 <= len(result.stderr.strip().splitlines()) <= 2


def test_bad_flag_is_usage_error() -> None:
    result = run("proportion", "--baseline", "abc", "--mde", "0.1")
    assert result.exit_code == 2


def test_console_script_end_to_end() -> None:
    # The real entry point in a subprocess: exit codes, JSON on stdout, one-line errors.
    entry = [sys.executable, "-c", "from promptyard.cli.main import main; main()"]
    ok = subprocess.run(
        [*entry, "sample-size", "mean", "--effect-size", "0.5", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["n"] == 64
    bad = subprocess.run(
        [*entry, "sample-size", "proportion", "--baseline", "0", "--mde", "0.1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: baseline rate must be between 0 and 1")


def test_absurd_daily_traffic_exits_2_instead_of_printing_a_300_digit_duration() -> None:
    result = run("proportion", "--baseline", "0.1", "--mde", "0.02", "--daily-traffic", "1e-300")
    assert result.exit_code == 2, result.output
    assert "1e-300 units per day" in result.stderr and "100 years" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    slow = run("proportion", "--baseline", "0.1", "--mde", "0.02", "--daily-traffic", "100")
    assert slow.exit_code == 0 and "77 days at 100 units/day" in slow.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["mean", "--effect-size", "1e300"],
        ["proportion", "--baseline", "1e-300", "--mde", "0.02"],
        ["proportion", "--baseline", "1e-300", "--n", "1000"],
        ["mean", "--mde", "1e300", "--sd", "1"],
    ],
)
def test_huge_numbers_print_in_scientific_notation(args: list[str]) -> None:
    # Valid answers, but `{:,}` of 1e300 is 400 characters of digits and commas.
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) < 80, result.stdout
    assert "e+" in result.stdout


def test_extreme_numbers_name_what_is_out_of_range() -> None:
    ratio = run("proportion", "--baseline", "0.1", "--mde", "0.02", "--ratio", "1e308")
    assert ratio.exit_code == 2 and "ratio (n_treatment / n_control) must be between" in (
        ratio.stderr
    )
    n = run("proportion", "--baseline", "0.1", "--n", "1e308")
    assert n.exit_code == 2 and "n must be between 1 and 1e+10 units, got 1e+308" in n.stderr
    tiny = run("mean", "--effect-size", "1e-300")
    assert tiny.exit_code == 2 and "too small to detect" in tiny.stderr
    assert "plan for a larger effect" in tiny.stderr
    margin = run("margin", "--baseline", "0.5", "--margin", "1e-300")
    assert margin.exit_code == 2 and "allow a wider margin" in margin.stderr


# --- extreme numbers and wrong experiments, through the real CLI ---------------------------------


# Each of these ends in "internal error: ..." with exit 3 today.
EXTREME = {
    "proportion-tiny-mde": ["proportion", "--baseline", "0.1", "--mde", "1e-300"],  # ZeroDivision
    "proportion-huge-ratio": [
        "proportion",
        "--baseline",
        "0.1",
        "--mde",
        "0.02",
        "--ratio",
        "1e308",
    ],
    "proportion-huge-n": ["proportion", "--baseline", "0.1", "--n", "1e308"],  # brentq signs
    "mean-tiny-effect": ["mean", "--effect-size", "1e-300"],  # OverflowError
    "mean-huge-ratio": ["mean", "--effect-size", "0.5", "--ratio", "1e308"],  # NaN in solver
    "mean-huge-n": ["mean", "--n", "1e308", "--sd", "1"],
    "margin-tiny": ["margin", "--baseline", "0.5", "--margin", "1e-300"],  # ZeroDivision
    "paired-tiny-mde": ["paired", "--discordant", "0.1", "--mde", "1e-300"],
    "paired-tiny-effect": ["paired", "--effect-size", "1e-300"],
    "paired-huge-n": ["paired", "--n", "1e308", "--discordant", "0.1"],
    "eval-tiny-mde": ["eval", "--mde", "1e-300", "--between-sd", "0.1", "--baseline", "0.5"],
}


@pytest.mark.parametrize("args", EXTREME.values(), ids=EXTREME.keys())
def test_sample_size_with_extreme_numbers_does_not_crash(tmp_path: Path, args: list[str]) -> None:
    # An answer (exit 0) or "too small/large to plan" (exit 2, one or two lines): either is
    # fine; a ZeroDivisionError/OverflowError/solver ValueError reported as a crash is not.
    result = run_promptyard(tmp_path, "sample-size", *args)
    assert_no_crash(result)
    if result.exit_code != 0:
        assert_clean_error(result, 2)


EXPERIMENT = """\
name: exp1
variants:
  - {name: control, prompt: summarize@1.0.0, model: gpt-4o-mini, weight: 50}
  - {name: big, prompt: summarize@1.0.0, model: gpt-4o, weight: 50}
control: control
assignment: {unit: user_id, salt: exp1}
metrics:
  - {name: resolved, type: binary, direction: increase, baseline: 0.62, mde: 0.03}
primary: resolved
guardrails: []
alpha: 0.05
power: 0.8
daily_traffic: 1200
sequential: false
decision: {rule: primary-and-guardrails}
"""


@pytest.fixture
def experiment(scaffolded: PromptRepo, tmp_path: Path) -> Path:
    """experiments/exp1.yaml in the scaffold, and a CSV of 400 units."""
    scaffolded.write("experiments/exp1.yaml", EXPERIMENT)
    rows = ["user_id,variant,resolved"]
    rows += [f"u{i},{'control' if i % 2 else 'big'},{int(i % 3 == 0)}" for i in range(400)]
    data = tmp_path / "data.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert scaffolded.run("lint", "experiments/exp1.yaml").exit_code == 0
    return data


def test_experiment_allocate_rejects_a_negative_seed(
    scaffolded: PromptRepo, experiment: Path
) -> None:
    # "internal error: ValueError: expected non-negative integer" today.
    result = scaffolded.run(
        "experiment", "allocate", "exp1", "--data", str(experiment), "--seed", "-1"
    )
    assert_clean_error(result, 2, "--seed")


def test_experiment_analyze_reports_a_plot_it_cannot_write(
    scaffolded: PromptRepo, experiment: Path, tmp_path: Path
) -> None:
    # Exit 0 and no word about the plot that was asked for and never written.
    target = tmp_path / "missing-folder" / "plot.png"
    result = scaffolded.run(
        "experiment", "analyze", "exp1", "--data", str(experiment), "--plot", str(target)
    )
    assert result.exit_code == 2, result.describe()
    assert str(target) in result.stderr, result.describe()


def test_experiment_plan_error_names_the_experiment_file(
    scaffolded: PromptRepo, experiment: Path
) -> None:
    # "error: the effect is too small to detect: more than 1e+10 units would be needed" names
    # neither experiments/exp1.yaml nor the metric whose mde to change.
    scaffolded.replace("experiments/exp1.yaml", "mde: 0.03", "mde: 1e-12")
    result = scaffolded.run("experiment", "plan", "exp1")
    assert_clean_error(result, 2, "experiments/exp1.yaml", "resolved")
