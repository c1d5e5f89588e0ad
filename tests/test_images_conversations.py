"""Image content parts and conversation inputs, end to end: spec → lint → render (working
tree and git ref) → eval with the official openai client against the local server → cache
and recordings → registry render, POST /render and the gateway. Plus hostile inputs."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from promptyard.evals.runner import evaluate_snapshot
from promptyard.images import MAX_IMAGE_BYTES
from promptyard.registry.client import Registry
from promptyard.registry.reconcile import GitSource, Reconciler
from promptyard.registry.service import create_app
from promptyard.render import RenderError, VariablesError, render_prompt
from promptyard.repo.workspace import Workspace
from promptyard.serving.gateway import create_gateway_app
from promptyard.spec.gateway import GatewayConfig
from support.evals import EVAL_CONFIG, jsonl, options
from support.openai_server import OpenAIServer
from support.repo import PromptRepo, make_repo, run_promptyard
from support.servers import ThreadedServer


def png(red: int) -> bytes:
    """A real 1x1 PNG of colour (red, 0, 0)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, red, 0, 0]))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"

RECEIPT = {
    "name": "receipt",
    "version": "1.0.0",
    "model": {"provider": "default", "name": "test-model"},
    "inputs": {"photo": {"type": "string"}, "question": {"type": "string"}},
    "messages": [
        {"role": "system", "content": "You read receipts."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "{{ question }}"},
                {"type": "image", "image": "{{ photo }}", "detail": "low"},
                {"type": "image", "image": "images/logo.gif"},
            ],
        },
    ],
    "evals": [
        {
            "dataset": "golden/receipt.jsonl",
            "assert": [{"type": "contains", "value": "saw 2 image(s)"}],
            "threshold": 0.0,
        }
    ],
}

REFUND_TOOL = {
    "name": "refund",
    "description": "Refund an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
}
AGENT = {
    "name": "agent",
    "version": "1.0.0",
    "model": {"provider": "default", "name": "test-model"},
    "inputs": {"history": {"type": "messages", "default": []}, "message": {"type": "string"}},
    "messages": [
        {"role": "system", "content": "You help with orders."},
        {"history": "history"},
        {"role": "user", "content": "{{ message }}"},
    ],
    "tools": [REFUND_TOOL],
    "evals": [
        {
            "dataset": "golden/agent.jsonl",
            "assert": [{"type": "not-tool-call", "value": "refund"}],
            "threshold": 1.0,
        }
    ],
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "refund", "arguments": '{"order_id": "A1"}'},
}
AFTER_TOOL_RESULT = [
    {"role": "user", "content": "Refund order A1 please"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "refunded"}'},
]


def write_receipt(repo: PromptRepo, photo: str = "images/receipt.png") -> None:
    repo.write("prompts/receipt.yaml", yaml.safe_dump(RECEIPT, sort_keys=False))
    repo.write("images/receipt.png", png(200))
    repo.write("images/logo.gif", GIF)
    case = {"id": "r1", "vars": {"photo": photo, "question": "What is the total?"}}
    repo.write("golden/receipt.jsonl", jsonl([case]))


@pytest.fixture
def repo(tmp_path: Path) -> PromptRepo:
    return PromptRepo.create(tmp_path / "repo", EVAL_CONFIG)


def rendered(repo: PromptRepo, name: str, variables: dict[str, Any], ref: str | None = None):
    snapshot = Workspace(repo.root).snapshot(ref)
    return render_prompt(snapshot.require_prompt(name), variables)


def data_url(data: bytes, media_type: str) -> str:
    import base64

    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


# --- images ------------------------------------------------------------------------------


def test_image_parts_render_as_openai_parts_from_the_tree_and_identically_at_a_git_ref(
    repo: PromptRepo,
) -> None:
    write_receipt(repo)
    repo.commit("receipt")
    variables = {"photo": "images/receipt.png", "question": "Total?"}
    at_head = rendered(repo, "receipt", variables, "HEAD")
    assert rendered(repo, "receipt", variables).messages == at_head.messages
    text, photo, logo = at_head.messages[1]["content"]
    assert text == {"type": "text", "text": "Total?"}
    assert photo == {
        "type": "image_url",
        "image_url": {"url": data_url(png(200), "image/png"), "detail": "low"},
    }
    assert logo["image_url"]["url"] == data_url(GIF, "image/gif")  # by bytes, not name
    url = "https://example.com/r.jpg"
    assert rendered(repo, "receipt", {**variables, "photo": url}).messages[1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": url, "detail": "low"},
    }

    # The working tree changes the picture: the ref still renders the committed bytes.
    repo.write("images/receipt.png", png(10))
    assert rendered(repo, "receipt", variables, "HEAD").messages == at_head.messages
    assert rendered(repo, "receipt", variables).messages != at_head.messages


