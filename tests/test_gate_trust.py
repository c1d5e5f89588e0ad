"""The merge gate cannot be talked into a pass by the change it judges.

Each test is a way a pull request could slip past `promptyard check`: loosening the gate
in its own promptyard.yaml, a base that failed for infrastructure reasons, weakening the
assertions it is graded by, a cost that appears from nothing or hides behind a missing
price, an interrupted run leaving an old passing report. Real temporary git repositories,
the local OpenAI-compatible server (with faults injected into base requests only), and the
CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptyard.compare.rule_changes import eval_spec_gates, gates_config_gate
from promptyard.spec import PromptSpec
from promptyard.spec.config import Gates
from support.evals import EVAL_CONFIG
from support.gate import echo_spec, gate_repo, regressing_user
from support.openai_server import OpenAIServer
from support.repo import PromptRepo

# Three regressions in twenty cases: 85% stays above the 80% threshold, so only the
# comparison with the base (a 15-point drop, allowed 3) can block.
THREE = ["refund", "invoice", "billing"]


@pytest.fixture
def project(tmp_path: Path, live: OpenAIServer) -> PromptRepo:
    return gate_repo(tmp_path / "repo")


def check_json(repo: PromptRepo, *args: str) -> tuple[int, dict[str, Any]]:
    result = repo.cli("check", *args, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


def gates_of(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [g for p in data["prompts"] for g in p["gates"] if g["gate"] == name]


def with_gates(gates: dict[str, Any], config: str = EVAL_CONFIG) -> str:
    return config + yaml.safe_dump({"gates": gates}, sort_keys=False)


# --- 1. the pull request does not set its own merge gate ---------------------------------


def test_the_base_gates_judge_and_loosening_them_blocks(
    project: PromptRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project.write(
        "prompts/echo.yaml",
        echo_spec(version="1.0.1", system="Be brief.", user=regressing_user(THREE)),
    )
    # the same pull request allows itself a 20-point drop
    project.write("promptyard.yaml", with_gates({"pass_rate": {"max_drop": 0.2}}))
    code, data = check_json(project, "--base", "base")
    assert code == 1 and data["decision"] == "block"
    (rate,) = gates_of(data, "pass_rate")
    assert rate["outcome"] == "block"
    assert "more than the allowed 3.0 pts" in rate["reason"]  # the base's max_drop
    (edited,) = data["gates"]
    assert (edited["gate"], edited["outcome"]) == ("gates-config", "block")
    assert "loosens the merge gate in promptyard.yaml" in edited["reason"]
    assert "pass_rate.max_drop 0.03 → 0.2" in edited["reason"]
    # every report says so, and CI annotates promptyard.yaml
    md, page = tmp_path / "r.md", tmp_path / "r.html"
    text = project.cli("check", "--base", "base", "--report", str(md), "--html", str(page))
    assert "BLOCK gates-config: this change loosens" in text.stdout
    assert "- ❌ `promptyard.yaml` · **gates-config**: this change loosens" in md.read_text()
    assert 'id="change-gates"' in page.read_text()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    lines = project.cli("check", "--base", "base").stdout.splitlines()
    assert any(
        line.startswith("::error file=promptyard.yaml,title=promptyard gate%3A gates-config::")
        for line in lines
    )


def test_an_edit_that_does_not_loosen_the_gate_warns(project: PromptRepo) -> None:
    project.write(
        "promptyard.yaml",
        with_gates({"pass_rate": {"max_drop": 0.01}, "score": {"test": "wilcoxon"}, "power": 0.9}),
    )
    project.commit("stricter gate")
    code, data = check_json(project, "--base", "base")
    assert code == 0 and data["decision"] == "warn" and data["prompts"] == []
    (edited,) = data["gates"]
    assert (edited["gate"], edited["outcome"]) == ("gates-config", "warn")
    for change in ("pass_rate.max_drop 0.03 → 0.01", "score.test paired-t → wilcoxon", "power 0.8 → 0.9"):  # fmt: skip
        assert change in edited["reason"]


def test_without_a_base_the_head_gates_are_all_there_is(project: PromptRepo) -> None:
    project.write("promptyard.yaml", with_gates({"error_rate": {"max": 0.5}}))
    code, data = check_json(project)
    assert code == 0 and data["gates"] == []
    assert "allowed 50.0%" in gates_of(data, "error_rate")[0]["reason"]


def test_gates_config_rules() -> None:
    base = Gates()
    assert gates_config_gate(base, Gates()) is None
    loosened = {
        "pass_rate": {"action": "warn"},
        "error_rate": {"max": 0.02},
        "cost_per_case": {"max_ratio": 1.5},
        "latency_p95": {"min_delta_ms": 100},
        "score": {"require_significance": True},
    }
    for key, value in loosened.items():
        result = gates_config_gate(base, Gates.model_validate({key: value}))
        assert result is not None and result.outcome == "block", key
    tightened = {"pass_rate": {"action": "block", "max_drop": 0.0}, "cost_per_case": {"action": "block"}}  # fmt: skip
    result = gates_config_gate(base, Gates.model_validate(tightened))
    assert result is not None and result.outcome == "warn"
    # a lower alpha loosens the gate only where significance decides
    assert gates_config_gate(base, Gates(alpha=0.01)).outcome == "warn"  # type: ignore[union-attr]
    sig = Gates.model_validate({"pass_rate": {"require_significance": True}})
    lower = Gates.model_validate({"pass_rate": {"require_significance": True}, "alpha": 0.01})
    assert gates_config_gate(sig, lower).outcome == "block"  # type: ignore[union-attr]


# --- 2. a base that could not answer is not a base that failed ---------------------------


def _tolerate_infra(project: PromptRepo) -> None:
    """Allow a few infra errors (by default any infra error stops the run with exit 3:
    see test_eval_trust), so the base's can be seen being left out of the pairing."""
    project.write(
        "promptyard.yaml",
        EVAL_CONFIG.replace("max_retries: 2", "max_retries: 2\n    max_infra_error_rate: 0.1"),
    )


