"""Judges and embeddings on any provider type; lint says when a provider cannot grade;
a model missing from the pricing table warns once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promptyard.evals.runner import EvalOptions, evaluate_snapshot
from promptyard.repo.workspace import Workspace
from support.anthropic_server import AnthropicServer
from support.evals import API_KEY_ENV, BASE_URL_ENV, echo_prompt, jsonl
from support.openai_server import OpenAIServer
from support.repo import PromptRepo

CONFIG = f"""\
providers:
  default:
    type: openai
    base_url_env: {BASE_URL_ENV}
    api_key_env: {API_KEY_ENV}
    timeout_s: 5
  claude:
    type: anthropic
    judge_model: claude-haiku-4-5
    timeout_s: 5
  claude-no-judge:
    type: anthropic
pricing:
  test-model: {{input: 1.0, output: 2.0}}
"""


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path) -> PromptRepo:
    return PromptRepo.create(tmp_path / "repo", CONFIG)


def lint_findings(repo: PromptRepo) -> list[dict[str, Any]]:
    result = repo.cli("lint", "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return [f for f in result.json["findings"] if f["rule"] == "P019"]


def line_of(repo: PromptRepo, path: str, text: str) -> int:
    lines = (repo.root / path).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_an_llm_rubric_judged_by_claude_reaches_the_anthropic_api(
    project: PromptRepo, openai_server: OpenAIServer, anthropic_server: AnthropicServer
) -> None:
    asserts = [
        {"type": "llm-rubric", "value": "Polite", "provider": "claude", "metric": "polite"},
    ]
    project.write("prompts/echo.yaml", echo_prompt(asserts=asserts, threshold=0.0))
    cases = [
        {"id": "good", "vars": {"text": "Thank you kindly"}},
        {"id": "rude", "vars": {"text": "Go away [[judge:0.2]]"}},
    ]
    project.write("golden/echo.jsonl", jsonl(cases))
    environ = {BASE_URL_ENV: openai_server.base_url, "ANTHROPIC_BASE_URL": anthropic_server.url}
    options = EvalOptions(repo_root=project.root, environ=environ, backoff_base_s=0.01)
    (run,) = evaluate_snapshot(Workspace(project.root).snapshot(), (), options=options).runs
    rows = {r["case_id"]: r for r in map(json.loads, run.results_path.read_text().splitlines())}
    assert rows["good"]["pass"] and not rows["rude"]["pass"]
    assert rows["rude"]["assertions"][0]["score"] == pytest.approx(0.2)
    judged = anthropic_server.message_requests()
    assert len(judged) == 2 and {r.body["model"] for r in judged} == {"claude-haiku-4-5"}
    assert "You grade an AI output against a rubric" in judged[0].body["system"]
    # the prompt's own calls went to its own provider only
    assert len(openai_server.chat_requests()) == 2 and lint_findings(project) == []


def test_similar_on_a_provider_without_embeddings_is_a_located_lint_error(
    project: PromptRepo,
) -> None:
    asserts = [{"type": "similar", "value": "hi", "provider": "claude"}]
    project.write("prompts/echo.yaml", echo_prompt(asserts=asserts))
    case = {"id": "c0", "vars": {"text": "x"}, "assert": [{"type": "not-similar", "value": "no"}]}
    project.write("golden/echo.jsonl", jsonl([case]))
    # the case's assertion uses the prompt's provider: an openai type, which has embeddings
    [finding] = lint_findings(project)
    assert finding["file"] == "prompts/echo.yaml" and finding["severity"] == "error"
    assert finding["line"] == line_of(project, "prompts/echo.yaml", "provider: claude")
    assert "provider 'claude' (type anthropic) has none" in finding["message"]

    # a prompt on Claude: its datasets' `similar` with no provider named is located too
    prompt = echo_prompt(asserts=[], model={"provider": "claude", "name": "claude-sonnet-4-5"})
    project.write("prompts/echo.yaml", prompt)
    [finding] = lint_findings(project)
    assert (finding["file"], finding["line"]) == ("golden/echo.jsonl", 1)
    assert "`not-similar` needs embeddings" in finding["message"]
    result = project.cli("lint")
    assert result.exit_code == 1 and "P019" in result.output


def test_a_judge_on_another_api_without_judge_model_is_a_lint_error(project: PromptRepo) -> None:
    asserts = [{"type": "llm-rubric", "value": "Polite", "provider": "claude-no-judge"}]
    project.write("prompts/echo.yaml", echo_prompt(asserts=asserts))
    project.write("golden/echo.jsonl", jsonl([{"id": "c0", "vars": {"text": "x"}}]))
    [finding] = lint_findings(project)
    assert "set `providers.claude-no-judge.judge_model`" in finding["message"]
    assert "'test-model', a model of type openai" in finding["message"]


def test_a_model_missing_from_the_pricing_table_warns_once(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    model = {"provider": "default", "name": "unpriced-model"}
    project.write("prompts/echo.yaml", echo_prompt(asserts=[], threshold=0.0, model=model))
    project.write(
        "golden/echo.jsonl", jsonl([{"id": f"c{i}", "vars": {"text": "x"}} for i in range(3)])
    )
    result = project.run("eval", env={BASE_URL_ENV: openai_server.base_url})
    assert result.exit_code == 0, result.describe()
    warnings = [line for line in result.stderr.splitlines() if "unpriced-model" in line]
    assert len(warnings) == 1 and "no entry under `pricing`" in warnings[0]
    assert "add `unpriced-model: {input: USD, output: USD}`" in warnings[0]
