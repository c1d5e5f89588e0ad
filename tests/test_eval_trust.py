"""Eval results mean what they say: no infrastructure error reads as a quality result, no
case that violates its prompt's inputs reaches a model, no paid answer is lost at a kill.

Real temporary git repositories, the local OpenAI-compatible server (faults injected by
rules that match request text), and the real `promptyard` process where a process matters.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.evals import EVAL_CONFIG, echo_prompt, jsonl, live_env, text_cases
from support.gate import cases, echo_spec, gate_repo
from support.openai_server import OpenAIServer
from support.repo import PromptRepo

TOLERANT_CONFIG = EVAL_CONFIG.replace(
    "max_retries: 2", "max_retries: 2\n    max_infra_error_rate: 0.4"
)


@pytest.fixture
def project(tmp_path: Path) -> PromptRepo:
    return PromptRepo.create(tmp_path / "repo", EVAL_CONFIG)


def flaky_cases(good: int, flaky: int) -> str:
    """`good` cases that answer, then `flaky` whose requests the server fails (they carry
    the word `flaky`, which the fault rule matches)."""
    texts = [f"steady {i}" for i in range(good)] + [f"flaky {i}" for i in range(flaky)]
    return text_cases(*texts)


# --- a flaky provider is no quality result -------------------------------------------------


def test_infra_errors_end_eval_with_exit_3_naming_the_provider(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    """The sweep: 60% faults left 40 of 300 cases as infra errors and `eval` said "met
    threshold" (exit 0) at a threshold the errors did not reach."""
    project.write("prompts/echo.yaml", echo_prompt(threshold=0.6))
    project.write("golden/echo.jsonl", flaky_cases(good=16, flaky=4))
    openai_server.add_fault("500", match="flaky")
    result = project.run("eval", env=live_env(openai_server))
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "provider 'default'" in result.stderr
    assert "4 of 20" in result.stderr and "max_infra_error_rate" in result.stderr
    assert "met their threshold" not in result.stdout
    (summary_path,) = (project.root / ".promptyard/runs").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["complete"] is False and summary["infra_errors"] == 4
    # The provider recovers: the same command asks only the four again.
    openai_server.reset()
    again = project.run("eval", "--format", "json", env=live_env(openai_server))
    assert again.exit_code == 0, again.stderr
    assert len(openai_server.chat_requests()) == 4
    assert again.json["runs"][0]["passed"] == 20


