"""Rollout strategies in environment files: the model, lint (E009-E011) and `promote --strategy`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from promptyard.lint import lint_repository
from promptyard.repo.workspace import Workspace
from promptyard.spec import EnvironmentSpec
from promptyard.spec.environment import STRATEGIES, duration_seconds
from support.repo import PromptRepo, make_repo

ENV = "serving/environments/production.yaml"

# A config where every metric of the standard strategy has a data source.
MEASURED_CONFIG = """\
providers:
  default:
    type: openai
pricing:
  gpt-4o-mini: {input: 0.15, output: 0.6}
online_quality:
  prompts:
    support-reply: {sample: 0.5}
"""


@pytest.fixture
def repo(tmp_path: Path) -> PromptRepo:
    """support-reply 1.0.0 stable (tagged) and 1.1.0 tagged, whose evals have an online check."""
    repo = make_repo(tmp_path)
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    with (repo.root / "prompts/support-reply.yaml").open("a") as spec:
        spec.write(
            "evals:\n  - dataset: golden/support-reply.jsonl\n"
            "    assert: [{type: word-count, value: {max: 80}}]\n"
        )
    repo.write(
        "golden/support-reply.jsonl", '{"id": "a", "vars": {"company": "A", "ticket": "t"}}\n'
    )
    repo.commit("1.1.0")
    repo.release()
    return repo


def findings(repo: PromptRepo) -> list[tuple[str, int, str]]:
    result = lint_repository(Workspace(repo.root))
    return sorted((f.rule, f.line, f.message) for f in result.findings)


def canary_block(body: str) -> str:
    head = (
        "environment: production\nprompts:\n  support-reply:\n    version: 1.0.0\n"
        "    canary:\n      version: 1.1.0\n      weight: 5\n"
    )
    return head + body + "  greeter: {version: 1.0.0}\n"


def test_standard_strategy_with_every_data_source_lints_clean(repo: PromptRepo) -> None:
    repo.write("promptyard.yaml", MEASURED_CONFIG)
    repo.commit("pricing and online quality")
    result = repo.cli(
        "promote", "support-reply", "1.1.0", "--env", "production", "--strategy", "standard"
    )
    assert result.exit_code == 0, result.stderr
    assert "note:" not in result.stdout  # nothing was left out
    canary = (
        EnvironmentSpec.model_validate(yaml.safe_load(repo.read(ENV)))
        .prompts["support-reply"]
        .canary
    )
    assert canary is not None and canary.version == "1.1.0" and canary.weight == 5
    assert [(s.weight, s.pause) for s in canary.steps or []] == [
        (5, "15m"),
        (25, "1h"),
        (50, None),
        (100, None),
    ]
    assert canary.analysis is not None
    thresholds = canary.analysis.metrics.model_dump(exclude_none=True)
    assert thresholds == STRATEGIES["standard"]["analysis"]["metrics"]
    assert thresholds == {
        "error_rate": {"max_ratio": 1.5},
        "quality": {"max_drop": 0.03},
        "cost_per_request": {"max_ratio": 1.2},
        "latency_p95": {"max_ratio": 1.5},
    }
    assert findings(repo) == []


def test_promote_leaves_out_metrics_nothing_measures_and_says_why(repo: PromptRepo) -> None:
    result = repo.cli(
        "promote", "support-reply", "1.1.0", "--env", "production", "--strategy", "standard"
    )
    assert result.exit_code == 0, result.stderr
    assert "note: left out quality: the prompt is not opted in" in result.stdout
    assert "note: left out cost_per_request: model 'gpt-4o-mini' has no entry" in result.stdout
    analysis = yaml.safe_load(repo.read(ENV))["prompts"]["support-reply"]["canary"]["analysis"]
    assert set(analysis["metrics"]) == {"error_rate", "latency_p95"}
    assert findings(repo) == []


def test_promote_strategy_with_an_explicit_first_weight(repo: PromptRepo) -> None:
    result = repo.cli(
        "promote", "support-reply", "1.1.0", "--env", "production", "--strategy", "standard",
        "--canary", "25", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert '"weight": 25' in result.stdout
    assert yaml.safe_load(repo.read(ENV))["prompts"]["support-reply"]["canary"]["weight"] == 25


def test_strategy_mistakes_are_located_errors(repo: PromptRepo) -> None:
    repo.write(
        ENV,
        canary_block(
            "      steps:\n"  # line 8
            "        - {weight: 25, pause: 15m}\n"
            "        - {weight: 5, pause: 1h}\n"  # line 10: falls
            "        - {weight: 50, pause: 0m}\n"  # line 11: not positive
            "        - {weight: 90, pause: 15 minutes}\n"  # line 12: not a duration
            "      analysis:\n"
            "        metrics:\n"
            "          error_rat: {max_ratio: 1.5}\n"  # line 15: unknown metric
        ),
    )
    found = findings(repo)
    codes = {(code, line) for code, line, _ in found}
    assert ("E009", 11) in codes and ("E009", 12) in codes
    assert ("S001", 15) in codes
    messages = " | ".join(message for _, _, message in found)
    assert "'0m' is not a positive duration" in messages
    assert "'15 minutes' is not a duration; write hours, minutes and seconds like 15m" in messages
    assert "did you mean 'error_rate'?" in messages

    # Fix the durations and the metric name: the order and the last step remain.
    repo.write(
        ENV,
        canary_block(
            "      steps:\n"
            "        - {weight: 25, pause: 15m}\n"
            "        - {weight: 5, pause: 1h}\n"  # line 10
            "        - {weight: 90}\n"  # line 11
            "      analysis:\n"
            "        metrics:\n"
            "          error_rate: {max_ratio: 1.5}\n"
        ),
    )
    assert findings(repo) == [
        ("E010", 10, "support-reply canary: step weights must rise: 5 follows 25"),
        (
            "E010",
            11,
            "support-reply canary: the last step is 90; end with weight 100 (the canary "
            "becomes stable)",
        ),
    ]


def test_steps_need_an_analysis_and_a_metric(repo: PromptRepo) -> None:
    repo.write(ENV, canary_block("      steps: [{weight: 5, pause: 1m}, {weight: 100}]\n"))
    assert findings(repo) == [
        ("E010", 8, "support-reply canary: `steps` without `analysis`; say which metrics decide")
    ]
    repo.write(
        ENV,
        canary_block(
            "      steps: [{weight: 5, pause: 1m}, {weight: 100, pause: 1m}]\n"
            "      analysis: {metrics: {}}\n"
        ),
    )
    assert [(code, line) for code, line, _ in findings(repo)] == [("E010", 8), ("E010", 9)]


def test_metrics_without_a_data_source_are_errors_at_the_metric(repo: PromptRepo) -> None:
    repo.write(
        ENV,
        canary_block(
            "      steps: [{weight: 5, pause: 1m}, {weight: 100}]\n"
            "      analysis:\n"
            "        metrics:\n"
            "          cost_per_request: {max_ratio: 1.2}\n"  # line 11
            "          quality: {max_drop: 0.03}\n"  # line 12
        ),
    )
    assert findings(repo) == [
        (
            "E011",
            11,
            "support-reply canary: cost_per_request has no data source: model 'gpt-4o-mini' "
            "has no entry in `pricing` of promptyard.yaml; add one, or remove the metric",
        ),
        (
            "E011",
            12,
            "support-reply canary: quality has no data source: the prompt is not opted in to "
            "online quality; list it under `online_quality.prompts` in promptyard.yaml, or "
            "remove the metric",
        ),
    ]
    # Opted in, but the prompt's evals have no check the gateway can run live.
    repo.write("promptyard.yaml", MEASURED_CONFIG)
    spec = repo.read("prompts/support-reply.yaml").replace(
        "word-count, value: {max: 80}", "llm-rubric, value: polite"
    )
    repo.write("prompts/support-reply.yaml", spec)
    found = findings(repo)
    assert [(code, line) for code, line, _ in found] == [("E011", 12)]
    assert "its evals have no `assert` the gateway can run on live answers" in found[0][2]


def test_durations() -> None:
    assert [duration_seconds(d) for d in ("15m", "1h", "90s", "1h30m", "2h5s")] == [
        900,
        3600,
        90,
        5400,
        7205,
    ]
    for bad in ("", "15", "m", "1d", "-5m", "1m1h"):
        with pytest.raises(ValueError):
            duration_seconds(bad)
