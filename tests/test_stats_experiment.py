"""`promptyard experiment plan|analyze|allocate` on real files in a temporary repository."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from promptyard.assignment import assign
from promptyard.cli.main import cli
from promptyard.spec import ExperimentSpec
from promptyard.stats.power import two_means_sample_size, two_proportions_sample_size
from support.stats_experiments import experiment, simulate, write_repo

WINNING = {
    "control": {"resolved": 0.30, "handle_time": 300, "escalated": 0.10},
    "friendly": {"resolved": 0.35, "handle_time": 285, "escalated": 0.10},
}


def run(repo: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--repo", str(repo), *args])


def json_of(result: Result) -> Any:
    assert result.exit_code in (0, 1), result.output + result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def winning(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository and the same winning data as CSV, JSONL and Parquet."""
    root = write_repo(tmp_path_factory.mktemp("repo"))
    frame = simulate(experiment(), 12_000, rates=WINNING)
    frame.to_csv(root / "data.csv", index=False)
    frame.to_json(root / "data.jsonl", orient="records", lines=True)
    frame.to_parquet(root / "data.parquet")
    return root


# --- assignment --------------------------------------------------------------------------------


def test_assign_formula_is_reproducible() -> None:
    spec = ExperimentSpec.model_validate(experiment())
    for unit in ("u000001", "42", "ünïcode"):
        digest = hashlib.sha256(f"reply-tone-2024:{unit}".encode()).hexdigest()
        bucket = int(digest[:8], 16) % 10000
        assert assign(unit, spec) == ("control" if bucket < 5000 else "friendly")
    shares = Counter(assign(f"user-{i}", spec) for i in range(20_000))
    assert abs(shares["control"] / 20_000 - 0.5) < 0.015
    uneven = ExperimentSpec.model_validate(
        experiment(
            variants=[
                {"name": "control", "prompt": "p@1.0.0", "weight": 80},
                {"name": "b", "prompt": "p@1.1.0", "weight": 15},
                {"name": "c", "prompt": "p@1.2.0", "weight": 5},
            ]
        )
    )
    counts = Counter(assign(f"user-{i}", uneven) for i in range(20_000))
    assert counts["b"] / 20_000 == pytest.approx(0.15, abs=0.01)
    assert counts["c"] / 20_000 == pytest.approx(0.05, abs=0.01)


# --- plan ---------------------------------------------------------------------------------------


