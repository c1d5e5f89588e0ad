"""`promptyard import promptfoo`: realistic promptfoo configs, as a user would copy them
from promptfoo's documentation, become a repository that lints clean and evals against
the local OpenAI-compatible server; what cannot be carried over is reported with its line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from support.cli import run_cli
from support.openai_server import OpenAIServer

# promptfoo's getting-started config (two prompts, two OpenAI models, a JavaScript check)
GETTING_STARTED = """\
# yaml-language-server: $schema=https://promptfoo.dev/config-schema.json
description: 'My first eval'

prompts:
  - "Write a tweet about {{topic}}"
  - "Write a concise, funny tweet about {{topic}}"

providers:
  - openai:gpt-4o-mini
  - openai:gpt-4o

tests:
  - vars:
      topic: bananas

  - vars:
      topic: avocado toast
    assert:
      # For more information on assertions, see https://promptfoo.dev/docs/configuration/expected-outputs
      - type: icontains
        value: avocado
      - type: javascript
        value: 1 / (output.length + 1)  # prefer shorter outputs

  - vars:
      topic: new york city
    assert:
      # For more information on model-graded evals, see https://promptfoo.dev/docs/configuration/expected-outputs/model-graded
      - type: llm-rubric
        value: ensure that the output is funny
"""

# a JSON-mode support bot: chat prompt file, tests file, a Python check, a value file
SUPPORT_CONFIG = """\
description: Support bot JSON replies
prompts:
  - file://prompts/chat.json
providers:
  - id: openai:chat:gpt-4o-mini
    label: mini
    config:
      temperature: 0
      max_tokens: 300
      response_format:
        type: json_object
      inputCost: 0.00000015
      outputCost: 0.0000006
defaultTest:
  vars:
    company: Acme
  assert:
    - type: is-json
    - type: not-is-refusal
tests: file://tests/support.yaml
"""
SUPPORT_CHAT = json.dumps(
    [
        {"role": "system", "content": "You answer for {{ company }} in JSON with a reply field."},
        {"role": "user", "content": "{{ question }}"},
    ]
)
SUPPORT_TESTS = """\
- description: Shipping question
  vars:
    question: Where is my order?
  assert:
    - type: contains-json
      value:
        type: object
        required: [reply]
    - type: python
      value: file://grading/pf_support_grade.py
    - type: is-xml
      value: root.item
      weight: 0
- description: Refund request
  vars:
    question: I want a refund for my order
  threshold: 0.5
  assert:
    - type: icontains-all
      value: refund, order
    - type: contains
      value: file://expected/refund.txt
    - type: transform-me
      value: x