def test_a_fixed_image_files_bytes_are_part_of_the_content_hash(repo: PromptRepo) -> None:
    write_receipt(repo)
    before = Workspace(repo.root).snapshot().require_prompt("receipt").require_hash()
    repo.write("images/logo.gif", GIF.replace(b"\x01\x00\x01", b"\x02\x00\x01"))
    after = Workspace(repo.root).snapshot().require_prompt("receipt").require_hash()
    repo.write("images/receipt.png", png(1))  # an input's file is data, not content
    again = Workspace(repo.root).snapshot().require_prompt("receipt").require_hash()
    assert before != after == again


@pytest.mark.parametrize(
    ("photo", "setup", "reason"),
    [
        ("../outside.png", None, "leaves the repository"),
        ("/etc/passwd", None, "leaves the repository"),
        ("images/missing.png", None, "does not exist"),
        ("images/fake.png", b"<html>not a picture</html>", "is not a PNG, JPEG, GIF or WebP"),
        ("images/huge.png", "huge", "over the 5 MiB image cap"),
        ("images/link.png", "symlink", "outside the repository"),
        ("ftp://example.com/a.png", None, "not supported"),
        ("data:image/png;base64,R0lGODlhAQABAAAAADs=", None, "says image/png but its bytes are"),
    ],
)
def test_hostile_image_values_are_located_errors_in_render_lint_and_eval(
    repo: PromptRepo, tmp_path: Path, photo: str, setup: Any, reason: str
) -> None:
    write_receipt(repo, photo)
    if setup == "huge":
        repo.write("images/huge.png", png(1) + b"\0" * MAX_IMAGE_BYTES)
    elif setup == "symlink":
        outside = tmp_path / "secret.png"
        outside.write_bytes(png(3))
        repo.path("images/link.png").symlink_to(outside)
    elif setup is not None:
        repo.write(photo, setup)

    with pytest.raises(RenderError) as failed:
        rendered(repo, "receipt", {"photo": photo, "question": "?"})
    assert failed.value.message.startswith("prompts/receipt.yaml:")
    assert "messages[1].content[1].image" in failed.value.message
    assert reason in failed.value.message

    lint = run_promptyard(repo.root, "lint", "--format", "json")
    assert lint.exit_code == 1, lint.describe()
    [finding] = [f for f in lint.json["findings"] if f["rule"] == "P018"]
    assert finding["file"] == "golden/receipt.jsonl" and finding["line"] == 1
    assert "case 'r1'" in finding["message"] and reason in finding["message"]

    # An eval ends that case with a clear error; the run itself completes.
    with OpenAIServer() as server:
        report = evaluate_snapshot(
            Workspace(repo.root).snapshot(), ("receipt",), options=options(repo.root, server)
        )
        assert server.chat_requests() == []
    [row] = [json.loads(line) for line in report.runs[0].results_path.read_text().splitlines()]
    assert row["error_kind"] == "render" and reason in row["error"]


def test_a_fixed_image_that_is_not_an_image_fails_lint_at_its_line(repo: PromptRepo) -> None:
    write_receipt(repo)
    repo.write("images/logo.gif", b"GIF? no, text")
    lint = run_promptyard(repo.root, "lint", "--format", "json")
    assert lint.exit_code == 1
    [finding] = [f for f in lint.json["findings"] if f["rule"] == "P018"]
    assert finding["file"] == "prompts/receipt.yaml"
    spec_lines = repo.read("prompts/receipt.yaml").splitlines()
    assert "images/logo.gif" in spec_lines[finding["line"] - 1]


