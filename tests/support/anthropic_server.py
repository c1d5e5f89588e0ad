"""A local server speaking Anthropic's Messages API, for tests and benchmarks.

Real HTTP on 127.0.0.1, so the official `anthropic` SDK is driven exactly as against
api.anthropic.com. It shares the OpenAI test server's machinery (request log, fault
injection, latency, subprocess mode): see tests/support/openai_server.py for the markers
and the `/_control/*` endpoints. Standard library only.

`POST /v1/messages` checks what the real API checks that promptyard's mapping could get
wrong, answering 400 `invalid_request_error` otherwise: `model` and `max_tokens` present,
`messages` a non-empty list of `user` / `assistant` turns that alternate and start with
`user`, no `system` role inside it, every `tool_result` answering a `tool_use` of the turn
before, and a named `tool_choice` naming a declared tool.

Replies are deterministic and computed from the request:

- a judge request (the `llm-rubric` text in `system`) gets `{"pass", "score", "reason"}`;
- `[[reply:TEXT]]` anywhere: the text is exactly TEXT; else the last user text, echoed;
- with `tools` (and `tool_choice` not `none`): each `[[tool:NAME {json}]]` is a `tool_use`
  block; without a marker, `tool_choice` `any` calls the first tool and a named choice that
  tool, with input `{"reply": <echo>}` (how a forced structured-output tool gets its answer);
- `[[refusal:TEXT]]`: stop_reason `refusal` with TEXT;
- more words than `max_tokens`: cut to `max_tokens` words, stop_reason `max_tokens`;
- usage: words in (system and messages) and words out.

Faults (`[[fault:KIND]]`, `X-Fault`, `add_fault`): `429` (rate_limit_error), `529`
(overloaded_error), `503`, `500` (api_error), all with `retry-after`; `400`
(invalid_request_error), `401` (authentication_error), `404`, `slow`, `malformed`, `drop`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.openai_server import (  # runnable as a script too: after the path
    _REPLY,
    _TOOL,
    JUDGE_SIGNATURE,
    OpenAIServer,
    OpenAIServerProcess,
    RecordedRequest,
    _Handler,
    count_tokens,
    default_refusal,
    judge_reply,
    main,
    strip_markers,
)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


class InvalidRequest(Exception):
    """The request breaks a rule of the Messages API (answered with a 400)."""


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        return _block_text(block.get("content"))
    return ""


def content_text(content: Any) -> str:
    """A message's `content` (a string or a list of blocks) as text."""
    if isinstance(content, list):
        return " ".join(_block_text(b) for b in content)
    return _block_text(content)


def _blocks(content: Any) -> list[dict[str, Any]]:
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def validate(body: dict[str, Any]) -> None:
    """Raise InvalidRequest as the Messages API would."""
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise InvalidRequest(f"{name}: Field required")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: at least one message is required")
    previous_tool_uses: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise InvalidRequest(
                f"messages.{index}.role: Input should be 'user' or 'assistant' (system prompts "
                "go in the top-level `system` parameter)"
            )
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            raise InvalidRequest(f"messages.{index}: roles must alternate, starting with user")
        blocks = _blocks(message.get("content"))
        for block in blocks:
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in (
                previous_tool_uses
            ):
                raise InvalidRequest(
                    f"messages.{index}: tool_result {block.get('tool_use_id')!r} has no "
                    "tool_use in the previous message"
                )
        previous_tool_uses = {str(b.get("id")) for b in blocks if b.get("type") == "tool_use"}
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    named = (
        choice.get("name") if isinstance(choice, dict) and choice.get("type") == "tool" else None
    )
    if named is not None and named not in {t.get("name") for t in tools}:
        raise InvalidRequest(f"tool_choice names {choice.get('name')!r}: no such tool")


