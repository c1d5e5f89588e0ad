"""Audit: `sample-size` and `experiment` with extreme or wrong values, through the real CLI.
Any number a user can type must give a result or exit 2 with a message — never a crash.
"""

# The fixtures are imported from support.audit, so pytest sees them here; ruff would
# report each use as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

from pathlib import Path

import pytest

from support.audit import (  # noqa: F401
    Project,
    assert_clean_error,
    assert_no_crash,
    project,
    run_cli,
    scaffold,
)

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
    result = run_cli(tmp_path, "sample-size", *args)
    assert_no_crash(result)
    if result.code != 0:
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
def experiment(project: Project, tmp_path: Path) -> Path:
    """experiments/exp1.yaml in the scaffold, and a CSV of 400 units."""
    project.write("experiments/exp1.yaml", EXPERIMENT)
    rows = ["user_id,variant,resolved"]
    rows += [f"u{i},{'control' if i % 2 else 'big'},{int(i % 3 == 0)}" for i in range(400)]
    data = tmp_path / "data.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert project.run("lint", "experiments/exp1.yaml").code == 0
    return data


def test_experiment_allocate_rejects_a_negative_seed(project: Project, experiment: Path) -> None:
    # "internal error: ValueError: expected non-negative integer" today.
    result = project.run(
        "experiment", "allocate", "exp1", "--data", str(experiment), "--seed", "-1"
    )
    assert_clean_error(result, 2, "--seed")


def test_experiment_analyze_reports_a_plot_it_cannot_write(
    project: Project, experiment: Path, tmp_path: Path
) -> None:
    # Exit 0 and no word about the plot that was asked for and never written.
    target = tmp_path / "missing-folder" / "plot.png"
    result = project.run(
        "experiment", "analyze", "exp1", "--data", str(experiment), "--plot", str(target)
    )
    assert result.code == 2, result.describe()
    assert str(target) in result.stderr, result.describe()


def test_experiment_plan_error_names_the_experiment_file(
    project: Project, experiment: Path
) -> None:
    # "error: the effect is too small to detect: more than 1e+10 units would be needed" names
    # neither experiments/exp1.yaml nor the metric whose mde to change.
    project.replace("experiments/exp1.yaml", "mde: 0.03", "mde: 1e-12")
    result = project.run("experiment", "plan", "exp1")
    assert_clean_error(result, 2, "experiments/exp1.yaml", "resolved")
