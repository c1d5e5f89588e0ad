"""Recordings hold what is used: re-recording replaces, `recordings prune` removes the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.evals import API_KEY_ENV, BASE_URL_ENV, EVAL_CONFIG, echo_prompt, jsonl, text_cases
from support.openai_server import OpenAIServer
from support.repo import PromptRepo

RECORDINGS = "golden/recordings/echo.jsonl"
LATENCY_WARNS = "gates:\n  latency_p95: {action: warn}\n"
RUBRIC = [{"type": "llm-rubric", "value": "Is polite"}]


def version(number: str, suffix: str) -> str:
    """The echo prompt at `number`, its user message ending in `suffix` (so answers differ)."""
    doc = echo_prompt(asserts=RUBRIC, version=number)
    return doc.replace("'{{ text }}'", f"'{{{{ text }}}}{suffix}'")


def recorded(repo: PromptRepo, path: str = RECORDINGS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in repo.read(path).splitlines()]


def chat_answers(repo: PromptRepo) -> list[str]:
    return sorted(r["text"] for r in recorded(repo) if r["kind"] == "chat")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PromptRepo:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    # Latency is not what these tests check, and a loaded machine must not block their merges.
    repo = PromptRepo.create(tmp_path / "repo", EVAL_CONFIG + LATENCY_WARNS)
    repo.write("prompts/echo.yaml", version("1.0.0", ""))
    repo.write("golden/echo.jsonl", text_cases("a", "b"))
    return repo


def test_diff_record_replaces_so_only_base_and_head_answers_remain(
    project: PromptRepo, live: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert project.cli("eval", "--record").exit_code == 0
    project.commit("echo 1.0.0 with recordings")
    project.git("checkout", "-q", "-b", "shorter")
    # Two iterations of the change, each recorded for base and head.
    project.write("prompts/echo.yaml", version("1.1.0", "!"))
    first = project.cli("diff", "--base", "main", "--record")
    assert first.exit_code == 0, first.stderr
    assert chat_answers(project) == ["a", "a!", "b", "b!"]
    project.write("prompts/echo.yaml", version("1.2.0", "?"))
    second = project.cli("check", "--base", "main", "--record")
    assert second.exit_code == 0, second.stdout + second.stderr
    # The 1.1.0 answers are gone: no branch uses them (merging would have kept them).
    assert chat_answers(project) == ["a", "a?", "b", "b?"]
    rows = recorded(project)
    assert sorted(r["kind"] for r in rows) == ["chat"] * 4 + ["judge"] * 4
    sort_keys = [(r["dataset"], r["case"], r["repeat"], r["kind"], r["key"]) for r in rows]
    assert sort_keys == sorted(sort_keys)  # a stable order: a diff shows what moved

    # On the branch, both versions are in use: nothing to prune.
    in_use = project.cli("recordings", "prune", "--check")
    assert in_use.exit_code == 0, in_use.stdout
    assert "every recorded row is in use (working tree, HEAD or at the merge base with main)" in (
        in_use.stdout
    )
    project.commit("echo 1.2.0")

    # Merged: the base version's answers are used by nothing any more.
    project.git("checkout", "-q", "main")
    project.git("merge", "-q", "--ff-only", "shorter")
    before = project.read(RECORDINGS)
    check = project.cli("recordings", "prune", "--check")
    assert check.exit_code == 1
    assert f"{RECORDINGS}: would remove 4 of 8 row(s)" in check.stdout
    assert (
        "chat golden/echo.jsonl c0" in check.stdout and "judge golden/echo.jsonl c1" in check.stdout
    )
    assert project.read(RECORDINGS) == before  # --check writes nothing
    pruned = project.cli("recordings", "prune", "--format", "json")
    assert pruned.exit_code == 0
    report = pruned.json
    assert report["unused"] == 4 and report["written"] is True
    assert report["files"][0]["removed_file"] is False
    assert chat_answers(project) == ["a?", "b?"]
    assert project.cli("recordings", "prune", "--check").exit_code == 0
    # What is left answers every request of the version in use, offline.
    monkeypatch.delenv(BASE_URL_ENV)
    replay = project.cli("eval", "--offline", "--no-cache", "--format", "json")
    assert replay.exit_code == 0, replay.stdout
    assert replay.json["runs"][0]["errors"] == 0 and replay.json["runs"][0]["passed"] == 2


def test_a_live_rerecording_of_unchanged_answers_changes_no_byte(
    project: PromptRepo, live: OpenAIServer
) -> None:
    assert project.cli("eval", "--record").exit_code == 0
    before = project.read(RECORDINGS)
    live.set_latency(30)  # a different latency, the same answers
    again = project.cli("eval", "--record", "--no-cache")
    assert again.exit_code == 0
    assert len(live.chat_requests()) == 8  # asked again: 2 answers + 2 judge calls, twice
    assert project.read(RECORDINGS) == before


def test_prune_removes_recordings_of_prompts_that_exist_nowhere(
    project: PromptRepo, live: OpenAIServer
) -> None:
    assert project.cli("eval", "--record").exit_code == 0
    row = recorded(project)[0]
    project.write("golden/recordings/gone/old.jsonl", jsonl([row]))
    project.commit("recordings")
    runs = sorted((project.root / ".promptyard/runs").iterdir())
    result = project.cli("recordings", "prune")
    assert result.exit_code == 0
    assert "golden/recordings/gone/old.jsonl: removed 1 of 1 row(s) (the whole file)" in (
        result.stdout
    )
    assert not (project.root / "golden/recordings/gone/old.jsonl").exists()
    assert len(recorded(project)) == 4  # the echo prompt's rows are all in use
    # The replay leaves no run behind in .promptyard/runs.
    assert sorted((project.root / ".promptyard/runs").iterdir()) == runs


def test_prune_keeps_every_repeat_that_was_recorded(
    project: PromptRepo, live: OpenAIServer
) -> None:
    assert project.cli("eval", "--record", "--repeat", "2").exit_code == 0
    project.commit("recorded with 2 repeats")
    # 2 repeats × 2 cases answered; the judge asks the same for the same answer: 2 rows
    assert sorted((r["kind"], r["repeat"]) for r in recorded(project)) == [
        ("chat", 0), ("chat", 0), ("chat", 1), ("chat", 1), ("judge", 0), ("judge", 0)
    ]  # fmt: skip
    assert project.cli("recordings", "prune", "--check").exit_code == 0


def test_prune_bad_input(project: PromptRepo) -> None:
    project.commit("echo")
    unknown = project.cli("recordings", "prune", "--base", "nope")
    assert unknown.exit_code == 2 and "unknown git ref 'nope'" in unknown.stderr
    project.write(RECORDINGS, '{"key": "abc", "kind": "chat"}\n')
    broken = project.cli("recordings", "prune")
    assert broken.exit_code == 2
    assert f"{RECORDINGS}:1: `key` must be the request's sha256" in broken.stderr
    assert "Traceback" not in broken.stderr
