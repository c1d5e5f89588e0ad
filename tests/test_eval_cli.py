"""`promptyard eval` and `promptyard cache`: output, exit codes, offline use, progress."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import assert_clean_error, assert_no_crash
from support.evals import API_KEY_ENV, BASE_URL_ENV, EVAL_CONFIG, echo_prompt, text_cases
from support.openai_server import OpenAIServer
from support.repo import SCAFFOLD_DATASET, CliResult, PromptRepo, set_case_asserts

ROOT = Path(__file__).parents[1]
JSON_KEYS = [
    "prompt", "version", "dataset", "cases", "passed", "failed", "errors", "infra_errors", "pass_rate",
    "mean_score", "latency_ms_p50", "latency_ms_p95", "tokens_in", "tokens_out", "cost_usd",
    "results_path", "slice",
]  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PromptRepo:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    repo = PromptRepo.create(tmp_path / "repo", EVAL_CONFIG)
    repo.write(
        "prompts/echo.yaml",
        echo_prompt(asserts=[{"type": "icontains", "value": "{{ expected }}"}], threshold=0.5),
    )
    repo.write("golden/echo.jsonl", text_cases("Order 42", "hello", expected=["order", "bye"]))
    return repo


def run(repo: PromptRepo, *args: str, env: dict[str, str] | None = None) -> CliResult:
    """The real process (not a terminal: plain progress lines)."""
    clean = {BASE_URL_ENV: "", API_KEY_ENV: ""}
    return repo.run(*args, env={**clean, **(env or {})})


def test_text_report_and_exit_codes(project: PromptRepo, live: OpenAIServer) -> None:
    result = project.cli("eval")
    assert result.exit_code == 0, result.stderr
    assert "echo 1.0.0" in result.stdout and "50.0%" in result.stdout
    assert "1 failing row(s)" in result.stdout
    assert "fail c1: does not contain 'bye' (any case)" in result.stdout
    assert "1 eval(s) met their threshold" in result.stdout
    project.write(
        "prompts/echo.yaml",
        echo_prompt(asserts=[{"type": "icontains", "value": "{{ expected }}"}], threshold=0.9),
    )
    below = project.cli("eval")
    assert below.exit_code == 1
    assert "below threshold: echo on golden/echo.jsonl: pass rate 50.0% < 90.0%" in below.stdout


def test_json_output_has_exactly_the_documented_keys(
    project: PromptRepo, live: OpenAIServer
) -> None:
    result = project.cli("eval", "echo", "--format", "json")
    assert result.exit_code == 0
    (row,) = result.json["runs"]
    assert list(row) == JSON_KEYS
    assert (row["cases"], row["passed"], row["failed"], row["errors"]) == (2, 1, 1, 0)
    assert row["slice"] is None  # every case ran
    assert (
        row["pass_rate"] == 0.5 and row["tokens_in"] == 3 and row["cost_usd"] == pytest.approx(9e-6)
    )
    results = Path(row["results_path"])
    assert results.is_file() and len(results.read_text().splitlines()) == 2
    assert json.loads((results.parent / "summary.json").read_text())["cases"] == 2


def test_flags_repeat_concurrency_dataset(project: PromptRepo, live: OpenAIServer) -> None:
    project.write("golden/more.jsonl", text_cases("x"))
    result = project.cli(
        "eval", "echo", "--dataset", "golden/more.jsonl", "--repeat", "3", "--concurrency", "2",
        "--no-cache", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (row,) = result.json["runs"]
    assert row["dataset"] == "golden/more.jsonl" and row["cases"] == 1
    assert len(live.chat_requests()) == 3
    assert project.cli("eval", "--offline", "--record").exit_code == 2
    assert project.cli("eval", "--repeat", "0").exit_code == 2
    missing = project.cli("eval", "nope")
    assert missing.exit_code == 2 and "no prompt named 'nope'" in missing.stderr


def test_offline_without_endpoint_then_record_then_offline(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    offline = run(project, "eval")
    assert offline.exit_code == 1  # every case lacks a recording: errors, below threshold
    assert offline.stderr.count("running offline") == 1
    assert "record it with `promptyard eval echo --record`" in offline.stdout
    recorded = run(project, "eval", "--record", env={BASE_URL_ENV: openai_server.base_url})
    assert recorded.exit_code == 0, recorded.stderr
    assert "recorded responses to golden/recordings/echo.jsonl" in recorded.stdout
    project.commit("recordings")
    shutil.rmtree(project.root / ".promptyard")
    replay = run(project, "eval", "--format", "json")
    assert replay.exit_code == 0
    assert replay.json["runs"][0]["passed"] == 1 and replay.json["runs"][0]["errors"] == 0
    # --offline wins even with an endpoint configured
    forced = run(project, "eval", "--offline", env={BASE_URL_ENV: "http://127.0.0.1:9/v1"})
    assert forced.exit_code == 0
    record_offline = run(project, "eval", "--record")
    assert (
        record_offline.exit_code == 2 and "--record needs a live provider" in record_offline.stderr
    )


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("host", "why"),
    [("127.0.0.1:{port}", "connection refused"), ("nosuchhost.invalid", "unknown host")],
)
def test_a_refused_connection_or_unknown_host_fails_fast_with_exit_3(
    project: PromptRepo, host: str, why: str
) -> None:
    # The default retry budget (6 retries, 0.5 s base backoff): before, three calls each
    # went through every retry (21 attempts, ~25 s) before exit 3.
    project.write("promptyard.yaml", EVAL_CONFIG.replace("max_retries: 2", "max_retries: 6"))
    project.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(40)]))
    url = f"http://{host.format(port=_closed_port())}/v1"
    result = run(project, "eval", env={BASE_URL_ENV: url})
    assert result.exit_code == 3, result.stderr
    error = result.stderr.split("error: ", 1)[1]
    assert error.startswith(f"provider 'default' (openai at {url}) is unreachable: {why}")
    attempts = int(re.search(r"stopped after (\d+) attempt", error).group(1))  # type: ignore[union-attr]
    # At most the calls already in flight (max_concurrency 8), none of them retried.
    assert 1 <= attempts <= 8
    assert f"hint: start the server, or fix the base URL (${BASE_URL_ENV})" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_the_eta_counts_work_not_retry_waits() -> None:
    from promptyard.cli.progress import eta
    from promptyard.evals.runner import EvalProgress

    # 2 of 10 done in 20 s, of which 18 s were spent waiting for a retry (a 429's pause)
    waiting = EvalProgress(10, 2, 0, 0, elapsed_s=20.0, waiting_s=18.0, retrying=1)
    assert eta(waiting) == "8s (retrying 1 call(s))"
    resumed = EvalProgress(10, 2, 0, 0, elapsed_s=20.0, waiting_s=18.0)
    assert eta(resumed) == "8s"
    assert eta(EvalProgress(10, 0, 0, 0, elapsed_s=5.0, waiting_s=5.0, retrying=8)) == (
        "? (retrying 8 call(s))"
    )


def test_progress_lines_when_not_a_terminal(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    result = run(project, "eval", env={BASE_URL_ENV: openai_server.base_url})
    assert "eval: 2/2 (100%)" in result.stderr and "cached 0, errors 0" in result.stderr


def test_cache_stats_and_clear(project: PromptRepo, live: OpenAIServer) -> None:
    empty = project.cli("cache", "stats", "--format", "json")
    assert empty.exit_code == 0 and empty.json["exists"] is False
    project.cli("eval")
    stats = project.cli("cache", "stats", "--format", "json").json
    assert (
        stats["entries"] == 2
        and stats["by_kind"] == {"chat": 2}
        and stats["by_model"] == {"test-model": 2}
    )
    text = project.cli("cache", "stats")
    assert "2 responses" in text.stdout and "by model: test-model 2" in text.stdout
    cleared = project.cli("cache", "clear")
    assert cleared.exit_code == 0 and "removed 2 cached responses" in cleared.stdout
    assert project.cli("cache", "stats", "--format", "json").json["entries"] == 0


def test_a_damaged_cache_is_a_clear_error_and_clear_repairs_it(
    project: PromptRepo, live: OpenAIServer
) -> None:
    cache = project.root / ".promptyard/cache.sqlite"
    cache.parent.mkdir()
    cache.write_bytes(b"this is not a database" * 100)
    broken = project.cli("eval")
    assert broken.exit_code == 2 and "the response cache cannot be read" in broken.stderr
    assert "promptyard cache clear" in broken.stderr
    assert project.cli("cache", "clear").exit_code == 0
    assert project.cli("eval").exit_code == 0


def test_lint_reports_an_unknown_provider_type(project: PromptRepo) -> None:
    project.write("promptyard.yaml", EVAL_CONFIG.replace("type: openai", "type: opneai"))
    result = project.cli("lint", "--format", "json")
    assert result.exit_code == 1
    (finding,) = [f for f in result.json["findings"] if f["rule"] == "C001"]
    assert finding["file"] == "promptyard.yaml" and finding["line"] == 3
    assert (
        finding["message"] == "provider 'default' has unknown type 'opneai'; did you mean 'openai'?"
    )


def test_provider_types_load_without_the_openai_package() -> None:
    code = (
        "import sys, promptyard.lint.runner, promptyard.evals.providers as p;"
        "assert 'openai' in p.PROVIDERS; assert 'openai' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def copy_examples(target: Path) -> None:
    for name in ("promptyard.yaml", "prompts", "golden"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copyfile(source, target / name)


def test_this_repository_evaluates_offline_from_its_recordings(tmp_path: Path) -> None:
    copy_examples(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "promptyard", "eval", "--offline", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = json.loads(proc.stdout)["runs"]
    assert {r["prompt"] for r in runs} == {
        "address-extractor",
        "intent-classifier",
        "order-agent",
        "support-reply",
        "ticket-summarizer",
    }
    assert all(r["errors"] == 0 for r in runs)
    # the stand-in model is imperfect: some cases fail, every eval still meets its threshold
    assert any(r["failed"] for r in runs)


def test_a_new_repository_from_init_evaluates_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    subprocess.run(
        [sys.executable, "-m", "promptyard", "init", "fresh"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env=env,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "promptyard", "eval"],
        cwd=tmp_path / "fresh",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "running offline" in proc.stderr and "summarize 1.0.0" in proc.stdout


# --- wrong datasets, caches and providers, through the real CLI on the scaffold (answers from its recordings) ---


def test_unknown_assertion_type_is_a_config_error_not_a_failing_eval(
    scaffolded: PromptRepo,
) -> None:
    # lint reports A001, but eval runs the case, calls the model, and reports the case as
    # "fail ... unknown assertion type" with exit 1, as if the prompt had regressed.
    set_case_asserts(scaffolded, "meeting-notes", [{"type": "nosuchtype", "value": "x"}])
    result = scaffolded.run("eval", "--offline")
    assert_clean_error(result, 2, SCAFFOLD_DATASET)


def test_eval_json_output_is_valid_json_with_an_infinite_weight(scaffolded: PromptRepo) -> None:
    # Today stdout has `"mean_score": NaN`, which no JSON parser accepts.
    set_case_asserts(
        scaffolded,
        "meeting-notes",
        [
            {"type": "icontains", "value": "Friday", "weight": 1},
            {"type": "icontains", "value": "zzz"},
        ],
    )
    scaffolded.replace(SCAFFOLD_DATASET, '"weight": 1}', '"weight": 1e999}')
    result = scaffolded.run("eval", "--offline", "--format", "json")
    assert_no_crash(result)
    if result.exit_code == 2:  # refusing the dataset (it holds a number JSON cannot carry) is right
        assert_clean_error(result, 2, SCAFFOLD_DATASET)
        return

    def reject(constant: str) -> None:
        raise AssertionError(f"stdout is not valid JSON: it contains {constant}")

    json.loads(result.stdout, parse_constant=reject)


def test_eval_of_an_empty_dataset_does_not_pass(scaffolded: PromptRepo) -> None:
    # 0 cases, threshold 0.8: today "1 eval(s) met their threshold" and exit 0.
    scaffolded.write(SCAFFOLD_DATASET, "")
    result = scaffolded.run("eval", "--offline")
    assert_no_crash(result)
    assert result.exit_code == 1, result.describe()
    assert SCAFFOLD_DATASET in result.output


def test_no_cache_without_a_provider_says_what_answers(scaffolded: PromptRepo) -> None:
    # `--no-cache` never reads the cache; with no OPENAI_BASE_URL/OPENAI_API_KEY the run is
    # offline and the committed recordings answer. The one-line note must say exactly that
    # (it used to claim "recordings and the cache").
    result = scaffolded.run("eval", "--no-cache")
    assert_no_crash(result)
    assert result.exit_code == 0, result.describe()
    assert "answering from recordings only" in result.stderr, result.describe()
    assert "OPENAI_BASE_URL" in result.stderr


def _no_retries(scaffolded: PromptRepo) -> None:
    scaffolded.replace("promptyard.yaml", "max_retries: 6", "max_retries: 0")


def test_closed_port_is_reported_as_refused_not_as_a_timeout(scaffolded: PromptRepo) -> None:
    # 127.0.0.1:9 refuses at once; today the message says "(last: no answer within 60 s)".
    _no_retries(scaffolded)
    result = scaffolded.run("eval", "--no-cache", env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert_clean_error(result, 3, "127.0.0.1:9")
    assert "no answer within" not in result.stderr, result.describe()
    assert "refused" in result.stderr.lower() or "connect" in result.stderr.lower()


def test_malformed_base_url_is_a_config_error(scaffolded: PromptRepo) -> None:
    # "not a url" is a configuration mistake (exit 2, name the variable), not an unreachable
    # provider (exit 3 after retrying every case).
    _no_retries(scaffolded)
    result = scaffolded.run("eval", "--no-cache", env={"OPENAI_BASE_URL": "not a url"})
    assert_clean_error(result, 2, "OPENAI_BASE_URL")


def test_cache_clear_when_the_cache_path_is_a_directory(scaffolded: PromptRepo) -> None:
    # eval's error for an unreadable cache says "run `promptyard cache clear`"; when the
    # path is a directory, `cache clear` itself crashes (IsADirectoryError, exit 3).
    scaffolded.path(".promptyard/cache.sqlite").mkdir(parents=True)
    result = scaffolded.run("cache", "clear")
    assert_clean_error(result, 2, "cache.sqlite")
