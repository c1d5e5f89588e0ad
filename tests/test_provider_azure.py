"""Provider type `azure-openai`: the openai SDK's Azure client against the local server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from support.evals import echo_prompt, eval_rows, jsonl
from support.openai_server import OpenAIServer
from support.repo import PromptRepo

CONFIG = """\
providers:
  default:
    type: azure-openai
    deployment: chat-prod
    api_version: 2024-06-01
    embedding_model: embed-prod
    timeout_s: 5
    max_retries: 2
pricing:
  gpt-4o-mini: {input: 0.15, output: 0.60}
"""


@pytest.fixture
def project(tmp_path: Path) -> PromptRepo:
    return PromptRepo.create(tmp_path / "repo", CONFIG)


def env(server: OpenAIServer | None) -> dict[str, str]:
    if server is None:
        return {}
    return {"AZURE_OPENAI_ENDPOINT": server.url, "AZURE_OPENAI_API_KEY": "azure-secret"}


def azure_prompt(asserts: list[dict[str, Any]]) -> str:
    model = {"provider": "default", "name": "gpt-4o-mini", "parameters": {"temperature": 0}}
    return echo_prompt(asserts=asserts, threshold=0.0, model=model)


def run_rows(repo: PromptRepo, server: Any, **kwargs: Any) -> dict[str, Any]:
    return eval_rows(repo.root, env(server), **kwargs)


def test_an_eval_on_azure_calls_the_deployment_url_with_the_api_version_and_key(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    asserts = [
        {"type": "contains", "value": "hello"},
        {"type": "similar", "value": "hello there", "threshold": 0.5},
    ]
    project.write("prompts/echo.yaml", azure_prompt(asserts))
    project.write("golden/echo.jsonl", jsonl([{"id": "c0", "vars": {"text": "hello there"}}]))
    row = run_rows(project, openai_server)["c0"]
    assert row["pass"] and row["output"] == "hello there"
    assert row["cost_usd"] == pytest.approx((2 * 0.15 + 2 * 0.60) / 1e6)  # priced by model name

    chat, embeddings = openai_server.requests
    for request, deployment, operation in (
        (chat, "chat-prod", "chat/completions"),
        (embeddings, "embed-prod", "embeddings"),
    ):
        url = urlsplit(request.path)
        assert url.path == f"/openai/deployments/{deployment}/{operation}"
        assert parse_qs(url.query) == {"api-version": ["2024-06-01"]}
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["api-key"] == "azure-secret" and "authorization" not in headers
    assert chat.body["model"] == "chat-prod" and chat.body["temperature"] == 0

    # recorded, then replayed without the endpoint
    run_rows(project, openai_server, mode="record")
    shutil.rmtree(project.root / ".promptyard")
    offline = run_rows(project, None)["c0"]
    assert (offline["output"], offline["pass"], offline["cost_usd"]) == (
        row["output"],
        row["pass"],
        row["cost_usd"],
    )


def test_azure_retries_a_429_and_does_not_retry_a_400(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", azure_prompt([{"type": "contains", "value": "ok"}]))
    cases = [
        {"id": "limited", "vars": {"text": "ok [[fault:429*1]]"}},
        {"id": "bad", "vars": {"text": "no [[fault:400]]"}},
    ]
    project.write("golden/echo.jsonl", jsonl(cases))
    rows = run_rows(project, openai_server)
    assert rows["limited"]["pass"]
    assert rows["bad"]["error_kind"] == "request"
    statuses: dict[str, list[int | None]] = {}
    for request in openai_server.chat_requests():
        text = request.body["messages"][0]["content"]
        statuses.setdefault(text, []).append(request.status)
    assert statuses == {"ok [[fault:429*1]]": [429, 200], "no [[fault:400]]": [400]}


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"AZURE_OPENAI_API_KEY": "k"}, "AZURE_OPENAI_ENDPOINT"),
        ({"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com"}, "AZURE_OPENAI_API_KEY"),
    ],
)
def test_a_key_without_endpoint_or_an_endpoint_without_key_is_exit_2(
    project: PromptRepo, variables: dict[str, str], named: str
) -> None:
    project.write("prompts/echo.yaml", azure_prompt([{"type": "contains", "value": "x"}]))
    project.write("golden/echo.jsonl", jsonl([{"id": "c0", "vars": {"text": "x"}}]))
    result = project.run("eval", env=variables)
    assert result.exit_code == 2, result.describe()
    assert f"set {named}" in result.stderr and "Traceback" not in result.output
    assert len(result.error_lines()) <= 2
