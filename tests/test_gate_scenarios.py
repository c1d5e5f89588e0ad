"""The merge gate end to end: real temporary git repositories, the local model server, the CLI.

Each test is one acceptance scenario of the merge gate: what `promptyard check` and
`promptyard diff` decide, the exit code, and what the reports say.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from support.evals import BASE_URL_ENV, EVAL_CONFIG, jsonl
from support.gate import WORDS, cases, echo_spec, gate_repo, regressing_user
from support.openai_server import OpenAIServer
from support.repo import PromptRepo

REGRESSED = ["refund", "invoice", "billing", "coupon", "login", "order"]


@pytest.fixture
def project(tmp_path: Path, live: OpenAIServer) -> PromptRepo:
    return gate_repo(tmp_path / "repo")


def check_json(repo: PromptRepo, *args: str) -> tuple[int, dict, str]:
    result = repo.cli("check", *args, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_regression_blocks_and_names_the_cases(project: PromptRepo, tmp_path: Path) -> None:
    project.write(
        "prompts/echo.yaml",
        echo_spec(version="1.0.1", system="Be brief.", user=regressing_user(REGRESSED)),
    )
    md, page = tmp_path / "report.md", tmp_path / "report.html"
    result = project.cli("check", "--base", "base", "--report", str(md), "--html", str(page))
    assert result.exit_code == 1, result.stderr
    assert "Decision: BLOCK" in result.stdout
    for word in REGRESSED:
        assert f"{word}-01" in result.stdout
    report = md.read_text()
    assert report.startswith("<!-- promptyard-report -->\n## ❌ promptyard check: blocked")
    assert "pass rate dropped 30.0 pts (100.0% → 70.0%)" in report
    assert "6 case(s) went pass → fail" in report
    assert "`refund-01`" in report and "Sorry, no idea." in report
    assert page.read_text().startswith("<!doctype html>")

    code, data, _ = check_json(project, "--base", "base")
    assert code == 1 and data["decision"] == "block"
    (prompt,) = data["prompts"]
    assert (prompt["prompt"], prompt["status"]) == ("echo", "changed")
    assert (prompt["base_version"], prompt["head_version"]) == ("1.0.0", "1.0.1")
    rate = prompt["metrics"]["pass_rate"]
    assert set(rate) >= {"base", "head", "delta", "ci95", "p_value", "test"}
    assert (rate["base"], rate["head"]) == (1.0, 0.7)
    assert rate["delta"] == pytest.approx(-0.3)
    assert rate["test"] == "mcnemar-exact"
    assert rate["p_value"] == pytest.approx(2 * 0.5**6)  # exact: 6 discordant, all one way
    assert rate["ci95"][0] < -0.3 < rate["ci95"][1] < 0
    gates = {(g["gate"], g.get("metric")): g for g in prompt["gates"]}
    assert gates[("pass_rate", "pass_rate")]["outcome"] == "block"
    assert gates[("pass_rate", "pass_rate")]["action"] == "block"
    assert gates[("score", "mean_score")]["outcome"] == "warn"  # default action of the score gate
    assert gates[("threshold", "pass_rate")]["outcome"] == "block"
    flipped = [f["case_id"] for f in prompt["flips"]["pass_to_fail"]]
    assert sorted(flipped) == sorted(f"{w}-01" for w in REGRESSED)
    assert prompt["flips"]["fail_to_pass"] == []
    first = prompt["flips"]["pass_to_fail"][0]
    assert first["base"]["pass"] is True and first["head"]["output"] == "Sorry, no idea."
    assert ["+", "Sorry"] in first["diff"]


def test_wording_change_with_identical_outputs_passes(
    project: PromptRepo, live: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_spec(version="1.0.1", system="Keep it short."))
    code, data, _ = check_json(project, "--base", "base")
    assert code == 0, data
    assert data["decision"] == "pass"
    (prompt,) = data["prompts"]
    assert prompt["status"] == "changed"
    assert prompt["metrics"]["pass_rate"]["delta"] == 0
    assert prompt["metrics"]["pass_rate"]["p_value"] == 1.0
    assert prompt["flips"] == {"pass_to_fail": [], "fail_to_pass": []}
    assert {g["outcome"] for g in prompt["gates"]} == {"pass"}
    # base and head really both ran: 20 chat requests each (the system message differs)
    assert len(live.chat_requests()) == 40


def test_new_prompt_under_its_threshold_blocks(project: PromptRepo) -> None:
    project.write(
        "prompts/fresh.yaml",
        echo_spec(
            "fresh",
            dataset="golden/fresh.jsonl",
            threshold=0.9,
            user=regressing_user(["refund", "invoice"]),
        ),
    )
    project.write("golden/fresh.jsonl", cases(WORDS[:10]))
    code, data, _ = check_json(project, "--base", "base")
    assert code == 1
    prompt = next(p for p in data["prompts"] if p["prompt"] == "fresh")
    assert prompt["status"] == "added" and prompt["base_version"] is None
    threshold = next(g for g in prompt["gates"] if g["gate"] == "threshold")
    assert threshold["outcome"] == "block"
    assert "pass rate 80.0% (8/10) is below the threshold 90.0%" in threshold["reason"]
    assert "refund-01" in threshold["reason"] and "invoice-01" in threshold["reason"]
    assert prompt["metrics"]["pass_rate"]["base"] is None
    assert prompt["metrics"]["pass_rate"]["head"] == 0.8
    # the unchanged prompt was not evaluated
    assert [p["prompt"] for p in data["prompts"]] == ["fresh"]


def test_partial_change_marks_its_dependents_changed(project: PromptRepo) -> None:
    project.write("prompts/partials/tone.j2", "Be brief.")
    project.write("prompts/echo.yaml", echo_spec(system='{% include "tone.j2" %}'))
    project.write(
        "prompts/other.yaml",
        echo_spec("other", system='{% include "tone.j2" %}', dataset="golden/echo.jsonl"),
    )
    project.write("prompts/plain.yaml", echo_spec("plain"))
    project.commit("partials")
    project.git("branch", "-f", "base")
    project.write("prompts/partials/tone.j2", "Be brief and kind.")
    result = project.cli("diff", "--base", "base", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json
    by_name = {p["prompt"]: p for p in data["prompts"]}
    assert set(by_name) == {"echo", "other"}  # `plain` does not include the partial
    for name in ("echo", "other"):
        assert by_name[name]["status"] == "changed"
        assert by_name[name]["reasons"] == ["partial tone.j2 changed"]
        assert by_name[name]["base_hash"] != by_name[name]["head_hash"]
        assert by_name[name]["metrics"]["pass_rate"]["delta"] == 0


def test_dataset_change_is_reported(project: PromptRepo) -> None:
    kept = [w for w in WORDS if w not in ("refund", "invoice")]
    rows = [json.loads(line) for line in cases(kept).splitlines()]
    rows[0]["expected"] = "nothing-like-it"  # a modified case that now fails
    rows.append({"id": "new-01", "vars": {"text": "a brand new case"}, "expected": "brand"})
    project.write("golden/echo.jsonl", jsonl(rows))
    code, data, _ = check_json(project, "--base", "base")
    assert code == 0, data  # 18/19 still meets the 80% threshold
    (dataset,) = data["datasets"]
    assert dataset["path"] == "golden/echo.jsonl" and dataset["status"] == "changed"
    assert dataset["added"] == ["new-01"]
    assert dataset["removed"] == ["refund-01", "invoice-01"]
    assert dataset["modified"] == [f"{kept[0]}-01"]
    assert dataset["used_by"] == ["echo"]
    (prompt,) = data["prompts"]
    assert prompt["status"] == "dataset-changed"
    assert prompt["reasons"] == ["dataset golden/echo.jsonl changed"]
    (evaluation,) = prompt["evals"]
    assert evaluation["cases"] == 19
    assert evaluation["dataset_change"]["added"] == ["new-01"]
    md = project.cli("diff", "--base", "base", "--format", "markdown").stdout
    assert "`golden/echo.jsonl` (used by `echo`)" in md
    assert "added: `new-01`" in md and "removed: `refund-01`, `invoice-01`" in md


def test_removed_prompt_is_reported(project: PromptRepo) -> None:
    project.write("prompts/gone.yaml", echo_spec("gone", version="3.1.0"))
    project.commit("a prompt to remove")
    project.git("branch", "-f", "base")
    project.remove("prompts/gone.yaml")
    code, data, _ = check_json(project, "--base", "base")
    assert code == 0
    (prompt,) = data["prompts"]
    assert prompt["prompt"] == "gone" and prompt["status"] == "removed"
    assert (prompt["base_version"], prompt["head_version"]) == ("3.1.0", None)
    assert prompt["reasons"] == ["prompts/gone.yaml removed"] and prompt["evals"] == []
    text = project.cli("check", "--base", "base").stdout
    assert "gone  [removed]  3.1.0" in text


def test_unknown_base_ref_exits_2(project: PromptRepo, tmp_path: Path) -> None:
    for command in ("check", "diff"):
        result = project.cli(command, "--base", "no-such-branch")
        assert result.exit_code == 2
        assert "unknown git ref 'no-such-branch'" in result.stderr
        assert "Traceback" not in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_provider_exits_3_and_never_passes(
    project: PromptRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write("prompts/echo.yaml", echo_spec(version="1.0.1", system="Keep it short."))
    md = tmp_path / "report.md"
    md.write_text("<!-- promptyard-report -->\n## ✅ promptyard check: passed\n")  # a stale pass
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}/v1")
    result = project.run("check", "--base", "base", "--report", str(md))
    assert result.exit_code == 3, result.stderr
    assert "provider 'default'" in result.stderr and "unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert "passed" not in result.stdout + result.stderr
    report = md.read_text()
    assert "could not finish (exit 3)" in report and "passed" not in report
    assert "unreachable" in report


def test_unchanged_repository_passes_without_running(
    project: PromptRepo, live: OpenAIServer
) -> None:
    project.remove(".gitignore")  # eval results under .promptyard/ are not a change either
    project.commit("no .gitignore")
    assert project.cli("eval").exit_code == 0
    live.reset()
    code, data, _ = check_json(project, "--base", "base")
    assert code == 0 and data["prompts"] == [] and data["decision"] == "pass"
    assert data["datasets"] == []
    assert live.chat_requests() == []
    md = project.cli("diff", "--base", "base", "--format", "markdown").stdout
    assert "No prompt changed." in md


def test_check_without_base_judges_every_prompt(project: PromptRepo) -> None:
    project.write("prompts/fresh.yaml", echo_spec("fresh", user=regressing_user(WORDS[:5])))
    code, data, _ = check_json(project)
    assert code == 1
    by_name = {p["prompt"]: p for p in data["prompts"]}
    assert by_name["echo"]["status"] == "checked" and by_name["echo"]["decision"] == "pass"
    assert by_name["fresh"]["decision"] == "block"  # 75% < 80%
    assert data["lint"]["ok"] is True


def test_lint_error_blocks_the_check(project: PromptRepo) -> None:
    # content changed without a version bump: lint --base (R001) fails the check
    project.write("prompts/echo.yaml", echo_spec(system="Keep it short."))
    code, data, _ = check_json(project, "--base", "base")
    assert code == 1 and data["decision"] == "block"
    assert [f["rule"] for f in data["lint"]["findings"]] == ["R001"]
    assert data["prompts"][0]["decision"] == "pass"  # the evals themselves pass


def test_diff_of_refs_and_names(project: PromptRepo) -> None:
    project.write(
        "prompts/echo.yaml",
        echo_spec(version="1.1.0", system="Be brief.", user=regressing_user(["refund"])),
    )
    project.write("prompts/second.yaml", echo_spec("second"))
    head = project.commit("head")
    result = project.cli("diff", "--base", "base", "--head", head, "echo", "--format", "json")
    assert result.exit_code == 1  # 95%: the pass rate dropped 5 points > 3
    assert [p["prompt"] for p in result.json["prompts"]] == ["echo"]
    assert result.json["head"] == head
    missing = project.cli("diff", "--base", "base", "nope")
    assert missing.exit_code == 2 and "no prompt named 'nope'" in missing.stderr


def test_require_significance_turns_a_small_drop_into_a_warning(
    tmp_path: Path, live: OpenAIServer
) -> None:
    config = (
        EVAL_CONFIG
        + "gates:\n  pass_rate: {max_drop: 0.03, action: block, require_significance: true}\n"
    )
    repo = gate_repo(tmp_path / "repo", config)
    repo.write(
        "prompts/echo.yaml",
        echo_spec(version="1.0.1", system="Be brief.", user=regressing_user(["refund", "login"])),
    )
    code, data, _ = check_json(repo, "--base", "base")
    gate = next(g for g in data["prompts"][0]["gates"] if g["gate"] == "pass_rate")
    assert gate["outcome"] == "warn" and code == 0
    assert "not significant at α = 0.05 (one-sided p = 0.250 for a drop)" in gate["reason"]
    assert "two-sided p = 0.500" in gate["reason"]
    assert gate["cases_needed"] > 20
    assert "dataset too small to detect a 3.0 pts drop at 80% power" in gate["reason"]
    # five regressions, none the other way: two-sided p = 0.0625 would let it through, but
    # the gate asks whether head got worse: one-sided p = 0.031 < 0.05 blocks
    repo.write(
        "prompts/echo.yaml",
        echo_spec(version="1.0.1", system="Be brief.", user=regressing_user(REGRESSED[:5])),
    )
    code, data, _ = check_json(repo, "--base", "base")
    rate = data["prompts"][0]["metrics"]["pass_rate"]
    assert rate["p_value"] == pytest.approx(2 * 0.5**5)
    assert rate["p_regression"] == pytest.approx(0.5**5)
    gate = next(g for g in data["prompts"][0]["gates"] if g["gate"] == "pass_rate")
    assert gate["outcome"] == "block" and code == 1
    assert "significant at α = 0.05 (one-sided p = 0.031 for a drop)" in gate["reason"]


def test_github_actions_summary_and_annotations(
    project: PromptRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a regression, and the version not bumped (a lint error)
    project.write(
        "prompts/echo.yaml", echo_spec(system="Be brief.", user=regressing_user(REGRESSED))
    )
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = project.cli("check", "--base", "base")
    assert result.exit_code == 1
    written = summary.read_text()
    assert written.startswith("earlier step\n<!-- promptyard-report -->\n## ❌")
    assert "1 lint error(s)" in written
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("::error file=prompts/echo.yaml,line=") and "R001" in line for line in lines
    )
    assert any(
        line.startswith(
            "::error file=prompts/echo.yaml,title=promptyard gate%3A pass_rate::echo: pass rate dropped"
        )
        for line in lines
    )
    assert any(
        line.startswith("::warning file=prompts/echo.yaml,title=promptyard gate%3A score")
        for line in lines
    )


def test_offline_from_recordings_like_a_fork_pull_request(
    project: PromptRepo, live: OpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # main has recordings of the base prompt; the PR records its head prompt
    assert project.cli("eval", "echo", "--record").exit_code == 0
    project.commit("base recordings")
    project.git("branch", "-f", "base")
    project.write(
        "prompts/echo.yaml",
        echo_spec(version="1.0.1", system="Be brief.", user=regressing_user(["refund"])),
    )
    project.write("prompts/extra.yaml", echo_spec("extra"))
    assert project.cli("eval", "echo", "--record").exit_code == 0
    project.commit("head with its recordings")
    monkeypatch.delenv(BASE_URL_ENV)
    requests_before = len(live.chat_requests())
    result = project.cli("check", "--base", "base", "--offline", "--format", "json")
    assert result.exit_code == 1, result.stderr
    data = result.json
    assert data["offline"] is True
    assert len(live.chat_requests()) == requests_before  # nothing live
    echo = next(p for p in data["prompts"] if p["prompt"] == "echo")
    assert echo["metrics"]["pass_rate"]["base"] == 1.0
    assert echo["metrics"]["pass_rate"]["head"] == 0.95
    assert [f["case_id"] for f in echo["flips"]["pass_to_fail"]] == ["refund-01"]
    # the added prompt has no recordings: it cannot be judged, and that blocks
    extra = next(p for p in data["prompts"] if p["prompt"] == "extra")
    coverage = next(g for g in extra["gates"] if g["gate"] == "coverage")
    assert coverage["outcome"] == "block"
    assert "20 head case(s) have no result" in coverage["reason"]
    assert "promptyard eval extra --record" in coverage["reason"]
    project.cli("check", "--base", "base", "--offline", "--report", str(tmp_path / "r.md"))
    assert "Ran offline" in (tmp_path / "r.md").read_text()


def test_diff_record_lets_ci_replay_base_and_head(
    project: PromptRepo, live: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no recordings on the base; the dataset grows in the PR
    project.write("golden/echo.jsonl", cases([*WORDS, "voucher"]))
    project.write(
        "prompts/echo.yaml",
        echo_spec(version="1.0.1", system="Be brief.", user=regressing_user(["voucher"])),
    )
    recorded = project.cli("diff", "--base", "base", "--record")
    assert recorded.exit_code == 1, recorded.stderr  # 1 of 21 flipped: a 4.8-point drop
    assert "recorded responses to golden/recordings/echo.jsonl" in recorded.stderr
    monkeypatch.delenv(BASE_URL_ENV)
    result = project.cli("diff", "--base", "base", "--offline", "--format", "json")
    assert result.exit_code == 1 and result.json["offline"] is True
    (prompt,) = result.json["prompts"]
    (evaluation,) = prompt["evals"]
    assert evaluation["paired"] == 21 and evaluation["missing"] == {"base": [], "head": []}
    assert [f["case_id"] for f in prompt["flips"]["pass_to_fail"]] == ["voucher-01"]


def test_invalid_prompt_and_broken_dataset_block_without_a_traceback(project: PromptRepo) -> None:
    project.write("prompts/broken.yaml", "name: broken\nversion: 1.0.0\nmessages: [oops\n")
    project.write("prompts/nodata.yaml", echo_spec("nodata", dataset="golden/missing.jsonl"))
    code, data, stderr = check_json(project, "--base", "base")
    assert code == 1 and "Traceback" not in stderr
    by_name = {p["prompt"]: p for p in data["prompts"]}
    broken = by_name["broken"]
    assert broken["status"] == "invalid"
    assert broken["gates"][0]["gate"] == "spec" and broken["gates"][0]["outcome"] == "block"
    assert "prompts/broken.yaml" in broken["gates"][0]["reason"]
    nodata = by_name["nodata"]
    assert nodata["status"] == "added"
    (dataset_gate,) = nodata["gates"]
    assert dataset_gate["gate"] == "dataset" and dataset_gate["outcome"] == "block"
    assert "golden/missing.jsonl: dataset does not exist" in dataset_gate["reason"]
    assert not data["lint"]["ok"]


def test_repeats_compare_per_case_means(project: PromptRepo) -> None:
    project.write("prompts/echo.yaml", echo_spec(version="1.0.1", system="Keep it short."))
    result = project.cli("diff", "--base", "base", "--repeat", "3", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (prompt,) = result.json["prompts"]
    (evaluation,) = prompt["evals"]
    assert evaluation["repeat"] == 3
    metrics = prompt["metrics"]
    assert metrics["mean_score"]["test"] == "paired-clustered"
    assert metrics["repeat_pass_rate"]["test"] == "paired-clustered"
    assert metrics["pass_rate"]["test"] == "mcnemar-exact" and metrics["pass_rate"]["n"] == 20


def test_github_actions_json_output_stays_json(
    project: PromptRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write(
        "prompts/echo.yaml", echo_spec(system="Be brief.", user=regressing_user(REGRESSED))
    )
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    code, data, _ = check_json(project, "--base", "base")
    assert code == 1 and data["decision"] == "block"
    assert (tmp_path / "summary.md").read_text().startswith("<!-- promptyard-report -->")
