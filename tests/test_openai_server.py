"""The local OpenAI-compatible test server, driven by the official `openai` client.

Other suites (the merge gate, the gateway, the benchmarks) rely on this server behaving
like a real endpoint, so its replies, usage, streaming and faults are checked here.
"""

from __future__ import annotations

import json
import time

import openai
import pytest

from support.openai_server import OpenAIServer, OpenAIServerProcess, embed_text


def client(server: OpenAIServer | OpenAIServerProcess, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0, **kwargs)


def test_chat_echoes_with_usage_and_forced_replies(openai_server: OpenAIServer) -> None:
    c = client(openai_server)
    reply = c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hello there world"}]
    )
    assert reply.choices[0].message.content == "hello there world"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (3, 3)
    forced = c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x [[reply:exactly this]]"}]
    )
    assert forced.choices[0].message.content == "exactly this"


def test_json_mode_and_judge_replies(openai_server: OpenAIServer) -> None:
    c = client(openai_server)
    reply = c.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "ship it"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"reply": "ship it"}
    judge = c.chat.completions.create(
        model="m",
        messages=[
            {"role": "system", "content": "You grade an AI output against a rubric. JSON."},
            {"role": "user", "content": "<output>bad [[judge:0.25]]</output>"},
        ],
    )
    verdict = json.loads(judge.choices[0].message.content or "")
    assert verdict["pass"] is False and verdict["score"] == 0.25


def test_streaming_sse_with_usage(openai_server: OpenAIServer) -> None:
    stream = client(openai_server).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    assert "".join(pieces) == "one two three"
    assert len(pieces) == 3
    assert usage is not None and usage.completion_tokens == 3


def test_embeddings_float_and_base64(openai_server: OpenAIServer) -> None:
    c = client(openai_server)
    floats = c.embeddings.create(
        model="e", input=["red apple", "green apple"], encoding_format="float"
    )
    assert [d.index for d in floats.data] == [0, 1]
    assert floats.data[0].embedding == pytest.approx(embed_text("red apple"))
    encoded = c.embeddings.create(model="e", input="red apple")  # the client asks for base64
    assert encoded.data[0].embedding == pytest.approx(embed_text("red apple"), abs=1e-6)


@pytest.mark.parametrize(
    ("marker", "error"),
    [
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("400", openai.BadRequestError),
        ("401", openai.AuthenticationError),
        ("404", openai.NotFoundError),
        ("drop", openai.APIConnectionError),
    ],
)
def test_fault_markers(openai_server: OpenAIServer, marker: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        client(openai_server).chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"x [[fault:{marker}]]"}]
        )


def test_fault_for_the_first_attempts_then_success(openai_server: OpenAIServer) -> None:
    c = client(openai_server)
    messages = [{"role": "user", "content": "try [[fault:503*2]]"}]
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            c.chat.completions.create(model="m", messages=messages)
        assert caught.value.response.headers["retry-after"] == "0.05"
    assert (
        c.chat.completions.create(model="m", messages=messages).choices[0].message.content == "try"
    )
    assert [r.status for r in openai_server.chat_requests()] == [503, 503, 200]


def test_slow_fault_passes_the_client_timeout(openai_server: OpenAIServer) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client(openai_server, timeout=0.2).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "[[fault:slow]]"}]
        )
    assert time.monotonic() - started < 1.0


def test_malformed_body_and_rules_and_header(openai_server: OpenAIServer) -> None:
    c = client(openai_server)
    openai_server.add_fault("malformed", times=1, match="broken")
    with pytest.raises((ValueError, openai.APIResponseValidationError)):  # not JSON
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "broken"}])
    assert c.chat.completions.create(model="m", messages=[{"role": "user", "content": "broken"}])
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "h"}], extra_headers={"X-Fault": "500"}
        )


def test_subprocess_server_latency_and_control() -> None:
    with OpenAIServerProcess(latency_ms=30, record=True) as server:
        c = client(server)
        started = time.monotonic()
        assert c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert time.monotonic() - started >= 0.03
        server.add_fault("500", times=1)
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert [r["status"] for r in server.requests()] == [200, 500]