def _everything(body: dict[str, Any]) -> str:
    system = content_text(body.get("system"))
    return "\n".join([system, *(content_text(m.get("content")) for m in body["messages"])])


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body["messages"]):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def _tool_uses(body: dict[str, Any], echo: str, everything: str) -> list[dict[str, Any]]:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return []
    calls = []
    for name, raw in _TOOL.findall(everything):
        try:
            calls.append((name, json.loads(raw.strip() or "{}")))
        except ValueError:
            calls.append((name, {"_unparsed": raw}))
    if not calls and choice.get("type") == "any":
        calls = [(str(tools[0].get("name")), {"reply": echo})]
    elif not calls and choice.get("type") == "tool":
        calls = [(str(choice.get("name")), {"reply": echo})]
    return [
        {
            "type": "tool_use",
            "id": f"toolu_{index}_"
            + hashlib.sha256(json.dumps(arguments).encode()).hexdigest()[:12],
            "name": name,
            "input": arguments,
        }
        for index, (name, arguments) in enumerate(calls)
    ]


def default_message(body: dict[str, Any]) -> dict[str, Any]:
    """The Messages API answer for a valid request: see the module docstring."""
    everything = _everything(body)
    input_tokens = count_tokens(everything)
    if JUDGE_SIGNATURE in content_text(body.get("system")):
        judged = {"messages": [{"role": "user", "content": everything}]}
        text, uses, stop = judge_reply(judged), [], "end_turn"
    else:
        forced = _REPLY.search(everything)
        echo = strip_markers(_last_user_text(body))
        text = forced.group(1) if forced else echo
        uses = _tool_uses(body, echo, everything)
        refusal = default_refusal({"messages": [{"role": "user", "content": everything}]})
        stop = "tool_use" if uses else "end_turn"
        if refusal is not None:
            text, uses, stop = refusal, [], "refusal"
        elif uses:
            text = ""
    words = text.split()
    limit = body.get("max_tokens")
    if isinstance(limit, int) and len(words) > limit:
        text, stop = " ".join(words[:limit]), "max_tokens"
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += uses
    output_tokens = count_tokens(text) + sum(count_tokens(json.dumps(u["input"])) for u in uses)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
    return {
        "id": f"msg_{digest}",
        "type": "message",
        "role": "assistant",
        "model": str(body.get("model")),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


class _AnthropicHandler(_Handler):
    def _error(
        self, status: int, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        error_type = ERROR_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": error_type, "message": message}}
        self._json(status, body, headers)

    def _fault(self, kind: str, record: RecordedRequest) -> bool:
        if kind in ("429", "503", "529", "500"):
            record.status = int(kind)
            retry = {"retry-after": f"{self.server.state.retry_after_s:g}"}
            self._error(int(kind), f"injected {ERROR_TYPES[int(kind)]}", "", retry)
            return True
        return super()._fault(kind, record)

    def _route(self, record: RecordedRequest, body: dict[str, Any]) -> None:
        if urlsplit(self.path).path != "/v1/messages":
            record.status = 404
            self._error(404, f"no route {self.path}", "")
            return
        try:
            validate(body)
        except InvalidRequest as exc:
            record.status = 400
            self._error(400, str(exc), "")
            return
        record.status = 200
        self._json(200, self.server.state.reply(body))


class AnthropicServer(OpenAIServer):
    """The server in a background thread: `anthropic.Anthropic(base_url=server.base_url)`."""

    handler = _AnthropicHandler

    def __init__(self, reply: Any = None, **options: Any) -> None:
        super().__init__(reply or default_message, **options)

    @property
    def base_url(self) -> str:
        """What an Anthropic client takes as `base_url` (the SDK adds /v1/messages)."""
        return self.url

    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if urlsplit(r.path).path == "/v1/messages"]


class AnthropicServerProcess(OpenAIServerProcess):
    """The same server in a child process (its CPU off this interpreter): for benchmarks."""

    script = __file__

    @property
    def base_url(self) -> str:
        return self.url


if __name__ == "__main__":
    main(server_class=AnthropicServer)
