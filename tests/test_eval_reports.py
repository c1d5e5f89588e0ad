"""`eval --format markdown|html|csv|json|text --out FILE`: every case, not only the failures."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from support.evals import EVAL_CONFIG, echo_prompt, live_env, text_cases
from support.openai_server import OpenAIServer
from support.repo import PromptRepo

TEXTS = ["refund please", "where is my parcel", "a | pipe <b>and</b> tags"]


@pytest.fixture
def project(tmp_path: Path, openai_server: OpenAIServer) -> PromptRepo:
    repo = PromptRepo.create(tmp_path / "repo", EVAL_CONFIG)
    repo.write(
        "prompts/echo.yaml",
        echo_prompt(asserts=[{"type": "icontains", "value": "refund"}], threshold=0.3),
    )
    repo.write("golden/echo.jsonl", text_cases(*TEXTS))
    return repo


def run(project: PromptRepo, server: OpenAIServer, fmt: str, out: Path) -> str:
    result = project.run("eval", "--format", fmt, "--out", str(out), env=live_env(server))
    assert result.exit_code == 0, result.stderr
    assert "met their threshold" in result.stdout  # the summary still prints
    return out.read_text(encoding="utf-8")


def test_csv_has_every_case_with_variables_answer_and_reasons(
    project: PromptRepo, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    text = run(project, openai_server, "csv", tmp_path / "report.csv")
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["case_id"] for r in rows] == ["c0", "c1", "c2"]
    by_id = {r["case_id"]: r for r in rows}
    assert json.loads(by_id["c1"]["vars"]) == {"text": "where is my parcel"}
    assert by_id["c1"]["output"] == "where is my parcel" and by_id["c1"]["pass"] == "False"
    (check,) = json.loads(by_id["c1"]["assertions"])
    assert check["reason"] == "does not contain 'refund' (any case)"
    assert by_id["c0"]["pass"] == "True" and float(by_id["c0"]["cost_usd"]) > 0
    assert by_id["c0"]["tokens_in"] == "2" and float(by_id["c0"]["latency_ms"]) >= 0


def test_markdown_html_json_and_text_hold_every_case(
    project: PromptRepo, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    md = run(project, openai_server, "markdown", tmp_path / "report.md")
    table = [line for line in md.splitlines() if line.startswith("| c") and "case |" not in line]
    assert len(table) == 3 and all(line.count(" | ") == 8 for line in table)  # pipes escaped
    assert "does not contain &#x27;refund&#x27;" in md and "&lt;b&gt;" in md

    class Rows(HTMLParser):
        rows = 0
        text = ""

        def handle_starttag(self, tag: str, attrs: object) -> None:
            self.rows += tag == "tr"

        def handle_data(self, data: str) -> None:
            self.text += data

    page = Rows()
    page.feed(run(project, openai_server, "html", tmp_path / "report.html"))
    assert page.rows == 1 + 3  # header + every case
    assert "a | pipe <b>and</b> tags" in page.text  # shown as text, not markup

    data = json.loads(run(project, openai_server, "json", tmp_path / "report.json"))
    (summary,) = data["runs"]
    assert summary["cases"] == 3 and len(summary["results"]) == 3
    assert summary["results"][1]["vars"] == {"text": "where is my parcel"}

    text = run(project, openai_server, "text", tmp_path / "report.txt")
    assert text.count("vars: ") == 3 and "[fail] c1" in text and "[pass] c0" in text


def test_markdown_without_out_prints_to_stdout(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    result = project.run("eval", "--format", "markdown", env=live_env(openai_server))
    assert result.exit_code == 0 and result.stdout.startswith("# promptyard eval")