def test_plan_each_family_at_its_own_level(tmp_path: Path) -> None:
    repo = write_repo(tmp_path)
    result = run(repo, "experiment", "plan", "reply-tone", "--format", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    # One treatment: the primary alone is the decision family, handle_time the secondary
    # one, and the guardrail is tested one-sided for harm, not adjusted.
    assert (plan["comparisons"], plan["secondary_comparisons"]) == (1, 1)
    assert plan["guardrail_comparisons"] == 1
    resolved = two_proportions_sample_size(0.30, mde=0.03, alpha=0.05, power=0.8)
    handle = two_means_sample_size(mde=-15, sd=120, alpha=0.05, power=0.8)
    # escalated: lower is better, so the harm to detect is an increase of 2 points.
    escalated = two_proportions_sample_size(
        0.10, mde=0.02, alpha=0.05, power=0.8, alternative="one-sided"
    )
    rows = {row["metric"]: row for row in plan["metrics"]}
    assert rows["resolved"]["family"] == "decision"
    assert rows["resolved"]["sample_size"]["n"] == resolved.n
    assert rows["handle_time"]["family"] == "secondary"
    assert rows["handle_time"]["sample_size"]["n"] == handle.n
    harm = rows["escalated"]
    assert (harm["family"], harm["alpha"], harm["alternative"]) == ("guardrail", 0.05, "one-sided")
    assert harm["sample_size"]["n"] == escalated.n
    assert harm["sample_size"]["effect"] == pytest.approx(0.02)
    needed = max(resolved.n, handle.n, escalated.n)
    assert plan["per_variant"] == {"control": needed, "friendly": needed}
    assert plan["total"] == 2 * needed
    assert plan["binding_metric"] == "resolved"
    assert plan["min_samples_sufficient"] is False
    assert plan["days"] == math.ceil(2 * needed / 2000)
    text = run(repo, "experiment", "plan", "reply-tone")
    assert text.exit_code == 0
    assert f"{needed:,}" in text.stdout and "too few" in text.stdout
    assert "Holm-adjusted over 1 comparison(s)" in text.stdout
    assert "harm (guardrails): one-sided" in text.stdout and "not adjusted" in text.stdout
    row = next(line for line in text.stdout.splitlines() if line.startswith("escalated"))
    assert row.split()[:3] == ["escalated", "guardrail", "harm"] and "+2.00 pp" in row
    assert f"{escalated.n:,}" in row


def test_plan_holm_covers_decision_metrics_only(tmp_path: Path) -> None:
    # Three variants, k-of-n on two metrics plus a guardrail: Holm divides alpha among the
    # 2 metrics × 2 treatments; the guardrail keeps the full alpha, one-sided.
    spec = experiment(
        variants=[
            {"name": "control", "prompt": "support-reply@2.1.0", "weight": 50},
            {"name": "friendly", "prompt": "support-reply@2.2.0", "weight": 25},
            {"name": "brief", "prompt": "support-reply@2.3.0", "weight": 25},
        ],
        decision={"rule": "k-of-n", "k": 1, "metrics": ["resolved", "handle_time"]},
    )
    plan = json_of(
        run(write_repo(tmp_path, spec), "experiment", "plan", "reply-tone", "--format", "json")
    )
    assert (plan["comparisons"], plan["secondary_comparisons"]) == (4, 0)
    assert plan["guardrail_comparisons"] == 2
    for row in plan["metrics"]:
        assert row["treatment"] in ("friendly", "brief")
        if row["metric"] == "escalated":
            assert row["alpha"] == 0.05 and row["alternative"] == "one-sided"
            expected = two_proportions_sample_size(
                0.10, mde=0.02, alpha=0.05, ratio=0.5, alternative="one-sided"
            )
        else:
            assert row["alpha"] == pytest.approx(0.05 / 4) and row["family"] == "decision"
            expected = (
                two_proportions_sample_size(0.30, mde=0.03, alpha=0.0125, ratio=0.5)
                if row["metric"] == "resolved"
                else two_means_sample_size(mde=-15, sd=120, alpha=0.0125, ratio=0.5)
            )
        assert row["sample_size"]["n"] == expected.n
        assert row["sample_size"]["n_treatment"] == expected.n_treatment


def test_plan_a_guardrail_that_decides_has_both_tests(tmp_path: Path) -> None:
    # k-of-n over every metric: escalated is a decision metric and a guardrail.
    spec = experiment(decision={"rule": "k-of-n", "k": 2})
    plan = json_of(
        run(write_repo(tmp_path, spec), "experiment", "plan", "reply-tone", "--format", "json")
    )
    assert plan["comparisons"] == 3 and plan["guardrail_comparisons"] == 1
    tests = [(r["metric"], r["family"], r["alpha"]) for r in plan["metrics"]]
    assert tests == [
        ("resolved", "decision", pytest.approx(0.05 / 3)),
        ("handle_time", "decision", pytest.approx(0.05 / 3)),
        ("escalated", "decision", pytest.approx(0.05 / 3)),
        ("escalated", "guardrail", 0.05),
    ]
    better, harm = plan["metrics"][2:]
    assert better["sample_size"]["effect"] == pytest.approx(-0.02)  # lower is better
    assert harm["sample_size"]["effect"] == pytest.approx(0.02)  # the harm: higher


def test_plan_impossible_harm_names_the_guardrail_test(tmp_path: Path) -> None:
    # Higher is better from a 3% baseline: a harm of 5 points would go below zero.
    spec = experiment(
        metrics=[
            *experiment()["metrics"][:2],
            {
                "name": "kept",
                "type": "binary",
                "direction": "increase",
                "baseline": 0.03,
                "mde": 0.05,
            },
        ],
        guardrails=["kept"],
    )
    result = run(write_repo(tmp_path, spec), "experiment", "plan", "reply-tone")
    assert result.exit_code == 2, result.output
    assert "metric 'kept' (guardrail harm test, friendly vs control at alpha 0.05 one-sided)" in (
        result.stderr
    )
    assert "outside (0, 1)" in result.stderr and "Traceback" not in result.output


def test_plan_unequal_weights_scales_total(tmp_path: Path) -> None:
    spec = experiment(
        variants=[
            {"name": "control", "prompt": "support-reply@2.1.0", "weight": 80},
            {"name": "friendly", "prompt": "support-reply@2.2.0", "weight": 20},
        ],
        metrics=[experiment()["metrics"][0]],
        guardrails=[],
        min_samples=100_000,
    )
    plan = json_of(
        run(write_repo(tmp_path, spec), "experiment", "plan", "reply-tone", "--format", "json")
    )
    size = two_proportions_sample_size(0.30, mde=0.03, ratio=0.25)
    assert plan["per_variant"]["friendly"] >= size.n_treatment
    assert plan["per_variant"]["control"] >= size.n
    assert plan["min_samples_sufficient"] is True


@pytest.mark.parametrize("weights", [(33, 33, 34), (80, 15, 5), (50, 50), (45, 30, 25)])
def test_plan_total_is_the_sum_of_its_arms(tmp_path: Path, weights: tuple[int, ...]) -> None:
    # Issue 21.5: 33/33/34 printed a total of 13,810 over arms summing to 13,812.
    variants = [
        {"name": name, "prompt": f"support-reply@2.{i}.0", "weight": weight}
        for i, (name, weight) in enumerate(zip(("control", "b", "c"), weights, strict=False))
    ]
    repo = write_repo(tmp_path, experiment(variants=variants))
    plan = json_of(run(repo, "experiment", "plan", "reply-tone", "--format", "json"))
    assert plan["total"] == sum(plan["per_variant"].values())
    for row in plan["metrics"]:  # every arm still gets what each test needs
        assert plan["per_variant"]["control"] >= row["sample_size"]["n"]
        assert plan["per_variant"][row["treatment"]] >= row["sample_size"]["n_treatment"]
    text = run(repo, "experiment", "plan", "reply-tone").stdout
    assert f"total units: {plan['total']:,}" in text


def test_plan_continuous_metric_without_sd_is_exit_2(tmp_path: Path) -> None:
    metrics = experiment()["metrics"]
    metrics = [metrics[0], {**metrics[1], "sd": None}, metrics[2]]
    spec = experiment(metrics=[{k: v for k, v in m.items() if v is not None} for m in metrics])
    result = run(write_repo(tmp_path, spec), "experiment", "plan", "reply-tone")
    assert result.exit_code == 2
    assert "handle_time" in result.stderr and "sd" in result.stderr
    assert "Traceback" not in result.output


# --- analyze ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["data.csv", "data.jsonl", "data.parquet"])
def test_analyze_every_format_ships_the_winner(winning: Path, name: str) -> None:
    result = run(
        winning,
        "experiment",
        "analyze",
        "reply-tone",
        "--data",
        str(winning / name),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output + result.stderr
    analysis = json.loads(result.stdout)
    assert analysis["srm"]["flagged"] is False
    assert analysis["decision"]["action"] == "ship"
    assert analysis["decision"]["variant"] == "friendly"
    assert analysis["assignment"]["mismatched"] == 0
    resolved = next(m for m in analysis["metrics"] if m["metric"] == "resolved")
    assert resolved["outcome"] == "better" and resolved["role"] == "primary"
    assert resolved["p_adjusted"] >= resolved["p_value"]
    assert resolved["prob_better"] > 0.99
    assert resolved["ci_low"] < resolved["difference"] < resolved["ci_high"]
    assert resolved["sequential"] is None  # not a sequential experiment
    handle = next(m for m in analysis["metrics"] if m["metric"] == "handle_time")
    assert handle["test"] == "welch-t" and handle["outcome"] == "better"  # lower is better
    escalated = next(m for m in analysis["metrics"] if m["metric"] == "escalated")
    assert escalated["role"] == "guardrail"


def test_analyze_formats_agree(winning: Path) -> None:
    outputs = [
        json_of(
            run(
                winning,
                "experiment",
                "analyze",
                "reply-tone",
                "--data",
                str(winning / n),
                "--format",
                "json",
            )
        )
        for n in ("data.csv", "data.jsonl", "data.parquet")
    ]
    first = outputs[0]
    for other in outputs[1:]:
        assert other["decision"] == first["decision"]
        for a, b in zip(first["metrics"], other["metrics"], strict=True):
            assert (a["metric"], a["outcome"], a["control_n"]) == (
                b["metric"],
                b["outcome"],
                b["control_n"],
            )
            # CSV stores floats as text: equal to the last few bits.
            assert a["difference"] == pytest.approx(b["difference"], rel=1e-9)
            assert a["p_value"] == pytest.approx(b["p_value"], rel=1e-6)


def test_analyze_text_markdown_and_plot(winning: Path, tmp_path: Path) -> None:
    plot = tmp_path / "out" / "intervals.png"
    plot.parent.mkdir()  # --plot writes into an existing folder (a missing one is an error)
    text = run(
        winning,
        "experiment",
        "analyze",
        "reply-tone",
        "--data",
        str(winning / "data.csv"),
        "--plot",
        str(plot),
    )
    assert text.exit_code == 0, text.output + text.stderr
    assert text.stdout.startswith("sample ratio ok")
    assert "decision: ship friendly" in text.stdout
    assert "no guardrail is significantly worse" in text.stdout
    assert "decision (the metrics that can ship a variant): two-sided, Holm-adjusted" in text.stdout
    assert "harm (guardrails): one-sided, in the harmful direction, at alpha 0.05" in text.stdout
    assert "harm p" in text.stdout and "(one-sided, not adjusted)" in text.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(plot.parent.glob(".*tmp"))  # written atomically
    markdown = run(
        winning,
        "experiment",
        "analyze",
        "reply-tone",
        "--data",
        str(winning / "data.csv"),
        "--format",
        "markdown",
    )
    assert markdown.exit_code == 0
    assert "## Experiment `reply-tone`: ship friendly" in markdown.stdout
    assert "| resolved | primary | friendly |" in markdown.stdout
    assert "| p (Holm) | harm p (one-sided) |" in markdown.stdout
    escalated = next(
        line for line in markdown.stdout.splitlines() if line.startswith("| escalated |")
    )
    cells = [cell.strip() for cell in escalated.split("|")]
    assert cells[9] == "—" and cells[10] != "—"  # not Holm-adjusted; its harm p-value
    assert "- harm (guardrails): one-sided" in markdown.stdout
    bad_plot = run(
        winning,
        "experiment",
        "analyze",
        "reply-tone",
        "--data",
        str(winning / "data.csv"),
        "--plot",
        str(tmp_path / "x.svg"),
    )
    assert bad_plot.exit_code == 2 and "PNG" in bad_plot.stderr


def test_srm_failure_is_shown_first_and_exits_1(tmp_path: Path) -> None:
    repo = write_repo(tmp_path)
    frame = simulate(experiment(), 10_000, rates=WINNING)
    friendly = frame.index[frame["variant"] == "friendly"]
    frame = frame.drop(friendly[: len(friendly) // 10])  # lose 10% of one arm's logs
    frame.to_csv(repo / "data.csv", index=False)
    args = ("experiment", "analyze", "reply-tone", "--data", str(repo / "data.csv"))
    text = run(repo, *args)
    assert text.exit_code == 1
    first = text.stdout.strip().splitlines()[:3]
    assert any("SAMPLE RATIO MISMATCH" in line for line in first)
    assert text.stdout.index("SAMPLE RATIO MISMATCH") < text.stdout.index("resolved")
    markdown = run(repo, *args, "--format", "markdown")
    assert markdown.exit_code == 1
    assert markdown.stdout.index("Sample ratio mismatch") < markdown.stdout.index("### Metrics")
    data = json_of(run(repo, *args, "--format", "json"))
    assert data["srm"]["flagged"] is True and data["srm"]["p_value"] < 0.001
    assert data["decision"]["action"] == "invalid"


def test_assignment_mismatches_are_counted(tmp_path: Path) -> None:
    repo = write_repo(tmp_path)
    frame = simulate(experiment(), 4000, rates=WINNING)
    flip = frame.index[:7]
    frame.loc[flip, "variant"] = np.where(
        frame.loc[flip, "variant"] == "control", "friendly", "control"
    )
    frame.to_csv(repo / "data.csv", index=False)
    data = json_of(
        run(
            repo,
            "experiment",
            "analyze",
            "reply-tone",
            "--data",
            str(repo / "data.csv"),
            "--format",
            "json",
        )
    )
    assert data["assignment"]["mismatched"] == 7
    assert sum(data["assignment"]["by_variant"].values()) == 7
    assert any("assign()" in w for w in data["warnings"])


def _analysis(
    tmp_path: Path, spec: dict[str, Any], rates: dict[str, Any], n: int = 12_000, seed: int = 1
) -> Any:
    repo = write_repo(tmp_path, spec)
    simulate(spec, n, rates=rates, seed=seed).to_csv(repo / "data.csv", index=False)
    result = run(
        repo,
        "experiment",
        "analyze",
        spec["name"],
        "--data",
        str(repo / "data.csv"),
        "--format",
        "json",
    )
    return json_of(result)


def test_guardrail_worse_keeps_control(tmp_path: Path) -> None:
    rates = {
        "control": {"resolved": 0.30, "escalated": 0.10},
        "friendly": {"resolved": 0.35, "escalated": 0.16},
    }
    data = _analysis(tmp_path, experiment(), rates)
    assert data["decision"]["action"] == "keep-control"
    assert "escalated" in data["decision"]["reason"]


def test_nothing_significant_continues(tmp_path: Path) -> None:
    rates = {"control": {}, "friendly": {}}
    # No effect at all. (With seed 1 the guardrail looks harmed by chance, p ≈ 0.02
    # one-sided: an unadjusted guardrail test blocks about 5% of harmless variants.)
    data = _analysis(tmp_path, experiment(), rates, n=3000, seed=3)
    assert all(m["outcome"] == "inconclusive" for m in data["metrics"])
    assert data["decision"]["action"] == "continue"
    assert "not significant" in data["decision"]["reason"]


def test_min_samples_not_reached_continues(tmp_path: Path) -> None:
    data = _analysis(tmp_path, experiment(min_samples=50_000), WINNING)
    assert data["decision"]["action"] == "continue"
    assert data["decision"]["variant"] == "friendly"
    assert "min_samples" in data["decision"]["reason"]


def test_k_of_n_decision(tmp_path: Path) -> None:
    spec = experiment(decision={"rule": "k-of-n", "k": 2, "metrics": ["resolved", "handle_time"]})
    data = _analysis(tmp_path, spec, WINNING)
    assert data["decision"]["action"] == "ship"
    assert "2 of 2 metrics" in data["decision"]["reason"]


HARMFUL = {
    "control": {"resolved": 0.30, "handle_time": 300, "escalated": 0.10},
    "friendly": {"resolved": 0.35, "handle_time": 285, "escalated": 0.16},
}


def test_k_of_n_guardrail_worse_blocks_shipping(tmp_path: Path) -> None:
    # Both decision metrics are better, but the guardrail (not one of the k-of-n metrics)
    # is clearly worse: shipping is blocked, and the reason says so.
    spec = experiment(decision={"rule": "k-of-n", "k": 2, "metrics": ["resolved", "handle_time"]})
    data = _analysis(tmp_path, spec, HARMFUL)
    outcomes = {m["metric"]: m["outcome"] for m in data["metrics"]}
    assert outcomes == {"resolved": "better", "handle_time": "better", "escalated": "worse"}
    decision = data["decision"]
    assert decision["action"] == "keep-control" and decision["variant"] == "control"
    assert "guardrail escalated" in decision["reason"]
    assert "one-sided, not adjusted" in decision["reason"]
    assert "blocks shipping" in decision["reason"]


def _exact_rates(frame: pd.DataFrame, metric: str, ones: dict[str, int]) -> pd.DataFrame:
    """`frame` with exactly `ones[variant]` ones in the binary `metric` of each variant."""
    frame = frame.copy()
    rng = np.random.default_rng(3)
    for variant, count in ones.items():
        rows = frame.index[frame["variant"] == variant].to_numpy()
        values = np.zeros(rows.size, dtype=int)
        values[rng.choice(rows.size, size=count, replace=False)] = 1
        frame.loc[rows, metric] = values
    return frame


def _one_sided_z(c: tuple[int, int], t: tuple[int, int]) -> float:
    """P(Z ≥ z) of the pooled two-proportion z: the treatment's rate is higher."""
    from scipy import stats

    pooled = (c[0] + t[0]) / (c[1] + t[1])
    se = math.sqrt(pooled * (1 - pooled) * (1 / c[1] + 1 / t[1]))
    return float(stats.norm.sf((t[0] / t[1] - c[0] / c[1]) / se))


def test_guardrail_harm_is_one_sided_and_not_adjusted() -> None:
    from promptyard.stats.experiment import analyze_experiment
    from promptyard.stats.multiple import holm

    spec = ExperimentSpec.model_validate(experiment())
    frame = simulate(experiment(), 12_000, rates=WINNING)
    arms = frame["variant"].value_counts()
    # escalated: 10.0% in control, ~11.1% with friendly — borderline harm.
    ones = {"control": round(0.100 * arms["control"]), "friendly": round(0.111 * arms["friendly"])}
    frame = _exact_rates(frame, "escalated", ones)
    analysis = analyze_experiment(spec, frame)
    escalated = analysis.result("escalated", "friendly")
    expected = _one_sided_z(
        (ones["control"], int(arms["control"])), (ones["friendly"], int(arms["friendly"]))
    )
    assert escalated.family == "guardrail" and escalated.p_adjusted is None
    assert escalated.harm_p_value == pytest.approx(expected, rel=1e-9)
    assert escalated.harm_p_value < 0.05 and escalated.outcome == "worse"
    # Adjusted with the other metrics, as before, the same harm would have gone unseen.
    two_sided = [r.p_value for r in analysis.metrics]
    assert holm(two_sided)[2] > 0.05
    # The primary and the secondary metric are each a family of one: no adjustment.
    resolved = analysis.result("resolved", "friendly")
    handle = analysis.result("handle_time", "friendly")
    assert (resolved.family, handle.family) == ("decision", "secondary")
    assert resolved.p_adjusted == resolved.p_value and handle.p_adjusted == handle.p_value
    assert resolved.harm_p_value is None and handle.harm_p_value is None
    assert analysis.decision.action == "keep-control"
    assert analysis.decision.reason.startswith("keep control: friendly: guardrail escalated +")
    # A guardrail that is better is not "worse", and never "better" either (one-sided).
    ones = {"control": ones["control"], "friendly": round(0.06 * arms["friendly"])}
    better = analyze_experiment(spec, _exact_rates(frame, "escalated", ones))
    improved = better.result("escalated", "friendly")
    assert improved.harm_p_value > 0.99 and improved.outcome == "inconclusive"
    assert better.decision.action == "ship"
    assert "no guardrail is significantly worse" in better.decision.reason


def test_holm_families_with_two_treatments() -> None:
    from promptyard.stats.experiment import analyze_experiment
    from promptyard.stats.multiple import holm

    data = experiment(
        variants=[
            {"name": "control", "prompt": "support-reply@2.1.0", "weight": 40},
            {"name": "friendly", "prompt": "support-reply@2.2.0", "weight": 30},
            {"name": "brief", "prompt": "support-reply@2.3.0", "weight": 30},
        ]
    )
    rates = {**WINNING, "brief": {"resolved": 0.32, "handle_time": 290, "escalated": 0.11}}
    analysis = analyze_experiment(
        ExperimentSpec.model_validate(data), simulate(data, 9000, rates=rates)
    )
    for family, metric in (("decision", "resolved"), ("secondary", "handle_time")):
        rows = [analysis.result(metric, t) for t in ("friendly", "brief")]
        assert [r.family for r in rows] == [family, family]
        assert [r.p_adjusted for r in rows] == holm([r.p_value for r in rows])
    for treatment in ("friendly", "brief"):
        guardrail = analysis.result("escalated", treatment)
        assert guardrail.p_adjusted is None and guardrail.harm_p_value is not None
    text = analysis.to_dict()
    assert {m["family"] for m in text["metrics"]} == {"decision", "secondary", "guardrail"}


def test_a_guardrail_that_decides_is_tested_both_ways(tmp_path: Path) -> None:
    # k-of-n over every metric: escalated counts towards k and is also a guardrail.
    spec = experiment(decision={"rule": "k-of-n", "k": 2})
    data = _analysis(tmp_path, spec, HARMFUL)
    escalated = next(m for m in data["metrics"] if m["metric"] == "escalated")
    assert escalated["family"] == "decision"
    assert escalated["p_adjusted"] >= escalated["p_value"]
    assert escalated["harm_p_value"] < 0.05 and escalated["outcome"] == "worse"
    reason = data["decision"]["reason"]
    assert data["decision"]["action"] == "keep-control"
    assert reason.count("escalated") == 1 and "guardrail escalated" in reason


def test_sequential_guardrail_uses_the_one_sided_always_valid_test(tmp_path: Path) -> None:
    from promptyard.stats.sequential import msprt_two_sample_stream

    spec = experiment(sequential=True)
    repo = write_repo(tmp_path, spec)
    frame = simulate(spec, 12_000, rates=HARMFUL)
    data = _analysis(tmp_path, spec, HARMFUL)
    control = frame["variant"] == "control"
    pair = frame["variant"].isin(["control", "friendly"])
    values, arm = frame.loc[pair, "escalated"].to_numpy(float), ~control[pair].to_numpy()
    harm = msprt_two_sample_stream(values, arm, tau=0.02, binary=True, alternative="greater")
    both = msprt_two_sample_stream(values, arm, tau=0.02, binary=True)
    escalated = next(m for m in data["metrics"] if m["metric"] == "escalated")
    assert escalated["harm_p_value"] == pytest.approx(harm.p_value, rel=1e-12)
    assert escalated["sequential"]["p_value"] == pytest.approx(both.p_value, rel=1e-12)
    assert harm.p_value <= both.p_value and escalated["p_adjusted"] is None
    assert data["decision"]["action"] == "keep-control"
    assert "one-sided, not adjusted, always-valid" in data["decision"]["reason"]
    text = run(repo, "experiment", "analyze", "reply-tone", "--data", str(repo / "data.csv"))
    assert "harm p" in text.stdout and "one-sided always-valid, not adjusted" in text.stdout


def test_sequential_experiment_uses_always_valid_p_values(tmp_path: Path) -> None:
    data = _analysis(tmp_path, experiment(sequential=True), WINNING)
    resolved = next(m for m in data["metrics"] if m["metric"] == "resolved")
    assert resolved["sequential"]["method"] == "msprt-normal-mixture"
    assert resolved["sequential"]["tau"] == pytest.approx(0.03)
    assert resolved["p_adjusted"] >= resolved["sequential"]["p_value"]
    # Always-valid p-values are more conservative than the fixed-horizon test.
    assert resolved["sequential"]["p_value"] >= resolved["p_value"]
    assert data["decision"]["action"] == "ship"


# --- allocate -----------------------------------------------------------------------------------


def test_allocate_thompson_weights_with_floor(winning: Path) -> None:
    data = json_of(
        run(
            winning,
            "experiment",
            "allocate",
            "reply-tone",
            "--data",
            str(winning / "data.csv"),
            "--format",
            "json",
            "--floor",
            "10",
        )
    )
    weights = {v["name"]: v["weight"] for v in data["variants"]}
    assert sum(weights.values()) == pytest.approx(100.0, abs=1e-9)
    assert weights["control"] >= 10 and weights["friendly"] > weights["control"]
    assert data["metric"] == "resolved"
    text = run(winning, "experiment", "allocate", "reply-tone", "--data", str(winning / "data.csv"))
    assert text.exit_code == 0 and "friendly" in text.stdout
    too_big = run(
        winning,
        "experiment",
        "allocate",
        "reply-tone",
        "--data",
        str(winning / "data.csv"),
        "--floor",
        "50",
    )
    assert too_big.exit_code == 2 and "floor" in too_big.stderr


def test_allocate_and_analyze_agree_on_two_variants(tmp_path: Path) -> None:
    # Issue 21.5: the same posterior gave P(best) 0.95551 in allocate (Monte Carlo) and
    # P(better) 0.95491 in analyze (exact). Small data, so the probability is not ~1.
    repo = write_repo(tmp_path)
    frame = simulate(experiment(), 600, rates=WINNING, seed=3)
    frame.to_csv(repo / "small.csv", index=False)
    data = str(repo / "small.csv")
    allocation = json_of(
        run(repo, "experiment", "allocate", "reply-tone", "--data", data, "--format", "json")
    )
    analysis = json_of(
        run(repo, "experiment", "analyze", "reply-tone", "--data", data, "--format", "json")
    )
    resolved = next(m for m in analysis["metrics"] if m["metric"] == "resolved")
    friendly = next(v for v in allocation["variants"] if v["name"] == "friendly")
    assert allocation["method"] == "exact"
    assert 0.01 < friendly["prob_best"] < 0.99
    assert friendly["prob_best"] == resolved["prob_better"]


# --- bad data -----------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        (
            "missing.csv",
            "user_id,variant,resolved\nu1,control,1\nu2,friendly,0\n",
            "missing column",
        ),
        (
            "single.csv",
            "user_id,variant,resolved,handle_time,escalated\nu1,control,1,3,0\nu2,control,0,4,0\n",
            "at least two variants",
        ),
        ("empty.csv", "", "empty"),
        ("header.csv", "user_id,variant,resolved,handle_time,escalated\n", "no rows"),
        (
            "unknown.csv",
            "user_id,variant,resolved,handle_time,escalated\nu1,control,1,3,0\nu2,blue,0,4,0\n",
            "'blue'",
        ),
        (
            "binary.csv",
            "user_id,variant,resolved,handle_time,escalated\nu1,control,yes,3,0\nu2,friendly,0,4,0\n",
            "row 1: 'resolved'",
        ),
        (
            "number.csv",
            "user_id,variant,resolved,handle_time,escalated\nu1,control,1,slow,0\nu2,friendly,0,4,0\n",
            "'handle_time'",
        ),
        (
            "novariant.csv",
            "user_id,variant,resolved,handle_time,escalated\nu1,,1,3,0\nu2,friendly,0,4,0\n",
            "row 1 has no 'variant'",
        ),
        ("broken.jsonl", '{"user_id": "u1", "variant": "control"\n', "not a valid JSONL"),
        ("data.xlsx", "whatever", "unsupported data format"),
        ("absent.csv", None, "no such file"),
    ],
)
def test_bad_data_is_exit_2(
    tmp_path: Path, filename: str, content: str | None, message: str
) -> None:
    repo = write_repo(tmp_path)
    path = repo / filename
    if content is not None:
        _write(path, content)
    result = run(repo, "experiment", "analyze", "reply-tone", "--data", str(path))
    assert result.exit_code == 2, result.output + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_too_few_values_in_an_arm_is_exit_2(tmp_path: Path) -> None:
    repo = write_repo(tmp_path)
    rows = "user_id,variant,resolved,handle_time,escalated\nu1,control,1,3,0\nu2,control,0,5,0\nu3,friendly,0,4,0\n"
    _write(repo / "few.csv", rows)
    result = run(repo, "experiment", "analyze", "reply-tone", "--data", str(repo / "few.csv"))
    assert result.exit_code == 2 and "need at least 2" in result.stderr


def test_parquet_without_pyarrow_names_the_extra(
    winning: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    result = run(
        winning, "experiment", "analyze", "reply-tone", "--data", str(winning / "data.parquet")
    )
    assert result.exit_code == 2
    assert "promptyard[parquet]" in result.stderr


def test_unknown_experiment_and_invalid_file(tmp_path: Path) -> None:
    import yaml

    repo = write_repo(tmp_path / "repo")
    missing = run(repo, "experiment", "plan", "nope")
    assert missing.exit_code == 2 and "no experiment 'nope' under experiments/" in missing.stderr
    broken = experiment(guardrails=[])
    broken["metrics"] = [{**broken["metrics"][0], "baseline": 0.99, "mde": 0.05}]
    path = tmp_path / "elsewhere" / "reply-tone.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(broken))
    result = run(repo, "experiment", "plan", str(path))
    assert result.exit_code == 2
    assert "X005" in result.stderr and "outside (0, 1)" in result.stderr
    path.write_text(yaml.safe_dump(experiment()))
    assert run(repo, "experiment", "plan", str(path)).exit_code == 0


def test_lint_reports_impossible_metric(tmp_path: Path) -> None:
    spec = experiment()
    spec["metrics"] = [
        spec["metrics"][0],
        spec["metrics"][1],
        {**spec["metrics"][2], "baseline": 0.01},
    ]
    repo = write_repo(tmp_path, spec)
    result = run(repo, "lint", "--format", "json")
    assert result.exit_code == 1
    assert "X005" in result.stdout
    assert "'escalated'" in result.stdout and "-0.01" in result.stdout


def test_experiment_from_a_dataframe_api() -> None:
    from promptyard.stats.experiment import analyze_experiment

    spec = ExperimentSpec.model_validate(experiment())
    frame = simulate(experiment(), 6000, rates=WINNING)
    analysis = analyze_experiment(spec, frame)
    assert analysis.result("resolved", "friendly").outcome == "better"
    assert isinstance(analysis.to_dict()["metrics"][0]["lift"]["lift"], float)
    assert pd.isna(frame["resolved"]).sum() == 0


# --- hostile values (QA audit) ------------------------------------------------------------------


def test_plan_without_min_samples_says_not_set(tmp_path: Path) -> None:
    spec = experiment()
    del spec["min_samples"]
    repo = write_repo(tmp_path, spec)
    text = run(repo, "experiment", "plan", "reply-tone")
    assert text.exit_code == 0, text.output
    assert "min_samples: not set" in text.stdout
    assert "too few" not in text.stdout and "min_samples 0" not in text.stdout
    plan = json_of(run(repo, "experiment", "plan", "reply-tone", "--format", "json"))
    assert plan["min_samples"] == 0 and plan["min_samples_sufficient"] is None


def test_plan_error_names_file_line_and_metric(tmp_path: Path) -> None:
    spec = experiment()
    spec["metrics"] = [*spec["metrics"][:2], {**spec["metrics"][2], "mde": 1e-12}]
    repo = write_repo(tmp_path, spec)
    text = (repo / "experiments" / "reply-tone.yaml").read_text().splitlines()
    line = text.index("- name: escalated") + 1  # where the metric is defined
    assert "1.0e-12" in "".join(text[line - 1 : line + 5])
    result = run(repo, "experiment", "plan", "reply-tone")
    assert result.exit_code == 2, result.output
    first, hint = result.stderr.strip().splitlines()
    assert first.startswith(f"error: experiments/reply-tone.yaml:{line}: metric 'escalated'")
    assert "guardrail harm test, friendly vs control" in first and "too small to detect" in first
    # A guardrail is planned at the full alpha: there is no Holm division to point at.
    assert "raise the `mde` of metric 'escalated'" in hint and "Holm" not in hint
    # A file given by path is named as given.
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text((repo / "experiments" / "reply-tone.yaml").read_text())
    by_path = run(repo, "experiment", "plan", str(outside))
    assert by_path.exit_code == 2 and f"{outside}:{line}: metric 'escalated'" in by_path.stderr


def test_plan_error_from_the_api_names_the_experiment() -> None:
    from promptyard.errors import ConfigError
    from promptyard.stats.experiment import plan_experiment

    data = experiment(guardrails=[])
    data["metrics"] = [{**data["metrics"][0], "mde": 1e-12}]
    spec = ExperimentSpec.model_validate(data)
    with pytest.raises(ConfigError, match=r"^experiment 'reply-tone': metric 'resolved'"):
        plan_experiment(spec)
    with pytest.raises(ConfigError, match=r"^x\.yaml:7: metric 'resolved'"):
        plan_experiment(spec, source="x.yaml", lines={"resolved": 7})
    # Two treatments: the primary is planned at alpha / 2, and the hint says why.
    data["variants"] = [
        {"name": "control", "prompt": "p@1.0.0", "weight": 40},
        {"name": "b", "prompt": "p@1.1.0", "weight": 30},
        {"name": "c", "prompt": "p@1.2.0", "weight": 30},
    ]
    with pytest.raises(ConfigError, match=r"b vs control at alpha 0\.025\)") as caught:
        plan_experiment(ExperimentSpec.model_validate(data))
    assert caught.value.hint is not None and "Holm divides alpha" in caught.value.hint


def test_bad_metric_value_is_shown_as_a_plain_number(tmp_path: Path) -> None:
    repo = write_repo(tmp_path)
    rows = "user_id,variant,resolved,handle_time,escalated\nu1,control,1,3,0\nu2,friendly,2,4,0\n"
    _write(repo / "two.csv", rows)
    result = run(repo, "experiment", "analyze", "reply-tone", "--data", str(repo / "two.csv"))
    assert result.exit_code == 2
    assert "row 2: 'resolved' is 2;" in result.stderr
    assert "np." not in result.stderr


@pytest.mark.parametrize("command", ["analyze", "allocate"])
def test_a_negative_seed_is_exit_2_naming_the_flag(winning: Path, command: str) -> None:
    data = str(winning / "data.csv")
    result = run(winning, "experiment", command, "reply-tone", "--data", data, "--seed", "-1")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "error: --seed must be a whole number, 0 or more, got -1"


def test_a_negative_seed_is_a_config_error_in_the_api() -> None:
    from promptyard.errors import ConfigError
    from promptyard.stats.bayes import beta_binomial, prob_best_beta
    from promptyard.stats.paired import paired_bootstrap

    with pytest.raises(ConfigError, match="seed must be a whole number"):
        beta_binomial(5, 10, 6, 10, seed=-1)
    with pytest.raises(ConfigError, match="seed must be a whole number"):
        prob_best_beta([5, 6], [10, 10], seed=-3)
    with pytest.raises(ConfigError, match="seed must be a whole number"):
        paired_bootstrap([1.0, 2.0, 3.0], [2.0, 2.0, 5.0], seed=-1)


def test_plot_into_a_missing_folder_is_exit_2_and_creates_nothing(
    winning: Path, tmp_path: Path
) -> None:
    data = str(winning / "data.csv")
    target = tmp_path / "missing" / "plot.png"
    result = run(
        winning, "experiment", "analyze", "reply-tone", "--data", data, "--plot", str(target)
    )
    assert result.exit_code == 2
    assert f"--plot {target}: the folder {target.parent} does not exist" in result.stderr
    assert result.stdout == ""  # refused before the analysis ran
    assert not target.parent.exists()
    folder = tmp_path / "a-folder.png"
    folder.mkdir()
    as_folder = run(
        winning, "experiment", "analyze", "reply-tone", "--data", data, "--plot", str(folder)
    )
    assert as_folder.exit_code == 2
    assert (
        as_folder.stderr.strip() == f"error: --plot {folder}: that is a folder; name a *.png file"
    )
    assert list(folder.iterdir()) == []


def test_plot_api_refuses_a_path_it_cannot_write(tmp_path: Path) -> None:
    from promptyard.errors import ConfigError
    from promptyard.stats.experiment import analyze_experiment
    from promptyard.stats.plot import plot_analysis

    analysis = analyze_experiment(
        ExperimentSpec.model_validate(experiment()), simulate(experiment(), 2000, rates=WINNING)
    )
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="is not a folder"):
        plot_analysis(analysis, blocker / "plot.png")
    target = tmp_path / "plot.png"
    assert plot_analysis(analysis, target) == target
    assert target.read_bytes()[:4] == b"\x89PNG"
    # No temporary file left behind.
    assert {p.name for p in tmp_path.iterdir()} == {"file", "plot.png"}


@pytest.mark.parametrize("huge", ["1e200", "1.7e308"])
def test_values_that_overflow_the_variance_are_exit_2_naming_the_rows(
    tmp_path: Path, huge: str
) -> None:
    # Issue 21.4 / 19: values near 1e200 ended in exit 3 "internal error: OverflowError".
    repo = write_repo(tmp_path)
    rows = ["user_id,variant,resolved,handle_time,escalated"]
    rows += [
        f"u{i},{'control' if i % 2 else 'friendly'},{i % 3 == 0:d},{300 + i},0" for i in range(40)
    ]
    rows[3] = f"u2,friendly,0,{huge},0"
    rows[8] = f"u7,control,0,-{huge},0"
    _write(repo / "huge.csv", "\n".join(rows) + "\n")
    result = run(repo, "experiment", "analyze", "reply-tone", "--data", str(repo / "huge.csv"))
    assert result.exit_code == 2, result.output + result.stderr
    first = result.stderr.strip().splitlines()[0]
    assert (
        first.startswith("error: ")
        and "huge.csv: rows 3, 8: 'handle_time' is beyond ±1e+150" in first
    )
    assert "overflow" in first and "Traceback" not in result.output + result.stderr


def test_tiny_data_gets_the_exact_test_and_no_decision(tmp_path: Path) -> None:
    # Issue 19.4: 0/2 vs 2/2 said "ship" with p = 0.046 and [+100, +100] pp.
    repo = write_repo(tmp_path, experiment(min_samples=0))
    rows = "user_id,variant,resolved,handle_time,escalated\n"
    rows += "u1,control,0,300,0\nu2,control,0,310,0\nu3,friendly,1,290,0\nu4,friendly,1,280,0\n"
    _write(repo / "tiny.csv", rows)
    args = ("experiment", "analyze", "reply-tone", "--data", str(repo / "tiny.csv"))
    data = json_of(run(repo, *args, "--format", "json"))
    resolved = next(m for m in data["metrics"] if m["metric"] == "resolved")
    assert resolved["test"] == "boschloo-exact"
    assert resolved["p_value"] == pytest.approx(0.125, abs=1e-9)  # Fisher: 1/3
    assert (resolved["ci_low"], resolved["ci_high"]) == pytest.approx((0.0700, 1.0), abs=1e-4)
    assert data["decision"]["action"] == "continue"
    assert data["min_samples_source"] == "plan"
    assert data["min_samples"]["control"] == 3763  # the plan of this experiment
    text = run(repo, *args).stdout
    assert "boschloo-exact" in text and "ship" not in text.split("\n")[1]


def test_no_decision_before_the_planned_sample_when_min_samples_is_unset(tmp_path: Path) -> None:
    spec = experiment(min_samples=0)
    strong = {"control": {"resolved": 0.30}, "friendly": {"resolved": 0.45}}
    data = _analysis(tmp_path / "ship", spec, strong, n=1500)
    primary = next(m for m in data["metrics"] if m["metric"] == "resolved")
    assert primary["outcome"] == "better"  # significant, but 750 of 3,763 planned units
    assert data["decision"]["action"] == "continue" and data["decision"]["variant"] == "friendly"
    assert "the units the plan needs" in data["decision"]["reason"]
    harmful = {"control": {"escalated": 0.10}, "friendly": {"escalated": 0.30}}
    data = _analysis(tmp_path / "keep", spec, harmful, n=1500)
    assert next(m for m in data["metrics"] if m["metric"] == "escalated")["outcome"] == "worse"
    assert data["decision"]["action"] == "continue"
    assert data["decision"]["reason"].startswith("would keep control")
    # Enough units: the same data decides.
    assert (
        _analysis(tmp_path / "big", spec, harmful, n=8000)["decision"]["action"] == "keep-control"
    )


def _three_arms(tmp_path: Path, values: dict[str, list[float]], *, binary: bool) -> Path:
    variants = [
        {"name": name, "prompt": f"support-reply@2.{i}.0", "weight": 33 + (i == 0)}
        for i, name in enumerate(values)
    ]
    metric = {"name": "score", "type": "binary" if binary else "continuous"}
    metric |= {"direction": "increase", "baseline": 0.3 if binary else 1.0, "mde": 0.05}
    if not binary:
        metric["sd"] = 1.0
    spec = experiment(variants=variants, metrics=[metric], primary="score", guardrails=[])
    repo = write_repo(tmp_path, spec)
    rows = ["user_id,variant,score"]
    for name, scores in values.items():
        rows += [f"{name}-{i},{name},{x:g}" for i, x in enumerate(scores)]
    _write(repo / "arms.csv", "\n".join(rows) + "\n")
    return repo


def test_allocate_splits_tied_arms_evenly(tmp_path: Path) -> None:
    # Issue 19: identical arms got 95/5 (argmax gives every tie to the first arm).
    repo = _three_arms(tmp_path, {n: [2.0] * 10 for n in ("control", "b", "c")}, binary=False)
    data = json_of(
        run(
            repo,
            "experiment",
            "allocate",
            "reply-tone",
            "--data",
            str(repo / "arms.csv"),
            "--format",
            "json",
        )
    )
    assert [v["prob_best"] for v in data["variants"]] == pytest.approx([1 / 3] * 3)
    assert sum(v["weight"] for v in data["variants"]) == pytest.approx(100)
    assert (
        max(v["weight"] for v in data["variants"]) - min(v["weight"] for v in data["variants"]) <= 1
    )
    # Two identical arms: the exact probability, one half.
    from promptyard.stats.bayes import prob_best_beta, prob_best_gaussian

    assert prob_best_gaussian([2.0, 2.0], [0.0, 0.0]).probabilities == [0.5, 0.5]
    assert prob_best_beta([30, 30], [100, 100]).probabilities == pytest.approx(
        [0.5, 0.5], abs=1e-12
    )


def test_allocate_prints_only_the_digits_its_draws_support(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    arms = {
        n: list((rng.random(400) < p).astype(float))
        for n, p in (("control", 0.30), ("b", 0.32), ("c", 0.33))
    }
    repo = _three_arms(tmp_path, arms, binary=True)
    args = ("experiment", "allocate", "reply-tone", "--data", str(repo / "arms.csv"))
    few = json_of(run(repo, *args, "--draws", "1000", "--format", "json"))
    many = json_of(run(repo, *args, "--draws", "1000000", "--format", "json"))
    assert few["method"] == many["method"] == "monte-carlo"
    assert few["standard_error"] > 0.01 and few["resolution"] == 10  # ± 3 points: tens only
    assert many["resolution"] == 0.1
    for result in (few, many):
        assert all(
            round(v["weight"] / result["resolution"], 6).is_integer() for v in result["variants"]
        )
    # A seeded simulation of the claim: over 4 seeds the weights move by at most a step.
    spread = [
        json_of(run(repo, *args, "--draws", "1000000", "--seed", str(seed), "--format", "json"))
        for seed in range(4)
    ]
    for i in range(3):
        weights = [s["variants"][i]["weight"] for s in spread]
        assert max(weights) - min(weights) <= 0.1 + 1e-9
    text = run(repo, *args, "--draws", "1000").stdout
    assert "1,000 Monte Carlo draws" in text and "--draws adds digits" in text
    bad = run(repo, *args, "--draws", "10")
    assert bad.exit_code == 2 and "draws must be a whole number from 1,000" in bad.stderr
