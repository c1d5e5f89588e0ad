"""File formats: generated JSON Schemas stay in sync and valid; validation errors are useful."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from promptyard.spec import SCHEMAS, PromptSpec, json_schema, json_schema_text, spec_problems
from support.repo import PromptRepo, prompt_doc

SCHEMA_DIR = Path(__file__).parents[1] / "tools" / "promptyard" / "schemas"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_matches_the_model(name: str) -> None:
    committed = SCHEMA_DIR / f"{name}.json"
    assert committed.read_text() == json_schema_text(name), (
        f"{committed} is stale; regenerate it from the model (json_schema_text)"
    )


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema(name))


def test_schema_accepts_design_example_and_rejects_typos() -> None:
    validator = jsonschema.Draft202012Validator(json_schema("prompt"))
    good = {
        "name": "support-reply",
        "version": "2.1.0",
        "x-team": "support",
        "model": {"provider": "default", "name": "gpt-4o-mini", "parameters": {"temperature": 0.2}},
        "inputs": {"ticket": {"type": "string"}},
        "messages": [{"role": "user", "content": "{{ ticket }}"}],
        "output": {"format": "json", "schema": {"type": "object"}},
        "evals": [{"dataset": "golden/x.jsonl", "assert": [{"type": "is-json"}], "threshold": 0.9}],
    }
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({**good, "descripton": "typo"}))
    assert list(validator.iter_errors({**good, "version": "2.1"}))


def problems_for(data: dict) -> list:
    with pytest.raises(ValidationError) as info:
        PromptSpec.model_validate(data)
    return spec_problems(PromptSpec, data, info.value)


def test_unknown_field_suggests_the_right_name_at_any_depth() -> None:
    import yaml

    data = yaml.safe_load(prompt_doc())
    data["model"]["paramters"] = {}
    [problem] = problems_for(data)
    assert problem.code == "S001"
    assert problem.loc == ("model", "paramters")
    assert "did you mean 'parameters'?" in problem.message


def test_extension_keys_are_allowed_everywhere_models_are() -> None:
    import yaml

    data = yaml.safe_load(prompt_doc())
    data["x-owner-slack"] = "#prompts"
    data["model"]["x-note"] = "tuned"
    assert PromptSpec.model_validate(data).name == "greet"


def test_bad_semver_and_missing_field_get_their_own_codes() -> None:
    import yaml

    data = yaml.safe_load(prompt_doc(version="v1.0"))
    del data["messages"]
    codes = {p.code: p.message for p in problems_for(data)}
    assert "not a semver version" in codes["V001"]
    assert "missing required field 'messages'" in codes["S003"]


def test_schema_command_prints_the_committed_schema(repo: PromptRepo) -> None:
    result = repo.cli("schema", "environment")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads((SCHEMA_DIR / "environment.json").read_text())
    assert repo.cli("schema", "nope").exit_code == 2