def test_images_reach_the_server_with_the_official_client_and_replay_offline(
    repo: PromptRepo,
) -> None:
    write_receipt(repo)
    with OpenAIServer() as server:
        live = evaluate_snapshot(
            Workspace(repo.root).snapshot(),
            ("receipt",),
            options=options(repo.root, server, mode="record", use_cache=False),
        )
        [request] = server.chat_requests()
    [row] = [json.loads(line) for line in live.runs[0].results_path.read_text().splitlines()]
    assert row["pass"], row
    parts = request.body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url"]
    assert "image/png sha256:" in row["output"] and "image/gif sha256:" in row["output"]

    offline = evaluate_snapshot(
        Workspace(repo.root).snapshot(),
        ("receipt",),
        options=options(repo.root, None, mode="offline", use_cache=False),
    )
    [replayed] = [json.loads(x) for x in offline.runs[0].results_path.read_text().splitlines()]
    assert replayed["output"] == row["output"]

    # Another picture is another request: the recording does not answer for it.
    repo.write("images/receipt.png", png(99))
    changed = evaluate_snapshot(
        Workspace(repo.root).snapshot(),
        ("receipt",),
        options=options(repo.root, None, mode="offline", use_cache=False),
    )
    [missing] = [json.loads(x) for x in changed.runs[0].results_path.read_text().splitlines()]
    assert not missing["pass"] and "record" in missing["error"]


# --- conversations -----------------------------------------------------------------------


def write_agent(repo: PromptRepo, cases: list[dict[str, Any]]) -> None:
    repo.write("prompts/agent.yaml", yaml.safe_dump(AGENT, sort_keys=False))
    repo.write("golden/agent.jsonl", jsonl(cases))


def test_history_is_spliced_where_the_spec_says_and_never_rendered(repo: PromptRepo) -> None:
    write_agent(repo, [])
    turns = [*AFTER_TOOL_RESULT, {"role": "assistant", "content": "{{ not a template }}"}]
    out = rendered(repo, "agent", {"history": turns, "message": "Thanks! Anything else?"})
    assert out.messages == [
        {"role": "system", "content": "You help with orders."},
        *turns,
        {"role": "user", "content": "Thanks! Anything else?"},
    ]
    assert rendered(repo, "agent", {"message": "hi"}).messages[1]["role"] == "user"  # default []


@pytest.mark.parametrize(
    ("turn", "reason"),
    [
        ({"role": "robot", "content": "hi"}, "'history'[1]['role']: 'robot' is not one of"),
        ({"role": "tool", "content": "{}"}, "'tool_call_id' is a required property"),
        ({"role": "user"}, "'content' is a required property"),
        ({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}, "'url'"),
        (
            {"role": "user", "content": "x", "tool_calls": [CALL]},
            "'history'[1]: False schema does not allow",
        ),
        ("just text", "is not of type 'object'"),
    ],
)
def test_a_bad_turn_is_located_by_dataset_case_and_item(
    repo: PromptRepo, turn: Any, reason: str
) -> None:
    good = {"id": "good", "vars": {"history": AFTER_TOOL_RESULT, "message": "ok"}}
    bad = {"id": "bad-turn", "vars": {"history": [AFTER_TOOL_RESULT[0], turn], "message": "x"}}
    write_agent(repo, [good, bad])
    with pytest.raises(VariablesError) as refused:
        rendered(repo, "agent", bad["vars"])
    assert any(reason in p for p in refused.value.problems), refused.value.problems

    lint = run_promptyard(repo.root, "lint", "--format", "json")
    assert lint.exit_code == 1
    [finding] = [f for f in lint.json["findings"] if f["rule"] == "D004"]
    assert (finding["file"], finding["line"]) == ("golden/agent.jsonl", 2)
    assert "case 'bad-turn'" in finding["message"] and reason in finding["message"]

    evaluated = run_promptyard(repo.root, "eval", "--offline")
    assert evaluated.exit_code == 2 and "Traceback" not in evaluated.output
    assert "golden/agent.jsonl:2: case 'bad-turn'" in evaluated.output


def test_lint_refuses_a_splice_of_an_input_that_is_not_a_conversation(repo: PromptRepo) -> None:
    spec = {**AGENT, "messages": [*AGENT["messages"], {"history": "message"}]}
    repo.write("prompts/agent.yaml", yaml.safe_dump(spec, sort_keys=False))
    repo.write("golden/agent.jsonl", jsonl([{"id": "a", "vars": {"message": "hi"}}]))
    lint = run_promptyard(repo.root, "lint", "--format", "json")
    [finding] = [f for f in lint.json["findings"] if f["rule"] == "P017"]
    assert finding["file"] == "prompts/agent.yaml"
    assert "history: message" in repo.read("prompts/agent.yaml").splitlines()[finding["line"] - 1]
    assert "declare `message: {type: messages}`" in finding["message"]
    with pytest.raises(RenderError, match="not an input of type messages"):
        rendered(repo, "agent", {"message": "hi"})


