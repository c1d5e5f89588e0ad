"""Rules about a prompt's tools and structured output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from promptyard.lint.context import LintContext, schema_error
from promptyard.lint.registry import Hit, rule
from promptyard.repo.snapshot import LoadedPrompt
from promptyard.templates import analyze_template


@rule("T004", kind="prompt")
def invalid_tool_parameters(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    for index, tool in enumerate(prompt.model.tools):
        error = schema_error(tool.parameters)
        if error is None and tool.parameters.get("type") != "object":
            error = "arguments are an object: give it `type: object` and `properties`"
        if error is not None:
            yield (
                prompt.path,
                prompt.document.locate(("tools", index, "parameters")),
                f"tools[{index}] ({tool.name}): parameters is not a valid JSON Schema of "
                f"arguments: {error}",
            )


@rule("T005", kind="prompt")
def undeclared_tool_variable(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    declared = set(prompt.model.inputs)
    for index, tool in enumerate(prompt.model.tools):
        info = analyze_template(tool.description)
        problem = info.error or next(
            (f"it uses {{{{ {name} }}}}, which `inputs` does not declare"
             for name in sorted(set(info.variables) - declared)),
            None,
        )  # fmt: skip
        if problem:
            yield (
                prompt.path,
                prompt.document.locate(("tools", index, "description")),
                f"tools[{index}] ({tool.name}) description: {problem}",
            )


def strict_mode_break(schema: Any, path: str = "$") -> str | None:
    """Where `schema` is not acceptable for strict structured output, and why, or None.

    Strict mode (OpenAI's, which other providers follow) needs every object closed
    (`additionalProperties: false`) and every property listed in `required`.
    """
    if isinstance(schema, list):
        for index, item in enumerate(schema):
            found = strict_mode_break(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if not isinstance(schema, dict):
        return None
    is_object = schema.get("type") == "object" or "properties" in schema
    if is_object:
        if schema.get("additionalProperties") is not False:
            return f"{path} is an object without `additionalProperties: false`"
        missing = sorted(set(schema.get("properties", {})) - set(schema.get("required", [])))
        if missing:
            return f"{path} does not list {', '.join(missing)} under `required`"
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            for name, sub in value.items():
                found = strict_mode_break(sub, f"{path}.{key}.{name}")
                if found:
                    return found
        elif key in ("items", "anyOf", "allOf", "oneOf", "prefixItems"):
            found = strict_mode_break(value, f"{path}.{key}")
            if found:
                return found
    return None


@rule("T006", kind="prompt")
def not_strict_schema(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    output = prompt.model.output
    if output is not None and output.strict and output.schema_ is not None:
        found = strict_mode_break(output.schema_)
        if found:
            yield (
                prompt.path,
                prompt.document.locate(("output", "schema")),
                f"output.strict: {found}; strict mode needs every object closed and every "
                "property required (make optional ones nullable instead)",
            )
    for index, tool in enumerate(prompt.model.tools):
        found = strict_mode_break(tool.parameters) if tool.strict else None
        if found:
            yield (
                prompt.path,
                prompt.document.locate(("tools", index, "parameters")),
                f"tools[{index}] ({tool.name}) is strict but {found}; close every object and "
                "require every property",
            )
