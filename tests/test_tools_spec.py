"""Tools, tool choice and strict structured output in the prompt spec: lint and render."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from promptyard.render import render_prompt
from promptyard.repo.workspace import Workspace
from support.repo import PromptRepo, prompt_doc
from support.tools import CANCEL, lookup_tool

LOOKUP = lookup_tool("Look up an order of {{ who }}.")
STRICT_OUTPUT = {
    "format": "json",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
        "required": ["city", "zip"],
        "additionalProperties": False,
    },
}


def lint(repo: PromptRepo, **fields: Any) -> list[dict]:
    repo.write("prompts/greet.yaml", prompt_doc(**fields))
    result = repo.cli("lint", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    return [f for f in result.json["findings"] if f["severity"] == "error"]


def test_tools_and_strict_output_lint_clean_and_render(repo: PromptRepo) -> None:
    assert (
        lint(repo, tools=[LOOKUP, CANCEL], tool_choice="lookup_order", output=STRICT_OUTPUT) == []
    )
    rendered = render_prompt(Workspace(repo.root).snapshot().prompt("greet"), {"who": "Ann"})
    assert rendered.tools[0] == {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look up an order of Ann.",
            "parameters": LOOKUP["parameters"],
            "strict": True,
        },
    }
    assert "strict" not in rendered.tools[1]["function"]
    assert rendered.tool_choice == {"type": "function", "function": {"name": "lookup_order"}}
    assert rendered.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "greet", "schema": STRICT_OUTPUT["schema"], "strict": True},
    }
    assert rendered.to_dict()["tools"] == rendered.tools


def test_a_prompt_without_tools_sends_no_tool_fields(repo: PromptRepo) -> None:
    assert lint(repo) == []
    rendered = render_prompt(Workspace(repo.root).snapshot().prompt("greet"), {"who": "Ann"})
    assert (rendered.tools, rendered.tool_choice, rendered.response_format) == ([], None, None)


@pytest.mark.parametrize(
    ("fields", "code", "expected"),
    [
        ({"tools": [{**CANCEL, "name": "cancel order"}]}, "T003", "not a valid function name"),
        (
            {"tools": [CANCEL, copy.deepcopy(CANCEL)]},
            "T001",
            "tools[1] repeats the tool name 'cancel_order'",
        ),
        ({"tools": [CANCEL], "tool_choice": "lookup"}, "T002", "nor a declared tool"),
        ({"tool_choice": "required"}, "T002", "needs tools"),
        (
            {"tools": [{**CANCEL, "parameters": {"type": "objekt"}}]},
            "T004",
            "parameters is not a valid JSON Schema",
        ),
        ({"tools": [{**CANCEL, "parameters": {"type": "string"}}]}, "T004", "type: object"),
        (
            {"tools": [{**CANCEL, "description": "For {{ customer }}"}]},
            "T005",
            "{{ customer }}",
        ),
        ({"tools": [{**CANCEL, "strict": True}]}, "T006", "$ is an object without"),
        (
            {
                "output": {
                    **STRICT_OUTPUT,
                    "schema": {**STRICT_OUTPUT["schema"], "required": ["city"]},
                }
            },
            "T006",
            "$ does not list zip under `required`",
        ),
        ({"output": {"format": "json", "strict": True}}, "S002", "needs output.schema"),
    ],
)
def test_bad_tools_are_located_errors(
    repo: PromptRepo, fields: dict[str, Any], code: str, expected: str
) -> None:
    errors = lint(repo, **fields)
    hits = [f for f in errors if f["rule"] == code]
    assert hits, errors
    assert expected in hits[0]["message"]
    assert hits[0]["file"] == "prompts/greet.yaml" and hits[0]["line"] > 1


def test_strict_break_names_the_nested_path(repo: PromptRepo) -> None:
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {}}}},
        "required": ["items"],
        "additionalProperties": False,
    }
    errors = lint(repo, output={"format": "json", "strict": True, "schema": schema})
    assert [f["rule"] for f in errors] == ["T006"]
    assert "$.properties.items.items is an object without" in errors[0]["message"]


def test_tools_are_part_of_the_content_hash(repo: PromptRepo) -> None:
    repo.write("prompts/greet.yaml", prompt_doc(tools=[CANCEL]))
    before = Workspace(repo.root).snapshot().prompt("greet").require_hash()
    repo.write("prompts/greet.yaml", prompt_doc(tools=[{**CANCEL, "strict": True}]))
    assert Workspace(repo.root).snapshot().prompt("greet").require_hash() != before
