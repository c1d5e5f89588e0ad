"""The tools the tool-calling tests give their prompts (spec form: name, description,
parameters), so the suites agree on what `lookup_order` and `cancel_order` take."""

from __future__ import annotations

from typing import Any

# `cancel_order`: one optional string `order_id`; no description variables, not strict.
CANCEL = {
    "name": "cancel_order",
    "description": "Cancel an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
}


def lookup_tool(
    description: str, *, strict: bool = True, order_id: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`lookup_order`: one required `order_id` (a string unless `order_id` says otherwise)
    and nothing else. `description` may use the prompt's variables."""
    tool: dict[str, Any] = {
        "name": "lookup_order",
        "description": description,
        "parameters": {
            "type": "object",
            "properties": {"order_id": order_id or {"type": "string"}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
    }
    if strict:
        tool["strict"] = True
    return tool
