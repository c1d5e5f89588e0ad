"""Runs record what they were, and can be listed, pruned and loaded one, latest or all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promptyard.errors import ConfigError
from promptyard.evals import load_results
from promptyard.evals.results import RunWriter
from promptyard.evals.runs import list_runs, prune_runs
from support.evals import EVAL_CONFIG, echo_prompt, live_env, text_cases
from support.openai_server import OpenAIServer
from support.repo import PromptRepo


@pytest.fixture
def project(tmp_path: Path) -> PromptRepo:
    repo = PromptRepo.create(tmp_path / "repo", EVAL_CONFIG)
    repo.write(".gitignore", ".promptyard/\n")
    repo.write("prompts/echo.yaml", echo_prompt())
    repo.write("golden/echo.jsonl", text_cases("a", "b"))
    repo.write("prompts/other.yaml", echo_prompt("other", dataset="golden/other.jsonl"))
    repo.write("golden/other.jsonl", text_cases("x"))
    repo.commit("prompts")
    return repo


def summary_of(repo: PromptRepo, prompt: str) -> dict:
    (run,) = list_runs(repo.root / ".promptyard/runs", prompt=prompt)
    return run.summary


def test_each_run_records_when_where_and_how_it_ran(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    result = project.run("eval", "echo", "--repeat", "1", env=live_env(openai_server))
    assert result.exit_code == 0, result.stderr
    s = summary_of(project, "echo")
    assert s["git"] == {"commit": project.head(), "branch": "main", "dirty": False}
    assert s["command"] == "promptyard eval echo --repeat 1"
    assert (s["provider"], s["model"], s["offline"], s["complete"]) == (
        "default",
        "test-model",
        False,
        True,
    )
    started = datetime.fromisoformat(s["started_at"])
    finished = datetime.fromisoformat(s["finished_at"])
    assert started <= finished <= datetime.now(UTC) and started.tzinfo is not None
    # A dirty tree, offline (no recordings: the cases error, but the run says how it ran).
    project.write("notes.txt", "untracked\n")
    offline = project.run("eval", "other", "--offline")
    assert offline.exit_code == 1
    s = summary_of(project, "other")
    assert s["git"]["dirty"] is True and s["offline"] is True and s["mode"] == "offline"


def test_runs_list_newest_first_and_by_prompt(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    env = live_env(openai_server)
    assert project.run("eval", "echo", env=env).exit_code == 0
    assert project.run("eval", "other", env=env).exit_code == 0
    listed = project.run("runs", "list", "--format", "json").json["runs"]
    assert [r["prompt"] for r in listed] == ["other", "echo"]
    assert listed[1]["pass_rate"] == 1.0 and listed[1]["git"]["branch"] == "main"
    only = project.run("runs", "list", "--prompt", "echo", "--format", "json").json["runs"]
    assert [r["prompt"] for r in only] == ["echo"]
    text = project.run("runs", "list").stdout
    assert "echo 1.0.0" in text and "other 1.0.0" in text and "100.0%" in text


def test_prune_by_count_and_age_never_removes_a_run_being_written(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    env = live_env(openai_server)
    for version in ("1.0.0", "1.0.1", "1.0.2"):
        project.write("prompts/echo.yaml", echo_prompt(version=version))
        assert project.run("eval", "echo", env=env).exit_code == 0
    runs_dir = project.root / ".promptyard/runs"
    runs = list_runs(runs_dir, prompt="echo")
    assert [r.summary["version"] for r in runs] == ["1.0.2", "1.0.1", "1.0.0"]
    # The oldest is being written by another process: it stays.
    writer = RunWriter(runs[-1].path)
    try:
        assert list_runs(runs_dir, prompt="echo")[-1].running
        result = project.run("runs", "prune", "--keep", "1", "--format", "json")
        assert result.exit_code == 0, result.stderr
        assert result.json["removed"] == [runs[1].run_id]
        assert result.json["skipped_running"] == [runs[2].run_id]
    finally:
        writer.close()
    assert {r.run_id for r in list_runs(runs_dir)} == {
        runs[0].run_id,
        runs[2].run_id,
        *(r.run_id for r in list_runs(runs_dir, prompt="other")),
    }
    # By age: nothing is a day old yet; a week from now everything is.
    assert prune_runs(runs_dir, older_than=timedelta(days=1)).removed == []
    later = datetime.now(UTC) + timedelta(days=7)
    dry = prune_runs(runs_dir, older_than=timedelta(days=1), now=later, dry_run=True)
    assert len(dry.removed) == 2 and len(list_runs(runs_dir)) == 2
    assert project.run("runs", "prune").exit_code == 2  # neither --keep nor --older-than


def test_load_results_one_run_latest_of_a_prompt_or_all(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    env = live_env(openai_server)
    assert project.run("eval", env=env).exit_code == 0
    project.write("prompts/echo.yaml", echo_prompt(version="2.0.0"))
    assert project.run("eval", "echo", env=env).exit_code == 0
    runs_dir = project.root / ".promptyard/runs"
    everything = load_results(runs_dir)
    assert len(everything) == 2 + 1 + 2
    latest = load_results(runs_dir, prompt="echo", latest=True)
    assert set(latest["version"]) == {"2.0.0"} and len(latest) == 2
    assert set(load_results(runs_dir, prompt="echo")["version"]) == {"1.0.0", "2.0.0"}
    newest = list_runs(runs_dir)[0]
    assert list(load_results(newest.path)["run_id"].unique()) == [newest.run_id]
    with pytest.raises(ConfigError, match="no runs of prompt 'nope'"):
        load_results(runs_dir, prompt="nope")