def test_a_tolerated_share_of_infra_errors_is_left_out_of_the_pass_rate(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("promptyard.yaml", TOLERANT_CONFIG)
    project.write("prompts/echo.yaml", echo_prompt(threshold=1.0))
    project.write("golden/echo.jsonl", flaky_cases(good=16, flaky=4))
    openai_server.add_fault("500", match="flaky")
    result = project.run("eval", "--format", "json", env=live_env(openai_server))
    assert result.exit_code == 0, result.stdout + result.stderr
    (run,) = result.json["runs"]
    assert (run["cases"], run["passed"], run["errors"], run["infra_errors"]) == (20, 16, 4, 4)
    assert run["pass_rate"] == 1.0  # judged on the 16 cases that got an answer
    # Beyond the share: exit 3 again.
    project.write("golden/echo.jsonl", flaky_cases(good=10, flaky=10))
    beyond = project.run("eval", "--no-cache", env=live_env(openai_server))
    assert beyond.exit_code == 3 and "10 of 20" in beyond.stderr


def test_a_bad_share_is_a_config_error(project: PromptRepo) -> None:
    project.write("promptyard.yaml", TOLERANT_CONFIG.replace("0.4", "1.5"))
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a"))
    result = project.run("eval", "--offline")
    assert result.exit_code == 2 and "max_infra_error_rate" in result.stderr


def _flaky_head(repo: PromptRepo) -> None:
    """A head whose user message ends in ` (short)`: fault rules can match head requests
    (`WORD, please (short)`) or base requests (`WORD, please"`) of chosen cases."""
    repo.write(
        "prompts/echo.yaml",
        echo_spec(system="Be brief.", user="{{ text }} (short)", version="1.0.1"),
    )
    repo.commit("reword")


def test_check_never_pairs_an_infra_error_as_a_head_failure(tmp_path: Path) -> None:
    repo = gate_repo(tmp_path / "repo", TOLERANT_CONFIG)
    _flaky_head(repo)
    with OpenAIServer() as server:
        for word in ("refund", "invoice", "billing", "coupon", "login", "order"):
            server.add_fault("500", match=f"{word}, please (short)")
        env = live_env(server)
        result = repo.run("check", "--base", "base", "--format", "json", env=env)
        assert result.exit_code == 0, result.stdout + result.stderr
        (evaluation,) = result.json["prompts"][0]["evals"]
        assert evaluation["flips"]["pass_to_fail"] == []
        assert len(evaluation["missing"]["head"]) == 6
        coverage = [g for g in evaluation["gates"] if g["gate"] == "coverage"]
        assert coverage and coverage[0]["outcome"] == "warn"
        assert "infrastructure" in coverage[0]["reason"]
        # With the default (no infra error tolerated) the run stops: exit 3, the provider named.
        repo.write("promptyard.yaml", EVAL_CONFIG)
        repo.commit("strict")
        strict = repo.run("check", "--base", "base", env=env)
        assert strict.exit_code == 3, strict.stdout + strict.stderr
        assert "provider 'default'" in strict.stderr


def test_check_never_pairs_an_infra_error_as_a_base_failure(tmp_path: Path) -> None:
    """Base infra errors were already left out; now they are named as such, too."""
    repo = gate_repo(tmp_path / "repo", TOLERANT_CONFIG)
    _flaky_head(repo)
    with OpenAIServer() as server:
        server.add_fault("500", match='refund, please"')
        result = repo.run("check", "--base", "base", "--format", "json", env=live_env(server))
        assert result.exit_code == 0, result.stdout + result.stderr
        (evaluation,) = result.json["prompts"][0]["evals"]
        assert evaluation["missing"]["base"] == ["refund-01"]
        assert evaluation["flips"]["fail_to_pass"] == []


# --- variables that violate the inputs stop eval before any call ----------------------------


def test_eval_refuses_cases_whose_vars_violate_the_inputs_before_any_call(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write(
        "golden/echo.jsonl",
        jsonl(
            [
                {"id": "ok", "vars": {"text": "a"}},
                {"id": "wrong-type", "vars": {"text": 3}},
                {"id": "missing", "vars": {"txt": "a"}},
            ]
        ),
    )
    result = project.run("eval", env=live_env(openai_server))
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "golden/echo.jsonl:2" in result.stderr and "'wrong-type'" in result.stderr
    assert (
        "golden/echo.jsonl:3" in result.stderr
        and "missing required variable 'text'" in result.stderr
    )
    assert openai_server.requests == []  # no model was called
    assert not (project.root / ".promptyard/runs").exists()


def test_check_keeps_a_base_that_cannot_take_the_heads_variables(tmp_path: Path) -> None:
    """The head adds a required input: the base prompt cannot render the head's cases. That
    is the base's problem, not a usage error: those cases are left out of the pairing."""
    repo = gate_repo(tmp_path / "repo")
    doc = echo_spec(version="1.1.0", user="{{ text }} ({{ tone }})")
    doc = doc.replace(
        "text:\n    type: string\n", "text:\n    type: string\n  tone:\n    type: string\n"
    )
    repo.write("prompts/echo.yaml", doc)
    rows = [json.loads(line) for line in cases().splitlines()]
    for row in rows:
        row["vars"]["tone"] = "kind"
    repo.write("golden/echo.jsonl", jsonl(rows))
    repo.commit("tone")
    with OpenAIServer() as server:
        result = repo.run("check", "--base", "base", "--format", "json", env=live_env(server))
    assert result.exit_code in (0, 1), result.stderr
    (evaluation,) = result.json["prompts"][0]["evals"]
    assert evaluation["paired"] == 0 and len(evaluation["missing"]["base"]) == 20


# --- a kill -9 never loses a paid answer whose row was kept ---------------------------------


def test_kill_9_keeps_every_answer_whose_row_was_written(project: PromptRepo) -> None:
    """Cache entries were written in batches every half second while each row was written
    at once: a kill -9 kept rows whose answers were gone, and the next full run paid for
    them again."""
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(40)]))
    project.write(
        "promptyard.yaml", EVAL_CONFIG.replace("max_concurrency: 8", "max_concurrency: 2")
    )
    with OpenAIServer(latency_ms=30) as server:
        env = {**os.environ, "NO_COLOR": "1", **live_env(server)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "promptyard.cli", "eval"],
            cwd=project.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        runs = project.root / ".promptyard/runs"
        deadline = time.monotonic() + 60
        kept = 0
        while time.monotonic() < deadline and kept < 12:
            files = list(runs.glob("*/results.jsonl"))
            kept = len(files[0].read_text().splitlines()) if files else 0
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        results = next(runs.glob("*/results.jsonl"))
        kept_rows = [
            json.loads(line) for line in results.read_text().splitlines() if line.endswith("}")
        ]
        assert 12 <= len(kept_rows) < 40
        cache = sqlite3.connect(project.root / ".promptyard/cache.sqlite")
        (entries,) = cache.execute("SELECT COUNT(*) FROM responses").fetchone()
        cache.close()
        assert entries >= len(kept_rows)  # every kept row's answer is in the cache
        server.reset()
        resumed = project.run("eval", "--format", "json", env=live_env(server))
        assert resumed.exit_code == 0, resumed.stderr
        asked_on_resume = len(server.chat_requests())
        assert asked_on_resume <= 40 - len(kept_rows)
        # The run is complete: running it again starts over, every answer from the cache.
        server.reset()
        again = project.run("eval", "--format", "json", env=live_env(server))
        assert again.exit_code == 0, again.stderr
        assert server.chat_requests() == []
