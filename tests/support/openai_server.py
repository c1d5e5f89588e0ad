"""A local OpenAI-compatible HTTP server for tests, scripts and benchmarks.

Real HTTP on 127.0.0.1 (a free port), so the official `openai` client is driven exactly as
it would be against OpenAI, vLLM or Ollama. Standard library only.

Endpoints: `POST /v1/chat/completions` (JSON mode, `stream: true` as SSE, `usage`),
`POST /v1/embeddings` (float or base64), `GET /v1/models`, and `/_control/*` for a server
running in another process (`GET /_control/requests`, `POST /_control/reset`,
`POST /_control/faults` with `{kind, times?, match?}`, `POST /_control/config` with any of
`latency_s`, `retry_after_s`, `slow_s`).

Replies are deterministic and computed from the request (see `default_reply`):

- `[[reply:TEXT]]` anywhere in the messages: the reply is exactly TEXT;
- `[[reply@MODEL:TEXT]]`: the same, only when the request's `model` is MODEL (so two
  models answer the same messages differently; it wins over `[[reply:TEXT]]`);
- JSON mode (`response_format`): `{"reply": <last user message>}`;
- otherwise: the last user message, echoed (markers removed), followed by
  `[saw N image(s): image/png sha256:…; https://…]` when the request carries image parts.

Requests are checked like OpenAI checks them (`messages_problem`): a bad role, a malformed
content part, a data: image whose bytes are not its declared type, or a tool message without
`tool_call_id` is a 400 `invalid_request_error`.
- a judge request (the `llm-rubric` system prompt) gets `{"pass", "score", "reason"}`:
  pass with score 1 unless the request contains `[[judge:fail]]` or `[[judge:0.3]]`.

Tool calls (see `default_tool_calls`), only when the request declares `tools` and
`tool_choice` is not `none`: each `[[tool:NAME ARGUMENTS]]` in the messages is a call to
NAME with ARGUMENTS sent as they are written (JSON or not, `{}` when empty); without a
marker, `tool_choice: required` calls the first tool and a named `tool_choice` that tool,
with `{}`. A reply with calls has no content and finishes with `tool_calls` (streamed as
`delta.tool_calls` chunks). `[[refusal:TEXT]]` answers with a refusal instead of content.

Fault injection, per request:

- a marker in the request (message text or model name): `[[fault:KIND]]` always, or
  `[[fault:KIND*N]]` for the first N attempts of that exact request body (so a client's
  retry of the same body eventually succeeds);
- the header `X-Fault: KIND` or `X-Fault: KIND*N`;
- a rule added with `server.add_fault(kind, times=N, match="substring")` (or
  `POST /_control/faults`), applied to requests whose body contains `match`.

KIND is one of: `429` (with `Retry-After`), `503` (with `Retry-After`), `500`, `529`, `400`,
`401`, `404`, `slow` (sleeps `slow_s` before answering), `malformed` (200 with a broken
JSON body), `drop` (closes the connection without a response).

Use in-process (`OpenAIServer`, a background thread) or as a subprocess
(`OpenAIServerProcess`, or `python tests/support/openai_server.py --latency-ms 20`), which
keeps the server's CPU off the client's interpreter for benchmarks.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import importlib
import json
import math
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FAULT_KINDS = ("429", "503", "529", "500", "400", "401", "404", "slow", "malformed", "drop")
_FAULT = re.compile(r"\[\[fault:([a-z0-9]+)(?:\*(\d+))?\]\]")
_FAULT_HEADER = re.compile(r"^\s*([a-z0-9]+)(?:\*(\d+))?\s*$")
_REPLY = re.compile(r"\[\[reply:(.*?)\]\]", re.DOTALL)
_MODEL_REPLY = re.compile(r"\[\[reply@([^:\]]+):(.*?)\]\]", re.DOTALL)
_JUDGE = re.compile(r"\[\[judge:(fail|pass|[01](?:\.\d+)?)\]\]")
_MARKERS = re.compile(r"\s*\[\[(?:fault|reply|reply@[^:\]]+|tool|refusal):.*?\]\]", re.DOTALL)
_TOOL = re.compile(r"\[\[tool:([A-Za-z0-9_-]+)\s*(.*?)\]\]", re.DOTALL)
_REFUSAL = re.compile(r"\[\[refusal:(.*?)\]\]", re.DOTALL)
JUDGE_SIGNATURE = "You grade an AI output against a rubric"
EMBEDDING_DIMENSIONS = 64

# (request body) -> the assistant's reply text, or a dict {"content": str, "usage": {...},
# "delay_s": float, "tool_calls": [{"name", "arguments": str}]} (usage overrides the word
# counts; delay_s simulates generation time; tool_calls replace the content)
ReplyFunction = Callable[[dict[str, Any]], Any]


# --- deterministic replies ---------------------------------------------------------------------


def _text(content: Any) -> str:
    """Message content as text (a string, or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_DATA_IMAGE = re.compile(r"^data:(image/[a-z]+);base64,(.*)$", re.DOTALL)
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")


def _part_problem(part: Any, where: str) -> str | None:
    if not isinstance(part, dict) or part.get("type") not in ("text", "image_url"):
        return f"{where}: a content part must have type text or image_url"
    if part["type"] == "text":
        return None if isinstance(part.get("text"), str) else f"{where}.text must be a string"
    url = (
        (part.get("image_url") or {}).get("url")
        if isinstance(part.get("image_url"), dict)
        else None
    )
    if not isinstance(url, str):
        return f"{where}.image_url.url must be a string"
    if url.startswith(("http://", "https://")):
        return None
    found = _DATA_IMAGE.match(url)
    if found is None:
        return f"{where}.image_url.url must be an http(s) URL or a data:image/...;base64 URL"
    try:
        data = base64.b64decode(found.group(2), validate=True)
    except ValueError:
        return f"{where}.image_url.url: invalid base64"
    if not data.startswith(_IMAGE_MAGIC.get(found.group(1), (b"\x00\x00never",))):
        return f"{where}.image_url.url: the bytes are not a valid {found.group(1)} image"
    return None


def messages_problem(messages: Any) -> str | None:
    """Why the `messages` of a chat request would be refused (400), as OpenAI checks them:
    roles, content as a string or parts (text, image_url with a URL or a decodable data:
    image whose bytes match its type), tool calls and tool results."""
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty array"
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or message.get("role") not in CHAT_ROLES:
            return f"{where}.role must be one of {', '.join(CHAT_ROLES)}"
        content = message.get("content")
        if isinstance(content, list):
            for part_index, part in enumerate(content):
                problem = _part_problem(part, f"{where}.content[{part_index}]")
                if problem:
                    return problem
        elif content is not None and not isinstance(content, str):
            return f"{where}.content must be a string or an array of content parts"
        if message["role"] == "tool" and not isinstance(message.get("tool_call_id"), str):
            return f"{where}.tool_call_id is required for a tool message"
        if content is None and not (message["role"] == "assistant" and message.get("tool_calls")):
            return f"{where}.content is required"
    return None


def image_parts(body: dict[str, Any]) -> list[str]:
    """Each image the request carries, as `TYPE sha256:PREFIX` (data: URLs) or the URL."""
    found = []
    for message in body.get("messages") or []:
        for part in message.get("content") or [] if isinstance(message, dict) else []:
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            url = str((part.get("image_url") or {}).get("url", ""))
            data = _DATA_IMAGE.match(url)
            if data is None:
                found.append(url)
                continue
            digest = hashlib.sha256(base64.b64decode(data.group(2))).hexdigest()[:12]
            found.append(f"{data.group(1)} sha256:{digest}")
    return found


def last_user_message(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def strip_markers(text: str) -> str:
    return _MARKERS.sub("", text).strip()


def is_json_mode(body: dict[str, Any]) -> bool:
    fmt = body.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


def is_judge_request(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    return any(
        isinstance(m, dict)
        and m.get("role") == "system"
        and JUDGE_SIGNATURE in _text(m.get("content"))
        for m in messages
    )


def judge_reply(body: dict[str, Any]) -> str:
    everything = " ".join(_text(m.get("content")) for m in body.get("messages") or [])
    match = _JUDGE.search(everything)
    verdict = match.group(1) if match else "pass"
    score = {"pass": 1.0, "fail": 0.0}.get(verdict) if verdict in ("pass", "fail") else None
    score = float(verdict) if score is None else score
    passed = score >= 0.5
    reason = "meets the rubric" if passed else "does not meet the rubric"
    return json.dumps({"pass": passed, "score": score, "reason": reason})


def default_reply(body: dict[str, Any]) -> str:
    """The reply for a chat request: see the module docstring."""
    if is_judge_request(body):
        return judge_reply(body)
    everything = "\n".join(_text(m.get("content")) for m in body.get("messages") or [])
    model = str(body.get("model", ""))
    for name, text in _MODEL_REPLY.findall(everything):
        if name == model:
            return text
    forced = _REPLY.search(everything)
    if forced:
        return forced.group(1)
    echo = strip_markers(last_user_message(body))
    images = image_parts(body)
    if images:  # a "vision model": says which images it saw
        echo = f"{echo} [saw {len(images)} image(s): {'; '.join(images)}]".strip()
    if is_json_mode(body):
        return json.dumps({"reply": echo})
    return echo


def default_tool_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls for a chat request with tools: see the module docstring."""
    tools = body.get("tools")
    choice = body.get("tool_choice", "auto")
    if not isinstance(tools, list) or not tools or choice == "none":
        return []
    everything = "\n".join(_text(m.get("content")) for m in body.get("messages") or [])
    calls = [(name, raw.strip() or "{}") for name, raw in _TOOL.findall(everything)]
    if not calls and choice == "required":
        calls = [(str(tools[0].get("function", {}).get("name", "")), "{}")]
    elif not calls and isinstance(choice, dict):
        calls = [(str(choice.get("function", {}).get("name", "")), "{}")]
    return [
        {
            "id": f"call_{index}_{hashlib.sha256(raw.encode()).hexdigest()[:8]}",
            "type": "function",
            "function": {"name": name, "arguments": raw},
        }
        for index, (name, raw) in enumerate(calls)
    ]


def default_refusal(body: dict[str, Any]) -> str | None:
    everything = "\n".join(_text(m.get("content")) for m in body.get("messages") or [])
    found = _REFUSAL.search(everything)
    return found.group(1) if found else None


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: whitespace-separated words."""
    return len(text.split())


def embed_text(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A bag-of-words vector: texts sharing words point the same way (cosine works)."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
        vector[bucket % dimensions] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


# --- requests the server saw ----------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the server received it (what tests assert on)."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    at: float
    fault: str | None = None
    status: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultRule:
    kind: str
    times: int | None = None  # None: every matching request
    match: str | None = None  # a substring of the raw body; None: every request
    used: int = 0


@dataclass
class ServerState:
    reply: ReplyFunction
    latency_s: float = 0.0
    retry_after_s: float = 1.0
    slow_s: float = 2.0
    record: bool = True
    requests: list[RecordedRequest] = field(default_factory=list)
    rules: list[FaultRule] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0  # the most API requests handled at the same time
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.rules.clear()
            self.attempts.clear()
            self.max_in_flight = self.in_flight

    def fault_for(self, raw: bytes, header: str | None) -> str | None:
        """Which fault (if any) this request gets; counts attempts per identical body."""
        digest = hashlib.sha256(raw).hexdigest()
        with self.lock:
            attempt = self.attempts.get(digest, 0) + 1
            self.attempts[digest] = attempt
            header_match = _FAULT_HEADER.match(header) if header else None
            for match in (header_match, _FAULT.search(raw.decode("utf-8", "replace"))):
                if match:
                    kind, times = match.group(1), match.group(2)
                    if times is None or attempt <= int(times):
                        return kind
                    return None
            text = None
            for rule in self.rules:
                if rule.match is not None:
                    text = text if text is not None else raw.decode("utf-8", "replace")
                    if rule.match not in text:
                        continue
                if rule.times is None or rule.used < rule.times:
                    rule.used += 1
                    return rule.kind
        return None


# --- HTTP ------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # One write per response and no Nagle: otherwise delayed ACKs add 40 ms stalls.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # responses

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        all_headers = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
        all_headers.update(headers or {})
        head += [f"{k}: {v}" for k, v in all_headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(value).encode(), headers)

    def _error(
        self, status: int, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "code": None}}, headers)

    # dispatch

    def do_GET(self) -> None:
        state = self.server.state
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "local", "object": "model"}]})
        elif self.path == "/_control/requests":
            with state.lock:
                rows = [r.to_dict() for r in state.requests]
                high = state.max_in_flight
            self._json(200, {"requests": rows, "max_in_flight": high})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.startswith("/_control/"):
            self._control(raw)
            return
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = None
        record = RecordedRequest("POST", self.path, body, dict(self.headers.items()), time.time())
        fault = state.fault_for(raw, self.headers.get("X-Fault"))
        record.fault = fault
        with state.lock:
            if state.record:
                state.requests.append(record)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._answer(record, body, fault)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _answer(self, record: RecordedRequest, body: Any, fault: str | None) -> None:
        state = self.server.state
        if state.latency_s:
            time.sleep(state.latency_s)
        if fault is not None and self._fault(fault, record):
            return
        if not isinstance(body, dict):
            record.status = 400
            self._error(400, "request body is not a JSON object", "invalid_request_error")
            return
        self._route(record, body)

    def _route(self, record: RecordedRequest, body: dict[str, Any]) -> None:
        """Answer an API request that got no fault (another API's handler overrides this)."""
        path = urlsplit(self.path).path  # Azure adds `?api-version=...`
        if path.endswith("/chat/completions"):
            problem = messages_problem(body.get("messages"))
            if problem is not None:
                record.status = 400
                self._error(400, problem, "invalid_request_error")
                return
            record.status = 200
            self._chat(body)
        elif path.endswith("/embeddings"):
            record.status = 200
            self._embeddings(body)
        else:
            record.status = 404
            self._error(404, f"no route {self.path}", "not_found")

    def _fault(self, kind: str, record: RecordedRequest) -> bool:
        """Apply a fault; True when the response has been handled."""
        state = self.server.state
        retry = {"Retry-After": f"{state.retry_after_s:g}"}
        if kind == "429":
            record.status = 429
            self._error(429, "rate limited (injected)", "rate_limit_exceeded", retry)
        elif kind == "503":
            record.status = 503
            self._error(503, "overloaded (injected)", "server_error", retry)
        elif kind in ("500", "529", "400", "401", "404"):
            record.status = int(kind)
            self._error(int(kind), f"injected {kind}", "injected_error")
        elif kind == "slow":
            time.sleep(state.slow_s)
            return False
        elif kind == "malformed":
            record.status = 200
            self._send(200, b'{"id": "chatcmpl-broken", "choices": [{"mess')
        elif kind == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            return False
        return True

    def _chat(self, body: dict[str, Any]) -> None:
        state = self.server.state
        result = state.reply(body)
        content = result["content"] if isinstance(result, dict) else str(result)
        tool_calls = default_tool_calls(body)
        if isinstance(result, dict) and result.get("tool_calls"):
            tool_calls = [
                {
                    "id": f"call_{index}",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
                for index, call in enumerate(result["tool_calls"])
            ]
        refusal = default_refusal(body)
        if tool_calls or refusal is not None:
            content = ""
        finish = "tool_calls" if tool_calls else "stop"
        prompt_text = " ".join(
            _text(m.get("content")) for m in body.get("messages") or [] if isinstance(m, dict)
        )
        usage = {
            "prompt_tokens": count_tokens(prompt_text),
            "completion_tokens": count_tokens(content),
        }
        if isinstance(result, dict) and isinstance(result.get("usage"), dict):
            usage.update(result["usage"])
        if isinstance(result, dict) and result.get("delay_s"):
            time.sleep(float(result["delay_s"]))
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        model = str(body.get("model", "local"))
        ident = (
            "chatcmpl-" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
        )
        message: dict[str, Any] = {"role": "assistant", "content": content or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
            usage["completion_tokens"] = sum(
                count_tokens(c["function"]["arguments"]) + 1 for c in tool_calls
            )
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if refusal is not None:
            message["refusal"] = refusal
        elif not tool_calls:
            message["content"] = content
        if body.get("stream"):
            self._stream(ident, model, content, usage, body, tool_calls, finish)
            return
        self._json(
            200,
            {
                "id": ident,
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            },
        )

    def _stream(
        self,
        ident: str,
        model: str,
        content: str,
        usage: dict[str, int],
        body: dict[str, Any],
        tool_calls: list[dict[str, Any]] | None = None,
        finish: str = "stop",
    ) -> None:
        """Server-sent events, chunked transfer encoding: one chunk per word."""
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        self.wfile.write(head.encode())

        def event(payload: Any) -> None:
            data = (
                f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()
            )
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }

        event(chunk({"role": "assistant", "content": ""}))
        for piece in re.findall(r"\S+\s*|\s+", content):
            event(chunk({"content": piece}))
        for index, call in enumerate(tool_calls or []):
            name, raw = call["function"]["name"], call["function"]["arguments"]
            head_delta = {"index": index, "id": call["id"], "type": "function"}
            event(
                chunk({"tool_calls": [{**head_delta, "function": {"name": name, "arguments": ""}}]})
            )
            for start in range(0, len(raw), 8):
                piece = {"index": index, "function": {"arguments": raw[start : start + 8]}}
                event(chunk({"tool_calls": [piece]}))
        event(chunk({}, finish))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            event(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")

    def _embeddings(self, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._error(
                400, "`input` must be a string or a list of strings", "invalid_request_error"
            )
            return
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = embed_text(text)
            encoded: Any = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(count_tokens(t) for t in texts)
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": str(body.get("model", "local-embed")),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _control(self, raw: bytes) -> None:
        state = self.server.state
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            self._error(400, "control body is not JSON", "invalid_request_error")
            return
        if self.path == "/_control/reset":
            state.reset()
            self._json(200, {"ok": True})
        elif self.path == "/_control/faults":
            rule = FaultRule(str(body.get("kind")), body.get("times"), body.get("match"))
            if rule.kind not in FAULT_KINDS:
                self._error(400, f"unknown fault kind {rule.kind!r}", "invalid_request_error")
                return
            with state.lock:
                state.rules.append(rule)
            self._json(200, {"ok": True})
        elif self.path == "/_control/config":
            with state.lock:
                for key in ("latency_s", "retry_after_s", "slow_s", "record"):
                    if key in body:
                        setattr(state, key, body[key])
            self._json(200, {"ok": True})
        else:
            self._error(404, f"no route {self.path}", "not_found")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default backlog (5) resets connections under load
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], state: ServerState, handler: type[_Handler] = _Handler
    ) -> None:
        super().__init__(address, handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-response (a timeout test) is not an error worth printing.
        pass


# --- in-process and subprocess servers -------------------------------------------------------


class OpenAIServer:
    """The server in a background thread of this process.

    >>> with OpenAIServer(latency_ms=5) as server:
    ...     client = openai.OpenAI(base_url=server.base_url, api_key="test")

    Azure's URL shape (`/openai/deployments/{deployment}/chat/completions?api-version=...`)
    is answered too: give the Azure client `azure_endpoint=server.url`.
    """

    handler: type[_Handler] = _Handler  # another API's handler reuses the machinery

    def __init__(
        self,
        reply: ReplyFunction | None = None,
        *,
        latency_ms: float = 0.0,
        retry_after_s: float = 1.0,
        slow_s: float = 2.0,
        record: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.state = ServerState(
            reply or default_reply,
            latency_s=latency_ms / 1000,
            retry_after_s=retry_after_s,
            slow_s=slow_s,
            record=record,
        )
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> OpenAIServer:
        self._server = _Server(self._address, self.state, self.handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as `base_url`."""
        return f"{self.url}/v1"

    # test helpers

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if urlsplit(r.path).path.endswith("/chat/completions")]

    def add_fault(self, kind: str, *, times: int | None = None, match: str | None = None) -> None:
        """Inject `kind` into requests whose body contains `match` (all when None)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self.state.lock:
            self.state.rules.append(FaultRule(kind, times, match))

    def reset(self) -> None:
        """Forget requests, fault rules, attempt counters and the in-flight high mark."""
        self.state.reset()

    def set_latency(self, milliseconds: float) -> None:
        self.state.latency_s = milliseconds / 1000

    @property
    def max_in_flight(self) -> int:
        return self.state.max_in_flight


class OpenAIServerProcess:
    """The same server in a child process (its CPU off this interpreter): for benchmarks.

    `reply` is a `module:function` import path, importable in the child.
    """

    script = __file__  # the server module run as the child

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        reply: str | None = None,
        record: bool = False,
        retry_after_s: float = 1.0,
        slow_s: float = 2.0,
    ) -> None:
        self._args = [
            sys.executable,
            str(Path(self.script).resolve()),
            "--latency-ms",
            str(latency_ms),
            "--retry-after",
            str(retry_after_s),
            "--slow",
            str(slow_s),
        ]
        if reply:
            self._args += ["--reply", reply]
        if not record:
            self._args.append("--no-record")
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> OpenAIServerProcess:
        self._process = subprocess.Popen(
            self._args, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1]
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"test server did not start: {line!r}")
        self.url = line.split()[1]
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> OpenAIServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def _control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_control/{path}", data=data)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def requests(self) -> list[dict[str, Any]]:
        return list(self._control("requests")["requests"])

    def add_fault(self, kind: str, *, times: int | None = None, match: str | None = None) -> None:
        self._control("faults", {"kind": kind, "times": times, "match": match})

    def reset(self) -> None:
        self._control("reset", {})

    def set_latency(self, milliseconds: float) -> None:
        self._control("config", {"latency_s": milliseconds / 1000})


def load_reply(ref: str) -> ReplyFunction:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None, server_class: type[OpenAIServer] = OpenAIServer) -> None:
    parser = argparse.ArgumentParser(description=f"Local test server ({server_class.__name__}).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--slow", type=float, default=2.0)
    parser.add_argument("--reply", help="module:function computing replies")
    parser.add_argument("--no-record", action="store_true", help="do not keep a request log")
    args = parser.parse_args(argv)
    server = server_class(
        load_reply(args.reply) if args.reply else None,
        latency_ms=args.latency_ms,
        retry_after_s=args.retry_after,
        slow_s=args.slow,
        record=not args.no_record,
        port=args.port,
    ).start()
    print(f"READY {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
