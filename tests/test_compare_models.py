"""Model comparison end to end: `promptyard diff NAME --model OTHER` and `compare_models`.

A real temporary git repository, the official `openai` client against the local server, the
CLI in-process. The test server answers `[[reply@MODEL:TEXT]]` only for that model, so the
same rendered messages get different answers from different models: the flips below are
planted per model, and the statistics are checked against their exact values.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from support.evals import API_KEY_ENV, BASE_URL_ENV, EVAL_CONFIG
from support.gate import cases, echo_spec
from support.openai_server import JUDGE_SIGNATURE, OpenAIServer
from support.repo import PromptRepo

# The prompt's own model fails coupon-01; small-model fails these five (and passes coupon).
SMALL_FAILS = ["refund", "invoice", "billing", "login", "order"]
CONFIG = (
    EVAL_CONFIG
    + """\
  small-model: {input: 0.1, output: 0.2}
  big-model: {input: 10.0, output: 20.0}
gates:
  cost_per_case: {max_ratio: 1.2, min_delta_usd: 0, action: warn}
  latency_p95: {action: warn}  # wall-clock time of a shared machine decides no test
"""
)
USER = (
    "{% if " + " or ".join(f"'{w}' in text" for w in SMALL_FAILS) + " %}"
    "[[reply@small-model:Sorry, no idea.]]{% endif %}"
    "{% if 'coupon' in text %}[[reply@test-model:Nope.]]{% endif %}{{ text }}"
)
RUBRIC = {"type": "llm-rubric", "value": "Answers the question", "metric": "helpful"}
ASSERTS = [{"type": "icontains", "value": "{{ expected }}"}, RUBRIC]


def prompt(**fields: object) -> str:
    return echo_spec(user=USER, threshold=0.7, asserts=ASSERTS, **fields)


@pytest.fixture
def project(tmp_path: Path, live: OpenAIServer) -> PromptRepo:
    repo = PromptRepo.create(tmp_path / "repo", CONFIG)
    repo.write(".gitignore", ".promptyard/\n")
    repo.write("prompts/echo.yaml", prompt())
    repo.write("golden/echo.jsonl", cases())
    repo.commit("prompts")
    return repo


def diff_json(repo: PromptRepo, *args: str) -> dict:
    result = repo.cli("diff", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return result.json


def by_model(data: dict) -> dict[str, dict]:
    return {p["head_model"]: p for p in data["prompts"]}


def test_each_model_is_compared_with_the_prompts_own_on_the_same_cases(
    project: PromptRepo, live: OpenAIServer
) -> None:
    data = diff_json(project, "echo", "--model", "small-model", "--model", "big-model")
    assert data["comparison"] == "models"
    assert [p["head_model"] for p in data["prompts"]] == ["small-model", "big-model"]
    small, big = by_model(data)["small-model"], by_model(data)["big-model"]
    assert small["prompt"] == "echo" and small["status"] == "compared"
    assert small["base_model"] == "test-model"

    # small-model: 5 pass → fail and 1 fail → pass, out of 20 paired cases
    rate = small["metrics"]["pass_rate"]
    assert (rate["base"], rate["head"], rate["n"]) == (0.95, 0.75, 20)
    assert rate["delta"] == pytest.approx(-0.2)
    assert rate["test"] == "mcnemar-exact"
    assert rate["p_value"] == pytest.approx(2 * 7 / 64)  # exact binomial: 1 of 6 discordant
    assert sorted(f["case_id"] for f in small["flips"]["pass_to_fail"]) == sorted(
        f"{w}-01" for w in SMALL_FAILS
    )
    assert [f["case_id"] for f in small["flips"]["fail_to_pass"]] == ["coupon-01"]
    flip = next(f for f in small["flips"]["pass_to_fail"] if f["case_id"] == "refund-01")
    assert flip["base"]["output"] == "Question about my refund, please"
    assert flip["head"]["output"] == "Sorry, no idea."
    gates = {(g["gate"], g.get("metric")): g["outcome"] for g in small["gates"]}
    assert gates[("pass_rate", "pass_rate")] == "block"
    cost = small["metrics"]["cost_per_case_usd"]
    assert 0.05 < cost["ratio"] < 0.15  # a tenth of the price per token

    # big-model: answers like the prompt's model, and coupon-01 right: 0 → 1 flip, 10× cost
    rate = big["metrics"]["pass_rate"]
    assert (rate["base"], rate["head"], rate["p_value"]) == (0.95, 1.0, 1.0)
    assert big["flips"]["pass_to_fail"] == []
    assert [f["case_id"] for f in big["flips"]["fail_to_pass"]] == ["coupon-01"]
    assert big["metrics"]["cost_per_case_usd"]["ratio"] > 9
    gates = {g["gate"]: g["outcome"] for g in big["gates"]}
    assert gates["cost_per_case"] == "warn" and gates["pass_rate"] == "pass"
    assert data["decision"] == "block"  # small-model would block: reported, exit 0

    # the pairing is real: every model got the same rendered messages for every case, and
    # every answer was graded by the prompt's own model (no model grades itself)
    messages: dict[str, list[str]] = defaultdict(list)
    judges = set()
    for request in live.chat_requests():
        body = request.body
        text = json.dumps(body["messages"], sort_keys=True)
        if JUDGE_SIGNATURE in text:
            judges.add(body["model"])
        else:
            messages[body["model"]].append(text)
    assert set(messages) == {"test-model", "small-model", "big-model"}
    assert sorted(messages["small-model"]) == sorted(messages["test-model"])
    assert sorted(messages["big-model"]) == sorted(messages["test-model"])
    assert len(messages["test-model"]) == 20  # the prompt's own model ran once for both
    assert judges == {"test-model"}


def test_every_report_format_shows_each_model_against_the_prompts(
    project: PromptRepo, tmp_path: Path
) -> None:
    text = project.cli("diff", "echo", "--model", "small-model", "--model", "big-model")
    assert text.exit_code == 0, text.stderr
    out = text.stdout
    assert out.startswith("promptyard diff --model: a model would be blocked\n")
    assert "test-model → small-model" in out and "test-model → big-model" in out
    rate_line = next(line for line in out.splitlines() if line.strip().startswith("pass rate"))
    assert rate_line.split()[2:7] == ["95.0%", "75.0%", "−20.0", "pts", "[−40.5,"]
    assert rate_line.split()[-2:] == ["0.219", "mcnemar-exact"]
    assert "pass → fail (5):" in out and "fail → pass (1):" in out
    assert "refund-01 (score 1.00 → 0.50)" in out
    assert "If the prompt switched model (the gates, not this command's exit code): BLOCK" in out

    markdown = project.cli("diff", "echo", "--model", "small-model", "--format", "markdown")
    assert markdown.exit_code == 0
    md = markdown.stdout
    assert "## ❌ promptyard diff --model: a model would be blocked" in md
    assert "test-model → small-model" in md
    assert "5 case(s) went pass → fail" in md
    assert "`refund-01`" in md and "Sorry, no idea." in md

    page = tmp_path / "models.html"
    html = project.cli(
        "diff", "echo", "--model", "small-model", "--format", "html", "--out", str(page)
    )
    assert html.exit_code == 0 and f"wrote {page}" in html.stderr
    doc = page.read_text()
    assert doc.startswith("<!doctype html>")
    assert "test-model → small-model" in doc and "refund-01" in doc
    assert "Sorry" in doc and "0.219" in doc


def test_gate_makes_the_comparison_a_gate(project: PromptRepo) -> None:
    blocked = project.cli("diff", "echo", "--model", "small-model", "--gate")
    assert blocked.exit_code == 1, blocked.stderr
    passing = project.cli("diff", "echo", "--model", "big-model", "--gate")
    assert passing.exit_code == 0, passing.stderr  # cost only warns


def test_compare_models_in_the_eval_and_lint(project: PromptRepo) -> None:
    project.write(
        "prompts/echo.yaml",
        prompt(version="1.0.1").replace(
            "  threshold: 0.7\n", "  threshold: 0.7\n  compare_models: [small-model]\n"
        ),
    )
    assert project.cli("lint").exit_code == 0
    data = diff_json(project)  # no --base, no --model: the evals' compare_models
    assert [(p["prompt"], p["head_model"]) for p in data["prompts"]] == [("echo", "small-model")]
    assert data["prompts"][0]["metrics"]["pass_rate"]["head"] == 0.75
    # --model replaces them
    assert [p["head_model"] for p in diff_json(project, "--model", "big-model")["prompts"]] == [
        "big-model"
    ]

    project.write(
        "prompts/echo.yaml",
        prompt(version="1.0.1").replace(
            "  threshold: 0.7\n",
            "  threshold: 0.7\n  compare_models:\n  - small-model\n  - test-model\n"
            "  - {provider: anthropic, name: claude}\n  - small-model\n",
        ),
    )
    result = project.cli("lint", "--format", "json")
    assert result.exit_code == 1
    found = [
        (f["line"], f["column"], f["message"])
        for f in result.json["findings"]
        if f["rule"] == "P016"
    ]
    lines = project.read("prompts/echo.yaml").splitlines()
    at = {text: number for number, text in enumerate(lines, 1)}
    assert found == [
        (
            at["  - test-model"],
            5,
            "model test-model is the prompt's own model; name a different model",
        ),
        (
            at["  - {provider: anthropic, name: claude}"],
            5,
            "model anthropic:claude: provider 'anthropic' is not defined in promptyard.yaml "
            "(defined: default); add it under `providers:` or name a defined one",
        ),
        (len(lines), 5, "evals[0].compare_models repeats small-model; remove one"),
    ]
    # the same check refuses it at run time, with exit 2
    run = project.cli("diff", "echo")
    assert run.exit_code == 2 and "is the prompt's own model" in run.stderr


def test_offline_replay_from_recordings(
    project: PromptRepo, live: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = project.cli("diff", "echo", "--model", "small-model", "--record", "--format", "json")
    assert recorded.exit_code == 0, recorded.stderr
    assert "recorded responses to golden/recordings/echo.jsonl" in recorded.stderr
    rows = project.jsonl("golden/recordings/echo.jsonl")
    assert {r["model"] for r in rows if r["kind"] == "chat"} == {"test-model", "small-model"}
    project.commit("recordings of both models")
    monkeypatch.delenv(BASE_URL_ENV)
    requests = len(live.requests)
    replay = project.cli("diff", "echo", "--model", "small-model", "--format", "json")
    assert replay.exit_code == 0, replay.stderr
    assert "running offline" in replay.stderr
    assert len(live.requests) == requests  # nothing live
    data = replay.json
    assert data["offline"] is True
    live_small, offline_small = recorded.json["prompts"][0], data["prompts"][0]
    for name in ("pass_rate", "mean_score", "cost_per_case_usd"):
        assert offline_small["metrics"][name] == live_small["metrics"][name]
    assert offline_small["flips"] == live_small["flips"]
    assert offline_small["evals"][0]["missing"] == {"base": [], "head": []}
    # a model never recorded cannot be compared offline: its cases are missing, and say so
    missing = project.cli("diff", "echo", "--model", "big-model", "--format", "json")
    (evaluation,) = missing.json["prompts"][0]["evals"]
    assert len(evaluation["missing"]["head"]) == 20
    coverage = next(g for g in evaluation["gates"] if g["gate"] == "coverage")
    assert coverage["outcome"] == "block"


def test_the_cache_keeps_each_models_answers_apart(project: PromptRepo, live: OpenAIServer) -> None:
    first = diff_json(project, "echo", "--model", "small-model")
    requests = len(live.requests)
    again = diff_json(project, "echo", "--model", "small-model")
    assert len(live.requests) == requests  # every answer came from the cache
    assert again["prompts"][0]["metrics"] == first["prompts"][0]["metrics"]
    assert again["prompts"][0]["metrics"]["pass_rate"]["head"] == 0.75


def test_bad_model_options_exit_2_with_one_clear_message(project: PromptRepo) -> None:
    cases_ = [
        (
            ("--model", "defualt:gpt-4o"),
            "no provider 'defualt' in promptyard.yaml (did you mean default:gpt-4o?)",
        ),
        (("--model", "test-model"), "model test-model is the prompt's own model"),
        (("--model", " "), "--model needs a model name"),
        (("--model", "small-model", "--base", "HEAD"), "cannot be combined with --base"),
        (("--gate", "--base", "HEAD"), "--gate applies to a model comparison"),
        (("--head", "HEAD"), "--head needs --base"),
        ((), "nothing to compare: echo has no eval listing `compare_models`"),
        # the test server refuses a model name holding this marker: a model it does not serve
        (("--model", "default:[[fault:404]]"), "the provider refused every request of echo"),
    ]
    for args, message in cases_:
        result = project.cli("diff", "echo", *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
        if not result.stderr.startswith("Usage:"):  # click's usage errors add their usage line
            assert len(result.error_lines()) <= 2, result.stderr
    unknown = project.cli("diff", "nosuch", "--model", "small-model")
    assert unknown.exit_code == 2 and "no prompt named 'nosuch'" in unknown.stderr


def test_two_endpoints_of_one_type_with_one_model_name_are_refused(
    tmp_path: Path, live: OpenAIServer
) -> None:
    config = CONFIG.replace(
        "pricing:",
        f"  other:\n    type: openai\n    base_url_env: {BASE_URL_ENV}\n    api_key_env: {API_KEY_ENV}\npricing:",
    )
    repo = PromptRepo.create(tmp_path / "two", config)
    repo.write("prompts/echo.yaml", prompt())
    repo.write("golden/echo.jsonl", cases())
    result = repo.cli("diff", "echo", "--model", "other:test-model")
    assert result.exit_code == 2
    assert "sends the same requests as the prompt's own (default:test-model" in result.stderr
    ok = repo.cli("diff", "echo", "--model", "other:small-model", "--format", "json")
    assert ok.exit_code == 0, ok.stderr
    assert ok.json["prompts"][0]["head_model"] == "other:small-model"


def test_recordings_prune_keeps_the_rows_compare_models_use(project: PromptRepo) -> None:
    listed = prompt(version="1.0.1").replace(
        "  threshold: 0.7\n", "  threshold: 0.7\n  compare_models: [small-model]\n"
    )
    project.write("prompts/echo.yaml", listed)
    assert project.cli("diff", "echo", "--record").exit_code == 0
    project.commit("compare small-model, recorded")
    kept = project.cli("recordings", "prune", "--check", "--format", "json")
    assert kept.exit_code == 0, kept.stdout + kept.stderr  # every row is asked for
    # without the list, the small-model rows are used by nothing
    project.write("prompts/echo.yaml", prompt(version="1.0.2"))
    project.commit("no comparison any more")
    stale = project.cli("recordings", "prune", "--check", "--format", "json")
    assert stale.exit_code == 1
    unused = [row for f in stale.json["files"] for row in f["unused_rows"]]
    rows = {r["key"]: r for r in project.jsonl("golden/recordings/echo.jsonl")}
    assert {rows[u["key"]]["model"] for u in unused if u["kind"] == "chat"} == {"small-model"}
    assert len([u for u in unused if u["kind"] == "chat"]) == 20