def _base_says(project: PromptRepo) -> None:
    """Make the base's requests recognisable: its user message starts with 'Base: '."""
    project.write("prompts/echo.yaml", echo_spec(system="Be brief.", user="Base: {{ text }}"))
    project.commit("base prompt")
    project.git("branch", "-f", "base")


def test_base_infrastructure_errors_are_missing_not_failures(
    project: PromptRepo, live: OpenAIServer
) -> None:
    _tolerate_infra(project)
    _base_says(project)
    # Three base requests fail: a rate limit and a server error (retried, then given up:
    # infrastructure) and a rejected request. The head answers them all.
    live.add_fault("429", match="Base: Question about my shipping")
    live.add_fault("500", match="Base: Question about my password")
    live.add_fault("400", match="Base: Question about my delivery")
    # ... and regresses on three others: counted as base failures, the three base errors
    # would be three fail → pass "improvements" cancelling the regressions exactly.
    project.write(
        "prompts/echo.yaml",
        echo_spec(version="1.0.1", system="Be brief.", user=regressing_user(THREE)),
    )
    code, data = check_json(project, "--base", "base")
    assert code == 1 and data["decision"] == "block"
    (prompt,) = data["prompts"]
    (evaluation,) = prompt["evals"]
    missing = ["shipping-01", "password-01", "delivery-01"]
    assert evaluation["missing"] == {"base": missing, "head": []}
    assert evaluation["paired"] == 17
    rate = prompt["metrics"]["pass_rate"]
    assert (rate["base"], rate["head"], rate["n"]) == (1.0, pytest.approx(14 / 17), 17)
    assert prompt["flips"]["fail_to_pass"] == []  # no improvement was invented
    (rate_gate,) = gates_of(data, "pass_rate")
    assert rate_gate["outcome"] == "block"
    infra, refused = gates_of(data, "coverage")
    assert infra["outcome"] == refused["outcome"] == "warn"
    assert "the base had 2 case(s) fail for infrastructure reasons" in infra["reason"]
    assert "shipping-01, password-01" in infra["reason"]
    assert "the base could not answer 1 case(s) (delivery-01" in refused["reason"]
    assert "not counted as base failures" in refused["reason"]
    assert "first error: default:" in refused["reason"]
    assert evaluation["infra_errors"] == {"base": missing[:2], "head": []}
    # the base's rejected request shows in the error-rate metric (infrastructure errors
    # are the provider's, not the prompt's); the head had none
    assert prompt["metrics"]["error_rate"]["base"] == pytest.approx(1 / 20)
    assert prompt["metrics"]["error_rate"]["head"] == 0
    assert gates_of(data, "error_rate")[0]["outcome"] == "pass"
    # the faults hit base requests only
    hit = [r for r in live.chat_requests() if r.fault is not None]
    assert hit and all("Base: " in json.dumps(r.body) for r in hit)


