"""Conversation inputs: an input declared `{type: messages}` holds chat turns as data.

A prompt splices such an input into its conversation with a message entry
`{history: NAME}`; a golden case (or a registry/gateway caller) gives the turns so far in
OpenAI's chat format. The turns are data: they are validated, never rendered.

`{type: messages}` is promptyard's extension of JSON Schema: wherever the inputs are
validated, it stands for `CHAT_MESSAGES_SCHEMA`, so a bad turn is reported like any other
bad variable, with its path (`variable 'history'[2]['role']: 'robot' is not one of ...`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptyard.spec.prompt import MESSAGES_TYPE

CHAT_ROLES = ("system", "user", "assistant", "tool")

_TEXT_PART = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
}
_IMAGE_PART = {
    "type": "object",
    "required": ["type", "image_url"],
    "properties": {
        "type": {"const": "image_url"},
        "image_url": {
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "pattern": "^(https?://|data:image/)"},
                "detail": {"enum": ["auto", "low", "high"]},
            },
        },
    },
}
_TOOL_CALL = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "arguments": {"type": "string"},
            },
        },
    },
}

CHAT_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": list(CHAT_ROLES)},
        "content": {
            "type": ["string", "array", "null"],
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": ["text", "image_url"]}},
                "allOf": [
                    {"if": {"properties": {"type": {"const": "text"}}}, "then": _TEXT_PART},
                    {
                        "if": {"properties": {"type": {"const": "image_url"}}},
                        "then": _IMAGE_PART,
                    },
                ],
            },
        },
        "name": {"type": "string"},
        "tool_calls": {"type": "array", "items": _TOOL_CALL, "minItems": 1},
        "tool_call_id": {"type": "string", "minLength": 1},
    },
    "additionalProperties": False,
    "allOf": [
        {  # a tool result answers one call
            "if": {"properties": {"role": {"const": "tool"}}},
            "then": {"required": ["tool_call_id", "content"]},
        },
        {  # only the assistant calls tools; only a tool message answers one
            "if": {"properties": {"role": {"not": {"const": "assistant"}}}},
            "then": {"properties": {"tool_calls": False}},
        },
        {
            "if": {"properties": {"role": {"not": {"const": "tool"}}}},
            "then": {"properties": {"tool_call_id": False}},
        },
        {  # an assistant turn says something or calls something
            "if": {"properties": {"role": {"const": "assistant"}}},
            "then": {"anyOf": [{"required": ["tool_calls"]}, {"required": ["content"]}]},
            "else": {"required": ["content"]},
        },
    ],
}
CHAT_MESSAGES_SCHEMA: dict[str, Any] = {"type": "array", "items": CHAT_MESSAGE_SCHEMA}


def is_messages_input(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == MESSAGES_TYPE


def as_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An input's schema as plain JSON Schema (`{type: messages}` expanded)."""
    if not is_messages_input(schema):
        return dict(schema)
    return {**{k: v for k, v in schema.items() if k != "type"}, **CHAT_MESSAGES_SCHEMA}


def messages_inputs(inputs: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The names of the inputs declared `{type: messages}`."""
    return {name for name, schema in inputs.items() if is_messages_input(schema)}


def display_text(message: Mapping[str, Any]) -> str:
    """A chat message as text for people (`render`, the results viewer): text parts as
    they are, an image as `[image image/png, 1,234 bytes]` (or its URL), each tool call as
    `→ name(arguments)`, a tool result prefixed with the call it answers."""
    content = message.get("content")
    pieces: list[str] = []
    if isinstance(content, str):
        pieces.append(content.rstrip("\n"))
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text":
                pieces.append(str(part.get("text", "")).rstrip("\n"))
            elif part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                pieces.append(_image_label(url))
    for call in message.get("tool_calls") or []:
        function = (call.get("function") or {}) if isinstance(call, Mapping) else {}
        pieces.append(f"→ {function.get('name', '?')}({function.get('arguments', '')})")
    text = "\n".join(pieces)
    if message.get("tool_call_id"):
        text = f"(result of {message['tool_call_id']}) {text}"
    return text


def _image_label(url: str) -> str:
    if not url.startswith("data:"):
        return f"[image {url}]"
    header, _, payload = url.partition(",")
    size = len(payload) * 3 // 4 - payload[-2:].count("=")
    return f"[image {header[5:].split(';')[0]}, {size:,} bytes]"
