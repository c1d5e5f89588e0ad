"""What an upstream answered: the first choice's text and tool calls, from a JSON chat
completion or assembled from a stream's server-sent events (online checks and capture)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def chat_answer(body: bytes) -> tuple[str, list[dict[str, Any]]]:
    """The first choice's text and tool calls of a chat completion: from a JSON body, or
    assembled from the deltas of SSE events (content joined; each tool call, by `index`,
    its id, name and argument fragments joined)."""
    stripped = body.lstrip()
    if stripped.startswith(b"{"):
        try:
            message = json.loads(stripped)["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            return "", []
        if not isinstance(message, dict):
            return "", []
        calls = message.get("tool_calls")
        listed = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
        return content_text(message.get("content")), listed
    parts: list[str] = []
    assembled: dict[int, dict[str, Any]] = {}
    for line in body.splitlines():
        if not line.startswith(b"data:"):
            continue
        try:
            data = json.loads(line[5:])
            for choice in data.get("choices") or []:
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                parts.append(content_text(delta.get("content")))
                for fragment in delta.get("tool_calls") or []:
                    _add_tool_call(assembled, fragment)
        except (ValueError, TypeError, AttributeError):
            continue
    return "".join(parts), [assembled[i] for i in sorted(assembled)]


def _add_tool_call(assembled: dict[int, dict[str, Any]], fragment: dict[str, Any]) -> None:
    index = fragment.get("index", len(assembled))
    call = assembled.setdefault(
        int(index), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
    )
    call["id"] = fragment.get("id") or call["id"]
    function = fragment.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


def content_text(content: Any) -> str:
    """A message's content as text (the text parts of a content-part list)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""
