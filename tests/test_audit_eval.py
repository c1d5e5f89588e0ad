"""Audit: `promptyard eval` (and `cache`) against wrong datasets, recordings, user checks and
providers, through the real CLI on a scaffolded repository (answers come from its recordings).
"""

# The fixtures are imported from support.audit, so pytest sees them here; ruff would
# report each use as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import json
import os
import stat

from support.audit import (  # noqa: F401
    Project,
    assert_clean_error,
    assert_no_crash,
    project,
    scaffold,
)

DATASET = "golden/summarize.jsonl"
RECORDINGS = "golden/recordings/summarize.jsonl"


def _set_case_asserts(project: Project, case_id: str, asserts: list[dict]) -> None:
    rows = project.jsonl(DATASET)
    for row in rows:
        if row["id"] == case_id:
            row["assert"] = asserts
    project.write_jsonl(DATASET, rows)


def test_regex_assertion_on_a_hostile_model_output_does_not_hang(project: Project) -> None:
    # The model's output is untrusted: `^(a+)+$` against "aaa…a!" backtracks for ever, and
    # today the whole eval (a CI job) hangs. Expected: a bounded regex (or a time limit that
    # fails that assertion) and a finished run.
    rows = project.jsonl(RECORDINGS)
    for row in rows:
        if row["case"] == "short-input":
            row["text"] = "a" * 40 + "!"
    project.write_jsonl(RECORDINGS, rows)
    _set_case_asserts(project, "short-input", [{"type": "regex", "value": "^(a+)+$"}])
    result = project.run("eval", "--offline", "--format", "json", timeout=30)
    assert_no_crash(result)
    assert result.code in (0, 1), result.describe()
    assert json.loads(result.stdout)["runs"][0]["cases"] == 5


def test_python_check_calling_sys_exit_does_not_end_the_eval(project: Project) -> None:
    # A `python` check that calls sys.exit(0) makes `promptyard eval` exit 0 with no output at
    # all today: the merge gate passes without evaluating anything. A check is user code; its
    # SystemExit must count as that assertion failing (or a config error), never as success.
    project.write("checks.py", "import sys\n\ndef verdict(output, context):\n    sys.exit(0)\n")
    for row in (rows := project.jsonl(DATASET)):
        row["assert"] = [{"type": "python", "value": "checks:verdict"}]
    project.write_jsonl(DATASET, rows)
    result = project.run("eval", "--offline")
    assert_no_crash(result)
    assert result.code == 1, result.describe()
    assert "checks:verdict" in result.stdout, result.describe()


def test_unknown_assertion_type_is_a_config_error_not_a_failing_eval(project: Project) -> None:
    # lint reports A001, but eval runs the case, calls the model, and reports the case as
    # "fail ... unknown assertion type" with exit 1, as if the prompt had regressed.
    _set_case_asserts(project, "meeting-notes", [{"type": "nosuchtype", "value": "x"}])
    result = project.run("eval", "--offline")
    assert_clean_error(result, 2, DATASET)


def test_lint_rejects_an_infinite_assertion_weight(project: Project) -> None:
    # JSON 1e999 parses as inf; NaN is rejected, but inf slips through as a weight.
    _set_case_asserts(
        project, "meeting-notes", [{"type": "icontains", "value": "Friday", "weight": 1e999}]
    )
    assert "Infinity" in project.read(DATASET)
    project.replace(DATASET, "Infinity", "1e999")
    result = project.run("lint", DATASET)
    assert_clean_error(result, 1, DATASET, where="output", max_lines=0)


def test_eval_json_output_is_valid_json_with_an_infinite_weight(project: Project) -> None:
    # Today stdout has `"mean_score": NaN`, which no JSON parser accepts.
    _set_case_asserts(
        project,
        "meeting-notes",
        [
            {"type": "icontains", "value": "Friday", "weight": 1},
            {"type": "icontains", "value": "zzz"},
        ],
    )
    project.replace(DATASET, '"weight": 1}', '"weight": 1e999}')
    result = project.run("eval", "--offline", "--format", "json")
    assert_no_crash(result)
    if result.code == 2:  # refusing the dataset (it holds a number JSON cannot carry) is right
        assert_clean_error(result, 2, DATASET)
        return

    def reject(constant: str) -> None:
        raise AssertionError(f"stdout is not valid JSON: it contains {constant}")

    json.loads(result.stdout, parse_constant=reject)


def test_eval_of_an_empty_dataset_does_not_pass(project: Project) -> None:
    # 0 cases, threshold 0.8: today "1 eval(s) met their threshold" and exit 0.
    project.write(DATASET, "")
    result = project.run("eval", "--offline")
    assert_no_crash(result)
    assert result.code == 1, result.describe()
    assert DATASET in result.output


def test_no_cache_without_a_provider_says_what_answers(project: Project) -> None:
    # `--no-cache` never reads the cache; with no OPENAI_BASE_URL/OPENAI_API_KEY the run is
    # offline and the committed recordings answer. The one-line note must say exactly that
    # (it used to claim "recordings and the cache").
    result = project.run("eval", "--no-cache")
    assert_no_crash(result)
    assert result.code == 0, result.describe()
    assert "answering from recordings only" in result.stderr, result.describe()
    assert "OPENAI_BASE_URL" in result.stderr


def _no_retries(project: Project) -> None:
    project.replace("promptyard.yaml", "max_retries: 6", "max_retries: 0")


def test_closed_port_is_reported_as_refused_not_as_a_timeout(project: Project) -> None:
    # 127.0.0.1:9 refuses at once; today the message says "(last: no answer within 60 s)".
    _no_retries(project)
    result = project.run("eval", "--no-cache", env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert_clean_error(result, 3, "127.0.0.1:9")
    assert "no answer within" not in result.stderr, result.describe()
    assert "refused" in result.stderr.lower() or "connect" in result.stderr.lower()


def test_malformed_base_url_is_a_config_error(project: Project) -> None:
    # "not a url" is a configuration mistake (exit 2, name the variable), not an unreachable
    # provider (exit 3 after retrying every case).
    _no_retries(project)
    result = project.run("eval", "--no-cache", env={"OPENAI_BASE_URL": "not a url"})
    assert_clean_error(result, 2, "OPENAI_BASE_URL")


def test_lint_checks_recordings(project: Project) -> None:
    # A corrupt recordings file passes lint ("All checks passed") but breaks every offline
    # eval (exit 2). lint must report it with its line.
    project.write(RECORDINGS, "not json\n")
    result = project.run("lint")
    assert_clean_error(result, 1, f"{RECORDINGS}", where="output", max_lines=0)
    assert "1:" in result.stdout


def test_cache_clear_when_the_cache_path_is_a_directory(project: Project) -> None:
    # eval's error for an unreadable cache says "run `promptyard cache clear`"; when the
    # path is a directory, `cache clear` itself crashes (IsADirectoryError, exit 3).
    project.path(".promptyard/cache.sqlite").mkdir(parents=True)
    result = project.run("cache", "clear")
    assert_clean_error(result, 2, "cache.sqlite")


def test_a_fifo_in_place_of_a_dataset_does_not_hang_lint(project: Project) -> None:
    dataset = project.path(DATASET)
    dataset.unlink()
    os.mkfifo(dataset)
    assert stat.S_ISFIFO(dataset.stat().st_mode)
    result = project.run("lint", timeout=20)
    assert_clean_error(result, 1, DATASET, where="output", max_lines=0)