def test_a_case_with_a_tool_result_tests_the_models_next_step(repo: PromptRepo) -> None:
    """The model already refunded (the tool said so): it must answer, not refund again."""
    cases = [
        {
            "id": "after-refund",
            "vars": {"history": AFTER_TOOL_RESULT, "message": "[[reply:Your refund is done.]]"},
        },
        {
            "id": "refunds-twice",
            "vars": {
                "history": AFTER_TOOL_RESULT,
                "message": 'Thanks [[tool:refund {"order_id": "A1"}]]',
            },
        },
    ]
    write_agent(repo, cases)
    with OpenAIServer() as server:
        report = evaluate_snapshot(
            Workspace(repo.root).snapshot(),
            ("agent",),
            options=options(repo.root, server, mode="record", use_cache=False),
        )
        requests = server.chat_requests()
    rows = {
        r["case_id"]: r
        for r in map(json.loads, report.runs[0].results_path.read_text().splitlines())
    }
    assert rows["after-refund"]["pass"] and not rows["refunds-twice"]["pass"]
    sent = requests[0].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[2]["tool_calls"] == [CALL] and sent[3]["tool_call_id"] == "call_1"

    # Recordings answer offline for the same turns, and not for different ones.
    offline = run_promptyard(repo.root, "eval", "agent", "--offline", "--no-cache")
    assert offline.exit_code == 1, offline.describe()  # refunds-twice fails, as recorded
    cases[0]["vars"]["history"] = AFTER_TOOL_RESULT[:1]
    repo.write("golden/agent.jsonl", jsonl(cases))
    again = run_promptyard(repo.root, "eval", "agent", "--offline", "--no-cache")
    assert "error after-refund: no recorded response" in again.describe()


def test_the_local_server_refuses_what_openai_refuses() -> None:
    with (
        OpenAIServer() as server,
        openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client,
    ):
        for messages in (
            [{"role": "robot", "content": "hi"}],
            [{"role": "tool", "content": "{}"}],
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": data_url(b"text", "image/png")}}
                    ],
                }
            ],
        ):
            with pytest.raises(openai.BadRequestError):
                client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        ok = client.chat.completions.create(
            model="m",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": data_url(GIF, "image/gif")}},
                    ],
                }
            ],
        )
        assert "saw 1 image(s): image/gif sha256:" in (ok.choices[0].message.content or "")


# --- serving ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = make_repo(Path(tmp_path_factory.mktemp("serve-parts")), environments=False)
    write_receipt(repo)
    write_agent(repo, [])
    repo.set_environment("production", {"receipt": "1.0.0", "agent": "1.0.0"})
    repo.commit("receipt and agent")
    repo.release()
    return repo.root


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


