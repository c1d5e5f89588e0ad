"""Helpers for suites that run evals against the local OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from promptyard.evals.runner import EvalOptions
from support.openai_server import OpenAIServer

BASE_URL_ENV = "PROMPTYARD_TEST_BASE_URL"
API_KEY_ENV = "PROMPTYARD_TEST_API_KEY"

# A project whose provider reads test-only variables, so a developer's OPENAI_* never leak in.
EVAL_CONFIG = f"""\
providers:
  default:
    type: openai
    base_url_env: {BASE_URL_ENV}
    api_key_env: {API_KEY_ENV}
    max_concurrency: 8
    timeout_s: 2
    max_retries: 2
pricing:
  test-model: {{input: 1.0, output: 2.0}}
"""


def live_env(server: Any) -> dict[str, str]:
    """The environment that points the test provider at `server`."""
    return {BASE_URL_ENV: server.base_url}


def options(root: Path, server: OpenAIServer | None = None, **kwargs: Any) -> EvalOptions:
    """EvalOptions for a test: live against `server` (offline when None), fast backoff."""
    kwargs.setdefault("backoff_base_s", 0.01)
    return EvalOptions(repo_root=root, environ=live_env(server) if server else {}, **kwargs)


def echo_prompt(
    name: str = "echo",
    *,
    dataset: str = "golden/echo.jsonl",
    asserts: list[dict[str, Any]] | None = None,
    threshold: float = 1.0,
    version: str = "1.0.0",
    **fields: Any,
) -> str:
    """A prompt whose user message is the case's `text`: the server echoes it back."""
    doc: dict[str, Any] = {
        "name": name,
        "version": version,
        "model": {"provider": "default", "name": "test-model", "parameters": {"temperature": 0}},
        "inputs": {"text": {"type": "string"}},
        "messages": [{"role": "user", "content": "{{ text }}"}],
        "evals": [{"dataset": dataset, "assert": asserts or [], "threshold": threshold}],
    }
    doc.update(fields)
    return yaml.safe_dump(doc, sort_keys=False)


def jsonl(cases: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(case) + "\n" for case in cases)


def text_cases(*texts: str, expected: list[Any] | None = None) -> str:
    """A JSONL dataset: case `c0`, `c1`, ... with vars {text}."""
    rows = []
    for index, text in enumerate(texts):
        row: dict[str, Any] = {"id": f"c{index}", "vars": {"text": text}}
        if expected is not None:
            row["expected"] = expected[index]
        rows.append(row)
    return jsonl(rows)


def eval_rows(root: Path, environ: dict[str, str], **kwargs: Any) -> dict[str, dict[str, Any]]:
    """The result rows, by case id, of evaluating the one prompt of `root` (fast backoff)."""
    from promptyard.evals.runner import evaluate_snapshot
    from promptyard.repo.workspace import Workspace

    kwargs.setdefault("backoff_base_s", 0.01)
    options = EvalOptions(repo_root=root, environ=environ, **kwargs)
    (run,) = evaluate_snapshot(Workspace(root).snapshot(), (), options=options).runs
    return {
        row["case_id"]: row for row in map(json.loads, run.results_path.read_text().splitlines())
    }