def test_a_head_error_stays_an_error_when_the_base_errs_too(
    project: PromptRepo, live: OpenAIServer
) -> None:
    _tolerate_infra(project)
    _base_says(project)
    live.add_fault("500", match="Base: Question about my coupon")
    live.add_fault("400", match='"Question about my coupon')  # the head's request
    project.write("prompts/echo.yaml", echo_spec(version="1.0.1", system="Be brief."))
    code, data = check_json(project, "--base", "base")
    assert code == 1
    (prompt,) = data["prompts"]
    assert prompt["evals"][0]["missing"]["base"] == ["coupon-01"]
    (errors,) = gates_of(data, "error_rate")
    assert errors["outcome"] == "block"
    assert "1 of 20 case(s) errored (coupon-01" in errors["reason"]
    assert prompt["metrics"]["error_rate"]["head"] == pytest.approx(1 / 20)


# --- 4. cost: from nothing, or unknown on one side ---------------------------------------


def _model(name: str) -> dict[str, Any]:
    return {"provider": "default", "name": name, "parameters": {"temperature": 0}}


def test_a_cost_from_a_free_base_is_an_unbounded_ratio(tmp_path: Path, live: OpenAIServer) -> None:
    config = EVAL_CONFIG.replace(
        "  test-model: {input: 1.0, output: 2.0}\n",
        "  test-model: {input: 100.0, output: 200.0}\n  local-model: {input: 0, output: 0}\n",
    )
    repo = gate_repo(tmp_path / "repo", with_gates({"cost_per_case": {"action": "block"}}, config))
    repo.write("prompts/echo.yaml", echo_spec(system="Be brief.", model=_model("local-model")))
    repo.commit("a free local model")
    repo.git("branch", "-f", "base")
    repo.write("prompts/echo.yaml", echo_spec(version="1.1.0", system="Be brief."))
    code, data = check_json(repo, "--base", "base")
    assert code == 1
    (cost,) = gates_of(data, "cost_per_case")
    assert cost["outcome"] == "block"
    assert "cost per case $0 → $0.00" in cost["reason"] and "base is 0" in cost["reason"]
    metric = data["prompts"][0]["metrics"]["cost_per_case_usd"]
    assert metric["base"] == 0 and metric["head"] > 0.0001 and metric["ratio"] is None


def test_a_head_on_an_unpriced_model_warns(project: PromptRepo) -> None:
    project.write(
        "prompts/echo.yaml",
        echo_spec(version="1.1.0", system="Be brief.", model=_model("big-unpriced-model")),
    )
    code, data = check_json(project, "--base", "base")
    (cost,) = gates_of(data, "cost_per_case")
    assert cost["outcome"] == "warn" and code == 0
    assert "cost unknown on one side: add the model to pricing" in cost["reason"]
    assert "the head has no token cost" in cost["reason"]


# --- 5. the grading cannot be weakened unnoticed -----------------------------------------


def test_weakened_assertions_block(project: PromptRepo) -> None:
    # The head regresses six cases and swaps the assertion for one nothing fails: graded
    # alike, base and head both pass everything, so the comparison alone sees no change.
    project.write(
        "prompts/echo.yaml",
        echo_spec(
            version="1.0.1",
            system="Be brief.",
            user=regressing_user([*THREE, "coupon", "login", "order"]),
            asserts=[{"type": "not-icontains", "value": "zzz"}],
        ),
    )
    code, data = check_json(project, "--base", "base")
    assert code == 1
    (prompt,) = data["prompts"]
    assert prompt["metrics"]["pass_rate"]["delta"] == 0
    (spec,) = gates_of(data, "eval-spec")
    assert spec["outcome"] == "block" and spec["dataset"] == "golden/echo.jsonl"
    assert 'assertion removed or changed: icontains "{{ expected }}"' in spec["reason"]
    assert "assertion added: not-icontains" in spec["reason"]
    assert any("the evals changed" in r for r in prompt["reasons"])