"""


def write_project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "promptfooconfig.yaml"


@pytest.fixture
def live(openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> OpenAIServer:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    return openai_server


def test_getting_started_config_imports_lints_and_evals(tmp_path: Path, live: OpenAIServer) -> None:
    config = write_project(tmp_path / "pf", {"promptfooconfig.yaml": GETTING_STARTED})
    out = tmp_path / "repo"
    result = run_cli("import", "promptfoo", str(config), "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    # 2 prompts x 2 models; one dataset; one config
    assert sorted(report["files"]) == [
        "golden/my-first-eval.jsonl",
        "prompts/prompt-1-gpt-4o-mini.yaml",
        "prompts/prompt-1-gpt-4o.yaml",
        "prompts/prompt-2-gpt-4o-mini.yaml",
        "prompts/prompt-2-gpt-4o.yaml",
        "promptyard.yaml",
    ]
    notes = {(n["line"], n["kind"]): n["message"] for n in report["notes"]}
    assert notes[(22, "not-carried")].startswith(
        "JavaScript assertion has no promptyard equivalent"
    )
    assert "Unicode case folding" in notes[(20, "differs")]
    assert any("no price for gpt-4o" in n["message"] for n in report["notes"])

    spec = yaml.safe_load((out / "prompts/prompt-2-gpt-4o.yaml").read_text())
    assert spec["model"] == {"provider": "gpt-4o", "name": "gpt-4o"}
    assert spec["messages"] == [
        {"role": "user", "content": "Write a concise, funny tweet about {{topic}}"}
    ]
    assert spec["inputs"] == {"topic": {"type": "string"}}
    cases = [
        json.loads(line) for line in (out / "golden/my-first-eval.jsonl").read_text().splitlines()
    ]
    assert [c["vars"]["topic"] for c in cases] == ["bananas", "avocado toast", "new york city"]
    assert cases[1]["assert"] == [{"type": "icontains", "value": "avocado"}]

    lint = run_cli("lint", "--format", "json", repo=out)
    assert lint.exit_code == 0, lint.stdout
    assert json.loads(lint.stdout)["errors"] == 0
    evaluation = run_cli("eval", "--format", "json", repo=out)
    assert evaluation.exit_code == 0, evaluation.stdout + evaluation.stderr
    # the server echoes the prompt, so "avocado" is there; its judge passes llm-rubric
    assert len(live.requests) >= 12


def test_support_config_with_files_python_and_weights(tmp_path: Path, live: OpenAIServer) -> None:
    config = write_project(
        tmp_path / "pf",
        {
            "promptfooconfig.yaml": SUPPORT_CONFIG,
            "prompts/chat.json": SUPPORT_CHAT,
            "tests/support.yaml": SUPPORT_TESTS,
            "grading/pf_support_grade.py": (
                "def get_assert(output, context):\n"
                "    return 'reply' in output and context['vars']['company'] == 'Acme'\n"
            ),
            "expected/refund.txt": "refund",
        },
    )
    out = tmp_path / "repo"
    result = run_cli("import", "promptfoo", str(config), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    # the report names the tests file and line of what it could not carry over
    assert "tests/support.yaml:23: not-carried: `transform-me` assertion" in result.stdout
    assert "tests/support.yaml:9: differs: python: the function gets (output" in result.stdout

    assert yaml.safe_load((out / "promptyard.yaml").read_text()) == {
        "providers": {"mini": {"type": "openai"}},
        "pricing": {"gpt-4o-mini": {"input": 0.15, "output": 0.6}},
    }
    spec = yaml.safe_load((out / "prompts/chat.yaml").read_text())
    assert spec["output"] == {"format": "json"}
    assert spec["model"]["parameters"] == {"temperature": 0, "max_tokens": 300}
    assert spec["evals"][0]["assert"] == [{"type": "is-json"}, {"type": "not-is-refusal"}]
    cases = [
        json.loads(line)
        for line in (out / "golden/support-bot-json-replies.jsonl").read_text().splitlines()
    ]
    assert [c["id"] for c in cases] == ["shipping-question", "refund-request"]
    assert cases[0]["vars"] == {"company": "Acme", "question": "Where is my order?"}
    assert cases[0]["assert"][1:] == [
        {"type": "python", "value": "checks.pf_support_grade:get_assert"},
        {"type": "is-xml", "value": ["root.item"], "weight": 0},
    ]
    assert cases[1]["threshold"] == 0.5
    assert cases[1]["assert"] == [
        {"type": "icontains-all", "value": ["refund", "order"]},
        {"type": "contains", "value": "file://expected/expected/refund.txt"},
    ]
    assert (out / "expected/expected/refund.txt").read_text() == "refund"

    assert run_cli("lint", repo=out).exit_code == 0
    evaluation = run_cli("eval", "--format", "json", repo=out)
    assert evaluation.exit_code == 0, evaluation.stdout + evaluation.stderr
    rows = {r["case_id"]: r for r in _rows(out)}
    # the weight-0 is-xml check failed and is reported, but never failed the case
    shipping = rows["shipping-question"]
    assert shipping["pass"] is True
    assert [a["pass"] for a in shipping["assertions"]] == [True, True, True, True, False]


def _rows(out: Path) -> list[dict[str, object]]:
    runs = sorted((out / ".promptyard" / "runs").rglob("*.jsonl"))
    return [json.loads(line) for path in runs for line in path.read_text().splitlines() if line]


def test_the_same_config_always_gives_the_same_ids(tmp_path: Path) -> None:
    config = write_project(
        tmp_path / "pf",
        {
            "promptfooconfig.yaml": textwrap.dedent(
                """\
                prompts: ["Translate to {{language}}: {{input}}"]
                providers: [openai:gpt-4o-mini]
                tests:
                  - vars: {language: [French, German], input: Hello world}
                    assert: [{type: icontains-any, value: "bonjour,hallo"}]
                  - vars: {language: Spanish, input: Hello world}
                """
            )
        },
    )
    first = run_cli("import", "promptfoo", str(config), "--out", str(tmp_path / "a"))
    second = run_cli("import", "promptfoo", str(config), "--out", str(tmp_path / "b"))
    assert first.exit_code == second.exit_code == 0
    dataset_a = (tmp_path / "a/golden/promptfooconfig.jsonl").read_text()
    assert dataset_a == (tmp_path / "b/golden/promptfooconfig.jsonl").read_text()
    ids = [json.loads(line)["id"] for line in dataset_a.splitlines()]
    assert len(ids) == len(set(ids)) == 3  # the array var ran once per language


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    config = write_project(tmp_path / "pf", {"promptfooconfig.yaml": GETTING_STARTED})
    out = tmp_path / "repo"
    (out / "prompts").mkdir(parents=True)
    (out / "prompts/prompt-1-gpt-4o.yaml").write_text("mine\n")
    refused = run_cli("import", "promptfoo", str(config), "--out", str(out))
    assert refused.exit_code == 2
    assert "prompt-1-gpt-4o.yaml already exists" in refused.stderr and "--force" in refused.stderr
    assert (out / "prompts/prompt-1-gpt-4o.yaml").read_text() == "mine\n"
    assert not (out / "promptyard.yaml").exists()  # nothing written at all
    forced = run_cli("import", "promptfoo", str(config), "--out", str(out), "--force")
    assert forced.exit_code == 0
    assert "name: prompt-1-gpt-4o" in (out / "prompts/prompt-1-gpt-4o.yaml").read_text()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("prompts: [a\nproviders: x\n", "promptfooconfig.yaml:2:"),
        ("providers: [openai:gpt-4o-mini]\n", "no `prompts`"),
        (
            "prompts: [hi]\nproviders: [anthropic:messages:claude-3-5-sonnet]\n",
            "promptfooconfig.yaml:2: no OpenAI-compatible provider",
        ),
        (
            "prompts: [file://missing.txt]\nproviders: [openai:gpt-4o-mini]\n",
            "promptfooconfig.yaml:1: cannot read missing.txt",
        ),
        (
            "prompts: [hi]\nproviders: [openai:gpt-4o-mini]\ntests: [file://t.yaml]\n",
            "t.yaml: cannot read it",
        ),
    ],
)
def test_bad_input_is_one_located_error(tmp_path: Path, config: str, message: str) -> None:
    path = write_project(tmp_path / "pf", {"promptfooconfig.yaml": config})
    result = run_cli("import", "promptfoo", str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert not (tmp_path / "out").exists()
