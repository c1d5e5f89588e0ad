"""Work on a slice: `--case`/`--tag` for eval, diff and check; `render --case`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.evals import API_KEY_ENV, EVAL_CONFIG, echo_prompt, jsonl
from support.openai_server import OpenAIServer
from support.repo import PromptRepo

CASES = [
    {"id": "refund-1", "vars": {"text": "refund please"}, "tags": ["billing"]},
    {"id": "refund-2", "vars": {"text": "money back"}, "tags": ["billing", "angry"]},
    {"id": "hello", "vars": {"text": "hello there"}},
    {"id": "bye", "vars": {"text": "bye now"}, "tags": ["smalltalk"]},
]
RECORDINGS = "golden/recordings/echo.jsonl"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PromptRepo:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    repo = PromptRepo.create(tmp_path / "repo", EVAL_CONFIG)
    # Passes when the answer contains "please" or "there": 2 of the 4 cases.
    asserts = [{"type": "contains-any", "value": ["please", "there"]}]
    repo.write("prompts/echo.yaml", echo_prompt(asserts=asserts, threshold=0.5))
    repo.write("golden/echo.jsonl", jsonl(CASES))
    return repo


def asked(server: OpenAIServer) -> list[str]:
    return sorted(r.body["messages"][-1]["content"] for r in server.chat_requests())


def test_eval_runs_only_the_named_cases_and_tags(project: PromptRepo, live: OpenAIServer) -> None:
    one = project.cli("eval", "--case", "hello", "--format", "json")
    assert one.exit_code == 0, one.stderr
    (row,) = one.json["runs"]
    assert row["cases"] == 1 and row["passed"] == 1
    assert row["slice"] == {"cases": ["hello"], "tags": [], "selected": 1, "total": 4}
    assert asked(live) == ["hello there"]
    summary = json.loads((Path(row["results_path"]).parent / "summary.json").read_text())
    assert summary["slice"]["selected"] == 1 and summary["cases"] == 1

    live.reset()
    # A case is in when it is named or has a named tag.
    both = project.cli("eval", "--tag", "billing", "--case", "bye", "--format", "json")
    assert both.json["runs"][0]["cases"] == 3
    assert asked(live) == ["bye now", "money back", "refund please"]


def test_the_threshold_judges_the_slice_and_the_output_says_it_is_one(
    project: PromptRepo, live: OpenAIServer
) -> None:
    # refund-2 fails ("money back"): 0 of 1, below the 50% threshold of the eval.
    below = project.cli("eval", "--tag", "angry")
    assert below.exit_code == 1
    assert "below threshold: echo on golden/echo.jsonl (slice: 1 of 4 cases): pass rate 0.0%" in (
        below.stdout
    )
    assert "slice only (tag angry): the thresholds were applied to 1 selected case(s)" in (
        below.stdout
    )
    met = project.cli("eval", "--case", "refund-1")
    assert met.exit_code == 0
    assert "1 of 4" in met.stdout and "slice only (case refund-1)" in met.stdout
    whole = project.cli("eval")
    assert whole.exit_code == 0 and "slice" not in whole.stdout


def test_unknown_case_ids_and_tags_are_usage_errors(project: PromptRepo) -> None:
    missing = project.cli("eval", "--case", "refund-3")
    assert missing.exit_code == 2
    assert "--case 'refund-3': no such case in golden/echo.jsonl" in missing.stderr
    assert "case ids there: refund-1, refund-2, hello, bye" in missing.stderr
    tag = project.cli("eval", "--tag", "billingg")
    assert tag.exit_code == 2
    assert "--tag 'billingg': no case in golden/echo.jsonl has this tag" in tag.stderr
    assert "tags in use: angry, billing, smalltalk" in tag.stderr
    assert "Traceback" not in missing.stderr + tag.stderr
    project.commit("echo")
    gate = project.cli("check", "--base", "main", "--case", "refund-1")
    assert gate.exit_code == 2
    assert "no such case in no dataset (nothing is evaluated)" in gate.stderr


def test_recording_a_slice_replaces_only_its_cases(project: PromptRepo, live: OpenAIServer) -> None:
    assert project.cli("eval", "--record").exit_code == 0
    project.write(
        "prompts/echo.yaml", project.read("prompts/echo.yaml").replace("{{ text }}", "{{ text }}!")
    )
    assert project.cli("eval", "--record", "--case", "hello").exit_code == 0
    answers = sorted(json.loads(line)["text"] for line in project.read(RECORDINGS).splitlines())
    assert answers == ["bye now", "hello there!", "money back", "refund please"]


def test_diff_and_check_reports_say_they_judged_a_slice(
    project: PromptRepo, live: OpenAIServer, tmp_path: Path
) -> None:
    project.write("prompts/other.yaml", echo_prompt("other", dataset="golden/other.jsonl"))
    project.write("golden/other.jsonl", jsonl([{"id": "x", "vars": {"text": "x"}}]))
    project.commit("base")
    project.git("checkout", "-q", "-b", "change")
    for name in ("echo", "other"):
        path = f"prompts/{name}.yaml"
        doc = project.read(path).replace("{{ text }}", "{{ text }} please")
        project.write(path, doc.replace("version: 1.0.0", "version: 1.1.0"))
    diff = project.cli("diff", "--base", "main", "--tag", "billing")
    assert diff.exit_code == 0, diff.stdout + diff.stderr
    assert diff.stdout.startswith("promptyard diff on a slice: passed")
    assert (
        "Slice only: tag billing (2 of 4 in golden/echo.jsonl). The verdict covers these "
        "cases, not the whole datasets." in diff.stdout
    )
    assert "golden/echo.jsonl: 2 of 4 case(s) (slice), 2 paired" in diff.stdout
    # `other` has no case tagged billing: not evaluated, and not blamed for having no evals
    assert "not evaluated: its datasets hold no case of the slice" in diff.stdout
    assert "has no evals" not in diff.stdout
    as_json = project.cli("diff", "--base", "main", "--tag", "billing", "--format", "json").json
    assert as_json["slice"] == {"cases": [], "tags": ["billing"]}
    echo = next(p for p in as_json["prompts"] if p["prompt"] == "echo")
    assert echo["evals"][0]["slice"] == {
        "cases": [],
        "tags": ["billing"],
        "selected": 2,
        "total": 4,
    }
    assert echo["evals"][0]["cases"] == 2

    report, html = tmp_path / "report.md", tmp_path / "report.html"
    check = project.cli(
        "check", "--base", "main", "--case", "hello", "--report", str(report), "--html", str(html)
    )
    assert check.exit_code == 0, check.stdout
    markdown = report.read_text()
    assert "promptyard check on a slice: passed" in markdown
    assert "**Slice only: case hello (1 of 4 in golden/echo.jsonl)." in markdown
    page = html.read_text()
    assert "promptyard check on a slice: passed" in page and 'id="slice"' in page
    assert "1 of 4 case(s) (slice)" in page


def test_render_a_case(project: PromptRepo) -> None:
    result = project.cli("render", "echo", "--case", "refund-2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.json["messages"][-1]["content"] == "money back"
    # --var still wins over the case's variables
    override = project.cli("render", "echo", "--case", "refund-2", "--var", "text=hi")
    assert override.exit_code == 0 and "hi" in override.stdout
    unknown = project.cli("render", "echo", "--case", "nope")
    assert unknown.exit_code == 2
    assert "--case 'nope': no such case in golden/echo.jsonl" in unknown.stderr
    # the same id in two datasets of the prompt: ambiguous unless --dataset says which
    doc = project.read("prompts/echo.yaml").replace(
        "evals:\n", "evals:\n- dataset: golden/more.jsonl\n  threshold: 1.0\n"
    )
    project.write("prompts/echo.yaml", doc)
    project.write("golden/more.jsonl", jsonl([{"id": "hello", "vars": {"text": "hi again"}}]))
    ambiguous = project.cli("render", "echo", "--case", "hello")
    assert ambiguous.exit_code == 2
    assert (
        "--case 'hello' is in several datasets of 'echo': golden/more.jsonl, golden/echo.jsonl"
        in ambiguous.stderr
    )
    assert "choose one with --dataset PATH" in ambiguous.stderr
    chosen = project.cli(
        "render", "echo", "--case", "hello", "--dataset", "golden/more.jsonl", "--format", "json"
    )
    assert chosen.exit_code == 0 and chosen.json["messages"][-1]["content"] == "hi again"
    lonely = project.cli("render", "echo", "--dataset", "golden/more.jsonl")
    assert lonely.exit_code == 2 and "give --case ID too" in lonely.stderr