def test_a_lowered_threshold_blocks_and_a_new_assertion_warns(project: PromptRepo) -> None:
    keep = {"type": "icontains", "value": "{{ expected }}", "metric": "mentions"}
    project.write(
        "prompts/echo.yaml", echo_spec(version="1.0.1", system="Be brief.", threshold=0.5)
    )
    code, data = check_json(project, "--base", "base")
    (spec,) = gates_of(data, "eval-spec")
    assert code == 1 and spec["outcome"] == "block"
    assert "threshold lowered 0.8 → 0.5" in spec["reason"]
    project.write(
        "prompts/echo.yaml",
        echo_spec(
            version="1.0.1",
            system="Be brief.",
            asserts=[keep, {"type": "not-icontains", "value": "sorry"}],
        ),
    )
    code, data = check_json(project, "--base", "base")
    (spec,) = gates_of(data, "eval-spec")
    assert code == 0 and spec["outcome"] == "warn"
    assert spec["reason"].startswith("the grading of golden/echo.jsonl changed: assertion added")


def _spec(**evals: Any) -> PromptSpec:
    doc = yaml.safe_load(echo_spec())
    doc["evals"] = [{"dataset": "golden/echo.jsonl", "assert": [{"type": "contains", "value": "a"}], **evals}]  # fmt: skip
    return PromptSpec.model_validate(doc)


def test_eval_spec_rules() -> None:
    base = _spec(threshold=0.9, repeat=3, min_pass=3)
    assert eval_spec_gates(base, base) == []
    outcomes = {
        "raised threshold": (_spec(threshold=0.95, repeat=3, min_pass=3), "warn"),
        "fewer repeats must pass": (_spec(threshold=0.9, repeat=3, min_pass=2), "block"),
        "more repeats": (_spec(threshold=0.9, repeat=5), "warn"),
    }
    for label, (head, expected) in outcomes.items():
        (result,) = eval_spec_gates(base, head)
        assert result.outcome == expected, (label, result.reason)
    removed = base.model_copy(update={"evals": []})
    (gone,) = eval_spec_gates(base, removed)
    assert gone.outcome == "block" and "was removed" in gone.reason
    (new,) = eval_spec_gates(removed, base)
    assert new.outcome == "warn" and "a new eval on golden/echo.jsonl" in new.reason


# --- 6. an interrupted check leaves no passing report behind -----------------------------


@pytest.mark.parametrize(
    ("stop", "code", "why"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
    ids=["ctrl-c", "ci-cancel"],
)
def test_a_stopped_check_replaces_an_old_passing_report(
    project: PromptRepo, live: OpenAIServer, tmp_path: Path, stop: int, code: int, why: str
) -> None:
    project.write("prompts/echo.yaml", echo_spec(version="1.0.1", system="Keep it short."))
    md, page = tmp_path / "report.md", tmp_path / "report.html"
    md.write_text("<!-- promptyard-report -->\n## ✅ promptyard check: passed\n")
    page.write_text("<!doctype html><h1>promptyard check: passed</h1>")
    live.set_latency(30_000)  # every answer takes 30 s: the check is surely mid-run
    command = ["check", "--base", "base", "--report", str(md), "--html", str(page)]
    process = subprocess.Popen(
        [sys.executable, "-m", "promptyard.cli", *command],
        cwd=project.root,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not live.chat_requests():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the check never called the model"
            time.sleep(0.05)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    report = md.read_text()
    assert f"could not finish (exit {code})" in report and why in report, stderr
    assert "passed" not in report
    html = page.read_text()
    assert f"could not finish (exit {code})" in html and "passed" not in html


# --- 7. every command that runs evals takes the same flags -------------------------------


def test_check_takes_the_eval_flags(project: PromptRepo) -> None:
    project.write("prompts/echo.yaml", echo_spec(version="1.0.1", system="Keep it short."))
    code, data = check_json(project, "--base", "base", "--repeat", "2", "--no-cache")
    blocking = [g for p in data["prompts"] for g in p["gates"] if g["outcome"] == "block"]
    # Live latencies on a loaded machine may differ 2x; that is the machine, not the flags.
    assert all(g["gate"] == "latency_p95" for g in blocking), blocking
    assert code == (1 if blocking else 0)
    (evaluation,) = data["prompts"][0]["evals"]
    assert evaluation["repeat"] == 2
    assert data["prompts"][0]["metrics"]["mean_score"]["test"] == "paired-clustered"
    for command in ("check", "diff", "eval"):
        args = ["--base", "base"] if command != "eval" else []
        result = project.cli(command, *args, "--offline", "--record")
        assert result.exit_code == 2, (command, result.stderr)
        assert "--offline and --record cannot be used together" in result.stderr
        helptext = project.cli(command, "--help").stdout
        for flag in ("--repeat", "--concurrency", "--no-cache", "--offline", "--record"):
            assert flag in helptext, (command, flag)