def test_registry_render_and_post_render_return_parts_and_turns(released: Path) -> None:
    photo = data_url(png(7), "image/png")
    registry = Registry.from_repo(released, ref="main")
    try:
        out = registry.render("receipt", {"photo": photo, "question": "?"})
        _, sent, logo = out.messages[1]["content"]
        assert sent == {"type": "image_url", "image_url": {"url": photo, "detail": "low"}}
        assert logo["image_url"]["url"] == data_url(GIF, "image/gif")  # carried by the release
        # A served prompt reads no repository file a caller names: only its spec's own.
        with pytest.raises(RenderError, match="carries only the image files its spec names"):
            registry.render("receipt", {"photo": "images/receipt.png", "question": "?"})
    finally:
        registry.close()
    reconciler = Reconciler(GitSource(str(released), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as server:
        body = {"variables": {"history": AFTER_TOOL_RESULT, "message": "and now?"}}
        agent = httpx.post(f"{server.url}/v1/prompts/agent/render", json=body, timeout=10)
        bad = httpx.post(
            f"{server.url}/v1/prompts/receipt/render",
            json={"variables": {"photo": "../x.png", "question": "?"}},
            timeout=10,
        )
        # A client of the server re-verifies the definition, fixed image bytes included.
        remote = Registry.from_server(server.url)
        try:
            out = remote.render("receipt", {"photo": "https://example.com/r.png", "question": "?"})
            assert out.messages[1]["content"][2]["image_url"]["url"] == data_url(GIF, "image/gif")
        finally:
            remote.close()
    assert agent.json()["messages"][1:4] == AFTER_TOOL_RESULT
    assert bad.status_code == 422 and "leaves the repository" in bad.text


def test_the_gateway_injects_images_and_history_upstream(
    released: Path, upstream: OpenAIServer
) -> None:
    registry = Registry.from_repo(released, ref="main")
    config = GatewayConfig.model_validate(
        {"endpoints": {"up": {"url": upstream.base_url}}, "models": {"test-model": "up"}}
    )
    with (
        ThreadedServer(create_gateway_app(registry, config)) as server,
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0) as client,
    ):
        upstream.reset()
        seen = client.chat.completions.create(
            model="prompt:receipt",
            messages=[],
            extra_body={"variables": {"photo": data_url(png(5), "image/png"), "question": "?"}},
        )
        assert "saw 2 image(s): image/png" in (seen.choices[0].message.content or "")
        client.chat.completions.create(
            model="prompt:agent",
            messages=[],
            extra_body={"variables": {"history": AFTER_TOOL_RESULT, "message": "next?"}},
        )
        sent = upstream.chat_requests()[-1].body["messages"]
        assert sent[1:4] == AFTER_TOOL_RESULT
        with pytest.raises(openai.UnprocessableEntityError, match="data: URL"):
            client.chat.completions.create(
                model="prompt:receipt",
                messages=[],
                extra_body={"variables": {"photo": "images/nope.png", "question": "?"}},
            )
    registry.close()


def test_lint_base_wants_a_bump_when_a_fixed_image_changes(repo: PromptRepo) -> None:
    write_receipt(repo)
    repo.commit("receipt")
    repo.git("branch", "base")
    repo.write("images/logo.gif", GIF.replace(b"\x01\x00\x01", b"\x03\x00\x01"))
    lint = run_promptyard(repo.root, "lint", "--base", "base", "--format", "json")
    assert lint.exit_code == 1
    [finding] = [f for f in lint.json["findings"] if f["file"] == "prompts/receipt.yaml"]
    assert "image file images/logo.gif changed" in finding["message"]
    assert "bump it to at least 1.0.1" in finding["message"]
    # A picture a case names is data: changing it needs no bump.
    repo.git("checkout", "--", "images/logo.gif")
    repo.write("images/receipt.png", png(42))
    assert run_promptyard(repo.root, "lint", "--base", "base").exit_code == 0


def test_render_cli_shows_parts_and_turns_readably_and_json_in_full(repo: PromptRepo) -> None:
    write_receipt(repo)
    write_agent(repo, [])
    repo.commit("both")
    repo.write("images/receipt.png", png(1) + b"\0" * 100)  # the working tree differs
    shown = run_promptyard(
        repo.root, "render", "receipt", "--ref", "HEAD",
        "--var", "photo=images/receipt.png", "--var", "question=Total?",
    )  # fmt: skip
    assert shown.exit_code == 0, shown.describe()
    assert f"[image image/png, {len(png(200))} bytes]" in shown.stdout
    assert "[image image/gif, 14 bytes]" in shown.stdout and "Total?" in shown.stdout

    repo.write("vars.json", json.dumps({"history": AFTER_TOOL_RESULT, "message": "ok?"}))
    turns = run_promptyard(repo.root, "render", "agent", "--vars", "vars.json")
    assert turns.exit_code == 0, turns.describe()
    assert '→ refund({"order_id": "A1"})' in turns.stdout
    assert '(result of call_1) {"status": "refunded"}' in turns.stdout
    full = run_promptyard(repo.root, "render", "agent", "--vars", "vars.json", "--format", "json")
    assert json.loads(full.stdout)["messages"][1:4] == AFTER_TOOL_RESULT

    bad = run_promptyard(
        repo.root, "render", "receipt", "--var", "photo=../../etc/x.png", "--var", "question=?"
    )
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr
    assert "prompts/receipt.yaml:" in bad.stderr and "leaves the repository" in bad.stderr


def test_a_huge_data_url_is_refused_before_it_is_decoded() -> None:
    from promptyard.images import ImageError, resolve_image

    with pytest.raises(ImageError, match="over the 5 MiB image cap"):
        resolve_image("data:image/png;base64," + "A" * (MAX_IMAGE_BYTES * 2), lambda p, n: None)
