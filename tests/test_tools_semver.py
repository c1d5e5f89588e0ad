"""Semver rules for tools (`lint --base`): which bump each tool change needs, and why."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from promptyard.release.semver import Bump, classify_change
from promptyard.spec import PromptSpec
from support.repo import PromptRepo, prompt_doc

LOOKUP: dict[str, Any] = {
    "name": "lookup_order",
    "description": "Look up an order.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "note": {"type": ["string", "null"]}},
        "required": ["order_id"],
    },
}
CANCEL: dict[str, Any] = {"name": "cancel_order", "parameters": {"type": "object"}}


def spec_and_data(**fields: Any) -> tuple[PromptSpec, dict[str, Any]]:
    data = yaml.safe_load(prompt_doc(**fields))
    return PromptSpec.model_validate(data), data


def tool_with(**changes: Any) -> dict[str, Any]:
    tool = copy.deepcopy(LOOKUP)
    tool.update(changes)
    return tool


def params_with(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


ORDER = {"order_id": {"type": "string"}, "note": {"type": ["string", "null"]}}


@pytest.mark.parametrize(
    ("new", "bump", "reason"),
    [
        ({"tools": [CANCEL]}, Bump.MAJOR, "tool 'lookup_order' was removed or renamed"),
        ({"tools": [tool_with(name="find_order")]}, Bump.MAJOR, "'lookup_order' was removed"),
        (
            {"tools": [tool_with(parameters=params_with({**ORDER, "sku": {}}, ["order_id", "sku"]))]},
            Bump.MAJOR,
            "required parameter 'sku' was added",
        ),
        (
            {"tools": [tool_with(parameters=params_with({**ORDER, "note": {"type": "string"}}, ["order_id"]))]},
            Bump.MAJOR,
            "parameter 'note' was narrowed",
        ),
        ({"tools": [LOOKUP], "tool_choice": "required"}, Bump.MAJOR, "auto -> required is stricter"),
        ({"tools": [LOOKUP, CANCEL]}, Bump.MINOR, "tool 'cancel_order' was added"),
        (
            {"tools": [tool_with(parameters=params_with({**ORDER, "sku": {}}, ["order_id"]))]},
            Bump.MINOR,
            "optional parameter 'sku' was added",
        ),
        ({"tools": [tool_with(description="Find an order.")]}, Bump.PATCH, "description text"),
    ],
)  # fmt: skip
def test_each_tool_change_needs_its_bump_and_says_why(
    new: dict[str, Any], bump: Bump, reason: str
) -> None:
    old_spec, old_data = spec_and_data(tools=[LOOKUP])
    new_spec, new_data = spec_and_data(**new)
    changes = classify_change(old_spec, old_data, {}, new_spec, new_data, {})
    assert changes[0].bump is bump, changes
    assert any(reason in change.reason for change in changes), changes


def test_lint_base_names_the_tool_rule_that_fired(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc(tools=[LOOKUP]))
    repo.commit("base")
    repo.git("branch", "base")
    repo.write("prompts/greet.yaml", prompt_doc(version="1.1.0", tools=[CANCEL]))
    result = repo.cli("lint", "--base", "base", "--format", "json")
    assert result.exit_code == 1
    [finding] = [f for f in result.json["findings"] if f["rule"] == "R003"]
    assert "needs a major bump" in finding["message"]
    assert "tool 'lookup_order' was removed or renamed" in finding["message"]
