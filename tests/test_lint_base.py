"""`lint --base REF`: semver rules per changed prompt, and only the change is checked."""

from __future__ import annotations

import pytest

from promptyard.release.semver import (
    EQUAL,
    INCOMPATIBLE,
    NARROWER,
    WIDER,
    schema_relation,
)
from support.repo import PromptRepo, prompt_doc

BASE_INPUTS = {"who": {"type": "string"}, "tone": {"type": "string", "default": "warm"}}
BASE_MESSAGES = [{"role": "user", "content": "Hi {{ who }} ({{ tone }})"}]


def base_prompt(**overrides) -> str:
    fields = {"inputs": BASE_INPUTS, "messages": BASE_MESSAGES} | overrides
    return prompt_doc(**fields)


@pytest.fixture
def based(repo: PromptRepo) -> PromptRepo:
    repo.write("prompts/greet.yaml", base_prompt())
    repo.write("prompts/partials/sig.j2", "-- the team")
    repo.commit("base")
    repo.git("branch", "base")
    return repo


def base_findings(repo: PromptRepo) -> dict[str, dict]:
    result = repo.cli("lint", "--base", "base", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    return {f["rule"]: f for f in result.json["findings"]}


def test_unchanged_prompt_passes(based: PromptRepo) -> None:
    assert base_findings(based) == {}


def test_content_change_without_bump(based: PromptRepo) -> None:
    based.write(
        "prompts/greet.yaml",
        base_prompt(messages=[{"role": "user", "content": "Hello {{ who }} ({{ tone }})"}]),
    )
    finding = base_findings(based)["R001"]
    assert finding["line"] == 2
    assert "message text changed" in finding["message"]
    assert "at least 1.0.1 (patch)" in finding["message"]


@pytest.mark.parametrize(
    ("change", "needed"),
    [
        (
            {
                "inputs": {**BASE_INPUTS, "city": {"type": "string"}},
                "messages": [{"role": "user", "content": "Hi {{ who }} ({{ tone }}) {{ city }}"}],
            },
            "major",
        ),
        ({"inputs": {"who": {"type": "string"}, "tone": {"type": "string"}}}, "major"),
        (
            {"inputs": {"who": {"type": "string", "maxLength": 20}, "tone": BASE_INPUTS["tone"]}},
            "major",
        ),
        ({"output": {"format": "json"}}, "major"),
        (
            {
                "inputs": {**BASE_INPUTS, "city": {"type": "string", "default": ""}},
                "messages": [{"role": "user", "content": "Hi {{ who }} ({{ tone }}) {{ city }}"}],
            },
            "minor",
        ),
        (
            {
                "model": {
                    "provider": "default",
                    "name": "test-model",
                    "parameters": {"temperature": 1},
                }
            },
            "minor",
        ),
        ({"inputs": {"who": {"type": ["string", "null"]}, "tone": BASE_INPUTS["tone"]}}, "minor"),
    ],
)
def test_patch_bump_is_too_small_for_bigger_changes(based: PromptRepo, change, needed) -> None:
    based.write("prompts/greet.yaml", base_prompt(version="1.0.1", **change))
    finding = base_findings(based)["R003"]
    assert f"needs a {needed} bump" in finding["message"]
    expected_next = {"major": "2.0.0", "minor": "1.1.0"}[needed]
    assert f"use {expected_next}" in finding["message"]


def test_enough_bump_passes(based: PromptRepo) -> None:
    based.write(
        "prompts/greet.yaml",
        base_prompt(
            version="2.0.0",
            inputs={"who": {"type": "string"}},
            messages=[{"role": "user", "content": "Hi {{ who }}"}],
        ),
    )
    assert base_findings(based) == {}


def test_version_lowered_and_bump_without_change(based: PromptRepo) -> None:
    based.write("prompts/greet.yaml", base_prompt(version="0.9.0"))
    assert "went down from 1.0.0 to 0.9.0" in base_findings(based)["R002"]["message"]
    based.write("prompts/greet.yaml", base_prompt(version="1.0.1"))
    finding = base_findings(based)["R004"]
    assert finding["severity"] == "warning"


def test_partial_change_marks_dependents(based: PromptRepo) -> None:
    based.write(
        "prompts/greet.yaml",
        base_prompt(
            messages=[
                {"role": "user", "content": 'Hi {{ who }} ({{ tone }}){% include "sig.j2" %}'}
            ],
            version="1.0.1",
        ),
    )
    based.commit("use the partial")
    based.git("branch", "-f", "base")
    based.write("prompts/partials/sig.j2", "-- the support team")
    finding = base_findings(based)["R001"]
    assert finding["file"] == "prompts/greet.yaml"
    assert "partial 'sig.j2' changed" in finding["message"]


def test_only_changed_files_are_checked(based: PromptRepo) -> None:
    # A pre-existing problem elsewhere is not this change's business...
    based.write("prompts/legacy.yaml", prompt_doc(name="wrong-name"))
    based.commit("legacy problem")
    based.git("branch", "-f", "base")
    assert base_findings(based) == {}
    # ...but a dataset edit is checked against the prompts that use it, even unchanged ones.
    based.write(
        "prompts/greet.yaml",
        base_prompt(evals=[{"dataset": "golden/g.jsonl", "assert": [{"type": "is-json"}]}]),
    )
    based.write("golden/g.jsonl", '{"id": "a", "vars": {"who": "A"}}\n')
    based.commit("dataset")
    based.git("branch", "-f", "base")
    based.write("golden/g.jsonl", '{"id": "a", "vars": {"name": "A"}}\n')
    result = based.cli("lint", "--base", "base", "--format", "json")
    messages = sorted(f["message"] for f in result.json["findings"] if f["rule"] == "D004")
    assert {f["rule"] for f in result.json["findings"]} == {"D004"}
    assert "missing required variable 'who'" in messages[0]
    assert "unknown variable 'name'" in messages[1]


def test_new_prompt_and_uncommitted_files_are_seen(based: PromptRepo) -> None:
    based.write("prompts/fresh.yaml", prompt_doc(name="fresh", version="not-semver"))
    assert base_findings(based)["V001"]["file"] == "prompts/fresh.yaml"


def test_base_is_the_merge_base(based: PromptRepo) -> None:
    """The base branch moving ahead must not make this branch look like it reverted it."""
    based.git("checkout", "-b", "feature")
    based.write("prompts/other.yaml", prompt_doc(name="other"))
    based.commit("feature work")
    based.git("checkout", "base")
    based.write(
        "prompts/greet.yaml",
        base_prompt(
            version="1.1.0", messages=[{"role": "user", "content": "Yo {{ who }} ({{ tone }})"}]
        ),
    )
    based.commit("base moves on")
    based.git("checkout", "feature")
    assert base_findings(based) == {}


def test_unknown_base_exits_2(based: PromptRepo) -> None:
    result = based.cli("lint", "--base", "origin/nope")
    assert result.exit_code == 2
    assert "unknown git ref 'origin/nope'" in result.stderr
    assert "fetch-depth: 0" in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "relation"),
    [
        ({"type": "string"}, {"type": "string", "description": "x"}, EQUAL),
        ({"type": "string"}, {"type": ["string", "null"]}, WIDER),
        ({"type": "string"}, {"type": "string", "enum": ["a"]}, NARROWER),
        ({"type": "integer", "maximum": 5}, {"type": "integer", "maximum": 9}, WIDER),
        ({"type": "string"}, {"type": "integer"}, INCOMPATIBLE),
        ({"type": "array", "items": {"type": "string"}}, {"type": "array"}, WIDER),
    ],
)
def test_schema_relation(old, new, relation) -> None:
    assert schema_relation(old, new) == relation


def test_a_change_cannot_silence_rules_for_itself(based: PromptRepo) -> None:
    based.write(
        "prompts/greet.yaml",
        base_prompt(messages=[{"role": "user", "content": "Hello {{ who }} ({{ tone }})"}]),
    )
    based.write(
        "promptyard.yaml",
        based.root.joinpath("promptyard.yaml").read_text() + "lint:\n  ignore: [R001]\n",
    )
    assert "R001" in base_findings(based)  # the base's (empty) ignore list applies
    based.commit("ignore R001")
    based.git("branch", "-f", "base")
    based.write(
        "prompts/greet.yaml",
        base_prompt(messages=[{"role": "user", "content": "Hey {{ who }} ({{ tone }})"}]),
    )
    assert "R001" not in base_findings(based)  # once merged, the team's choice holds
