"""The eval engine against a real local OpenAI-compatible server, through the `openai` client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from promptyard.errors import ConfigError, InfraError
from promptyard.evals import load_results
from promptyard.evals.cache import cache_stats
from promptyard.evals.results import RunWriter
from promptyard.evals.runner import (
    EvalOptions,
    evaluate_snapshot,
    request_key,
    run_eval,
)
from promptyard.repo.workspace import Workspace
from promptyard.spec import EvalSpec
from support.evals import (
    BASE_URL_ENV,
    EVAL_CONFIG,
    echo_prompt,
    jsonl,
    live_env,
    options,
    text_cases,
)
from support.openai_server import OpenAIServer, default_reply
from support.repo import PromptRepo


@pytest.fixture
def project(tmp_path: Path) -> PromptRepo:
    return PromptRepo.create(tmp_path / "repo", EVAL_CONFIG)


def evaluate(repo: PromptRepo, server: OpenAIServer | None = None, *names: str, **kw: Any):
    return evaluate_snapshot(
        Workspace(repo.root).snapshot(), names, options=options(repo.root, server, **kw)
    )


def spawn(repo: PromptRepo, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """The real `promptyard` process, started in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "promptyard.cli", *args],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **env},
    )


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_eval_scores_cases_and_streams_rows(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write(
        "prompts/echo.yaml",
        echo_prompt(
            asserts=[
                {"type": "icontains", "value": "{{ expected }}", "metric": "mentions"},
                {"type": "word-count", "value": {"max": 3}, "weight": 3},
            ],
            threshold=0.5,
        ),
    )
    project.write(
        "golden/echo.jsonl",
        text_cases(
            "Order 42 shipped",
            "refund please now today",
            "hello",
            expected=["order 42", "refund", "bye"],
        ),
    )
    report = evaluate(project, openai_server)
    (run,) = report.runs
    s = run.summary
    assert (s.cases, s.passed, s.failed, s.errors) == (3, 1, 2, 0)
    assert s.pass_rate == pytest.approx(1 / 3) and not run.ok
    # c1: mentions refund (1) but 4 words (0, weight 3) -> 0.25; c2: 0 and 1 -> 0.75
    assert s.mean_score == pytest.approx((1 + 0.25 + 0.75) / 3)
    assert s.tokens_in == 3 + 4 + 1 and s.tokens_out == 3 + 4 + 1
    assert s.cost_usd == pytest.approx((8 * 1.0 + 8 * 2.0) / 1e6)
    assert s.metrics["mentions"] == {
        "mean_score": pytest.approx(2 / 3),
        "pass_rate": pytest.approx(2 / 3),
        "count": 3,
    }
    assert s.latency_ms_p50 is not None and s.latency_ms_p95 >= s.latency_ms_p50 > 0
    by_case = {row["case_id"]: row for row in rows(run.results_path)}
    assert set(by_case) == {"c0", "c1", "c2"}
    assert by_case["c2"]["output"] == "hello"
    assert by_case["c2"]["assertions"][0] == {
        "type": "icontains",
        "pass": False,
        "score": 0.0,
        "reason": "does not contain 'bye' (any case)",
        "weight": 1.0,
        "metric": "mentions",
    }
    assert by_case["c0"]["cost_usd"] == pytest.approx((3 + 6) / 1e6)
    assert {r.case_id for r in run.failures} == {"c1", "c2"}
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["complete"] is True and summary["passed"] == 1 and summary["ok"] is False
    frame = load_results(run.run_dir)
    assert list(frame["case_id"].sort_values()) == ["c0", "c1", "c2"]
    assert frame["pass"].dtype == bool and frame["tokens_in"].sum() == 8
    assert list(frame.loc[frame["pass"], "case_id"]) == ["c0"]


def test_parameters_pass_through_and_json_mode_asks_for_json(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write(
        "prompts/echo.yaml",
        echo_prompt(
            model={
                "name": "test-model",
                "parameters": {"temperature": 0.3, "max_tokens": 7, "seed": 1},
            },
            output={"format": "json", "schema": {"type": "object", "required": ["reply"]}},
            asserts=[
                {"type": "json-schema"},
                {"type": "json-path", "value": {"path": "$.reply", "equals": "hi"}},
            ],
        ),
    )
    project.write("golden/echo.jsonl", text_cases("hi"))
    report = evaluate(project, openai_server)
    assert report.runs[0].summary.passed == 1
    (request,) = openai_server.chat_requests()
    assert request.body["temperature"] == 0.3 and request.body["max_tokens"] == 7
    assert request.body["seed"] == 1 and request.body["model"] == "test-model"
    assert request.body["response_format"] == {"type": "json_object"}


def test_second_run_is_cached_with_the_original_latency_and_usage(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_prompt(asserts=[{"type": "contains", "value": "a"}]))
    project.write("golden/echo.jsonl", text_cases("a b", "a c d"))
    openai_server.set_latency(40)
    first = evaluate(project, openai_server).runs[0]
    before = {r.case_id: r for r in first.iter_results()}
    openai_server.set_latency(0)
    calls = len(openai_server.requests)
    second = evaluate(project, openai_server).runs[0]
    assert second.run_dir == first.run_dir  # same arguments, same run: started over
    assert len(openai_server.requests) == calls  # nothing new reached the server
    after = {r.case_id: r for r in second.iter_results()}
    assert all(r.cached for r in after.values()) and not any(r.cached for r in before.values())
    for case_id, row in after.items():
        assert row.latency_ms == pytest.approx(before[case_id].latency_ms)
        assert row.latency_ms >= 40
        assert (row.tokens_in, row.tokens_out, row.cost_usd) == (
            before[case_id].tokens_in,
            before[case_id].tokens_out,
            before[case_id].cost_usd,
        )
    assert second.summary.latency_ms_p95 == first.summary.latency_ms_p95
    # --no-cache: fresh answers
    third = evaluate(project, openai_server, use_cache=False).runs[0]
    assert len(openai_server.requests) == calls + 2
    assert not any(r.cached for r in third.iter_results())


def test_one_model_name_on_two_providers_is_cached_apart(tmp_path: Path) -> None:
    """Two provider entries of one type serving one model name at different endpoints
    answer differently: each answer gets its own cache entry."""
    second_entry = "  second:\n    type: openai\n    base_url_env: SECOND_BASE_URL\n"
    config = EVAL_CONFIG.replace("providers:\n", "providers:\n" + second_entry)
    project = PromptRepo.create(tmp_path / "repo", config)
    project.write("golden/echo.jsonl", text_cases("a"))
    with OpenAIServer() as first, OpenAIServer() as second:
        environ = {BASE_URL_ENV: first.base_url, "SECOND_BASE_URL": second.base_url}
        for name in ("default", "second", "default", "second"):
            model = {"provider": name, "name": "test-model", "parameters": {"temperature": 0}}
            project.write("prompts/echo.yaml", echo_prompt(model=model))
            opts = EvalOptions(repo_root=project.root, environ=environ, backoff_base_s=0.01)
            evaluate_snapshot(Workspace(project.root).snapshot(), (), options=opts)
        # one call each; the second round is answered from the cache, each by its own entry
        assert (len(first.chat_requests()), len(second.chat_requests())) == (1, 1)
    assert cache_stats(project.root / ".promptyard/cache.sqlite").entries == 2


def test_errors_are_not_cached(project: PromptRepo, openai_server: OpenAIServer) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("fine", "bad [[fault:400*1]]"))
    run = evaluate(project, openai_server).runs[0]
    assert run.summary.errors == 1 and run.summary.passed == 1
    again = evaluate(project, openai_server).runs[0]
    assert again.summary.errors == 0 and again.summary.passed == 2
    statuses = [r.status for r in openai_server.chat_requests()]
    assert statuses.count(400) == 1 and statuses.count(200) == 2  # the error was asked again


def test_repeats_have_distinct_keys_and_min_pass(project: PromptRepo) -> None:
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(body: dict[str, Any]) -> str:
        """Every third answer to the same question is wrong: a non-deterministic model."""
        text = body["messages"][-1]["content"]
        with lock:
            calls[text] = calls.get(text, 0) + 1
            n = calls[text]
        return "wrong" if n % 3 == 0 else text

    doc = echo_prompt(asserts=[{"type": "equals", "value": "{{ vars.text }}"}], threshold=1.0)
    doc = doc.replace("threshold: 1.0", "threshold: 1.0\n  repeat: 3\n  min_pass: 2")
    project.write("prompts/echo.yaml", doc)
    project.write("golden/echo.jsonl", text_cases("alpha", "beta"))
    with OpenAIServer(flaky) as server:
        run = evaluate(project, server).runs[0]
        assert len(server.chat_requests()) == 6  # 2 cases x 3 repeats, none deduplicated
    assert (run.summary.cases, run.summary.rows, run.summary.passed) == (2, 6, 2)
    assert run.case_pass_fraction == {"c0": pytest.approx(2 / 3), "c1": pytest.approx(2 / 3)}
    results = run.results()
    keys = {
        request_key(
            "chat",
            "openai",
            {
                "model": "test-model",
                "messages": [{"role": "user", "content": "alpha"}],
                "temperature": 0,
            },
            r,
        )
        for r in range(3)
    }
    assert len(keys) == 3 and len(results) == 6
    # all repeats must pass when min_pass is not set
    with OpenAIServer(flaky) as server:
        project.write("prompts/echo.yaml", doc.replace("\n  min_pass: 2", ""))
        strict = evaluate(project, server, use_cache=False).runs[0]
    assert strict.summary.passed == 0 and strict.summary.failed == 2


def test_repeat_override_runs_each_case_n_times(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a", "b"))
    run = evaluate(project, openai_server, repeat=4).runs[0]
    assert run.summary.rows == 8 and run.summary.repeat == 4
    assert sorted((r.case_id, r.repeat) for r in run.iter_results()) == [
        (c, r) for c in ("c0", "c1") for r in range(4)
    ]


@pytest.mark.parametrize("fault", ["429", "503", "500", "slow", "malformed", "drop"])
def test_infrastructure_faults_are_retried(
    project: PromptRepo, openai_server: OpenAIServer, fault: str
) -> None:
    project.write("prompts/echo.yaml", echo_prompt(asserts=[{"type": "contains", "value": "ok"}]))
    project.write("golden/echo.jsonl", text_cases(f"ok [[fault:{fault}*2]]", "ok too"))
    config = EVAL_CONFIG.replace("timeout_s: 2", "timeout_s: 0.3")
    project.write("promptyard.yaml", config)
    run = evaluate(project, openai_server).runs[0]
    assert run.summary.passed == 2 and run.summary.errors == 0
    attempts = [
        r for r in openai_server.chat_requests() if "fault" in r.body["messages"][0]["content"]
    ]
    assert [r.fault for r in attempts] == [fault, fault, None]


def test_retry_after_is_honoured(project: PromptRepo) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("x [[fault:429*1]]"))
    with OpenAIServer(retry_after_s=0.6) as server:
        evaluate(project, server)
        first, second = server.chat_requests()
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.55  # backoff alone would be ~0.01 s


def test_client_errors_end_the_case_without_retry(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a [[fault:400]]", "b [[fault:404]]", "fine"))
    run = evaluate(project, openai_server).runs[0]
    assert (run.summary.passed, run.summary.errors) == (1, 2)
    assert len(openai_server.chat_requests()) == 3  # one attempt each
    errors = {r.case_id: r for r in run.iter_results() if r.error}
    assert errors["c0"].error_kind == "request" and "HTTP 400" in (errors["c0"].error or "")
    assert "HTTP 404" in (errors["c1"].error or "") and errors["c1"].error.startswith("default:")


def test_unreachable_provider_is_an_infrastructure_error(project: PromptRepo) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(20)]))
    opts = EvalOptions(
        repo_root=project.root,
        environ={"PROMPTYARD_TEST_BASE_URL": "http://127.0.0.1:9/v1"},
        backoff_base_s=0.01,
    )
    with pytest.raises(InfraError) as caught:
        evaluate_snapshot(Workspace(project.root).snapshot(), options=opts)
    message = str(caught.value)
    assert "provider 'default'" in message and "http://127.0.0.1:9/v1" in message
    assert "connection refused (stopped after" in message and "retrying cannot fix" in message


def test_the_providers_retry_budget_alone_decides_the_attempts(project: PromptRepo) -> None:
    # The `openai` client retries on its own unless told not to: a 500 on every attempt must
    # cost exactly 1 + max_retries requests per call, not that times the client's retries.
    project.write("promptyard.yaml", EVAL_CONFIG.replace("max_retries: 2", "max_retries: 3"))
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("only case"))
    with OpenAIServer() as server:
        server.add_fault("500")
        with pytest.raises(InfraError, match="1 call\\(s\\) failed after 3 retries"):
            evaluate(project, server)
        assert len(server.chat_requests()) == 4


def test_progress_leaves_retry_waits_out_of_the_working_time(project: PromptRepo) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("x [[fault:503*2]]"))
    events: list[Any] = []
    with OpenAIServer(retry_after_s=0.2) as server:
        run = evaluate(project, server, progress=events.append).runs[0]
    assert run.summary.passed == 1
    assert any(e.retrying == 1 for e in events)  # the display says a call waits to retry
    last = events[-1]
    assert last.done == 1 and last.retrying == 0
    # two Retry-After sleeps of 0.2 s while the only worker had nothing else to do
    assert last.waiting_s >= 0.39 and last.working_s <= last.elapsed_s - 0.39


def test_server_errors_on_every_call_are_an_infrastructure_error(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a", "b"))
    openai_server.add_fault("500")
    with pytest.raises(InfraError, match="HTTP 500"):
        evaluate(project, openai_server)
    # max_retries: 2 -> three attempts for each call that finished
    assert len(openai_server.chat_requests()) == 6


def test_a_key_refused_on_every_call_is_a_configuration_error(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a", "b"))
    openai_server.add_fault("401")
    with pytest.raises(ConfigError, match="refused every call") as caught:
        evaluate(project, openai_server)
    assert "PROMPTYARD_TEST_API_KEY" in str(caught.value)


def test_concurrency_is_bounded_per_provider(project: PromptRepo) -> None:
    project.write(
        "promptyard.yaml", EVAL_CONFIG.replace("max_concurrency: 8", "max_concurrency: 3")
    )
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(12)]))
    # Slow answers, so the cap is reached even when a loaded machine issues calls slowly.
    with OpenAIServer(latency_ms=300) as server:
        evaluate(project, server)
        assert server.max_in_flight == 3
        server.reset()
        evaluate(project, server, concurrency=6, use_cache=False)
        assert server.max_in_flight == 6


def test_requests_per_minute_spaces_calls(project: PromptRepo, openai_server: OpenAIServer) -> None:
    # The limiter itself is tested on a virtual clock (test_provider_runtime); this checks that
    # the config's limit reaches it. 2 per second: calls at 0, 0.5 and 1.0 s. A slow first call
    # (a loaded machine) can shrink the first gap, not both (unlimited, all 3 arrive at once).
    config = EVAL_CONFIG.replace("max_retries: 2", "max_retries: 2\n    requests_per_minute: 120")
    project.write("promptyard.yaml", config)
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(3)]))
    evaluate(project, openai_server)
    times = sorted(r.at for r in openai_server.chat_requests())
    assert times[-1] - times[0] >= 0.45


def test_judge_and_embeddings_are_cached_like_any_call(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write(
        "promptyard.yaml",
        EVAL_CONFIG.replace(
            "max_retries: 2", "max_retries: 2\n    embedding_model: emb-1\n    judge_model: judge-1"
        ),
    )
    project.write(
        "prompts/echo.yaml",
        echo_prompt(
            asserts=[
                {"type": "llm-rubric", "value": "Is polite", "metric": "polite"},
                {"type": "similar", "value": "the red apple is ripe", "threshold": 0.6},
            ],
            threshold=0.0,
        ),
    )
    project.write(
        "golden/echo.jsonl", text_cases("the red apple is ripe today", "blue sky [[judge:fail]]")
    )
    run = evaluate(project, openai_server).runs[0]
    results = {r.case_id: r for r in run.iter_results()}
    assert [a["pass"] for a in results["c0"].assertions] == [True, True]
    assert [a["pass"] for a in results["c1"].assertions] == [False, False]
    judge_calls = [r for r in openai_server.chat_requests() if r.body["model"] == "judge-1"]
    assert len(judge_calls) == 2 and judge_calls[0].body["temperature"] == 0
    embed_calls = [r for r in openai_server.requests if r.path.endswith("/embeddings")]
    assert {c.body["model"] for c in embed_calls} == {"emb-1"}
    assert len(embed_calls) == 3  # the shared value is embedded once
    count = len(openai_server.requests)
    again = evaluate(project, openai_server).runs[0]
    assert len(openai_server.requests) == count
    assert again.summary.metrics == run.summary.metrics


def test_an_unreachable_judge_makes_an_error_not_a_failed_assertion(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write(
        "prompts/echo.yaml",
        echo_prompt(asserts=[{"type": "llm-rubric", "value": "Is polite"}], threshold=0.0),
    )
    project.write("golden/echo.jsonl", text_cases("hello", "hi"))
    openai_server.add_fault("500", match="grade an AI output")
    with pytest.raises(InfraError, match="judge call"):  # no judge call ever succeeded
        evaluate(project, openai_server)
    rows_written = rows(next((project.root / ".promptyard/runs").glob("*/results.jsonl")))
    assert rows_written and all(r["error_kind"] == "infra" and not r["pass"] for r in rows_written)


def test_render_errors_are_case_errors(project: PromptRepo, openai_server: OpenAIServer) -> None:
    """Variables that fit the inputs but fail the template end their case (variables that
    violate the inputs stop the run before any call: see test_eval_trust)."""
    project.write(
        "prompts/echo.yaml",
        echo_prompt(messages=[{"role": "user", "content": "{{ 10 // text | length }}"}]),
    )
    project.write(
        "golden/echo.jsonl",
        jsonl([{"id": "ok", "vars": {"text": "a"}}, {"id": "bad", "vars": {"text": ""}}]),
    )
    run = evaluate(project, openai_server).runs[0]
    (bad,) = [r for r in run.iter_results() if r.error]
    assert bad.case_id == "bad" and bad.error_kind == "render"
    assert "cannot render" in (bad.error or "") and "division" in (bad.error or "")


def test_python_cost_and_latency_assertions(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write(
        "checks/quality.py",
        "def shout(output, context):\n"
        "    return {'pass': output.isupper(), 'score': 0.9 if output.isupper() else 0.1,"
        " 'reason': f\"{context['case_id']} upper={output.isupper()}\"}\n",
    )
    project.write(
        "prompts/echo.yaml",
        echo_prompt(
            asserts=[
                {"type": "python", "value": "checks.quality:shout"},
                {"type": "cost", "threshold": 0.00001},
                {"type": "latency", "threshold": 60000},
            ],
            threshold=0.0,
        ),
    )
    project.write("golden/echo.jsonl", text_cases("LOUD", "quiet words here and there too"))
    results = {r.case_id: r for r in evaluate(project, openai_server).runs[0].iter_results()}
    assert results["c0"].passed and results["c0"].assertions[0]["reason"] == "c0 upper=True"
    assert results["c0"].assertions[1]["pass"] is True  # 1 + 1 tokens: $0.000003
    cost = results["c1"].assertions[1]  # 6 + 6 tokens: $0.000018
    assert cost["pass"] is False and cost["reason"] == "cost $0.000018 (max $1e-05)"
    assert not results["c1"].passed and results["c1"].assertions[0]["score"] == pytest.approx(0.1)
    assert results["c1"].assertions[2]["pass"] is True


def test_run_eval_pairs_base_and_head_on_the_same_cases(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    """What the merge gate does: the base prompt (from a git ref) on the head's cases."""
    project.write(
        "prompts/echo.yaml", echo_prompt(asserts=[{"type": "contains", "value": "please"}])
    )
    project.write("golden/echo.jsonl", text_cases("a"))
    base_sha = project.commit("base")
    head_doc = echo_prompt(asserts=[{"type": "contains", "value": "please"}], version="1.0.1")
    project.write("prompts/echo.yaml", head_doc.replace("'{{ text }}'", "'{{ text }} please'"))
    project.write("golden/echo.jsonl", text_cases("a", "b"))
    project.commit("head")
    ws = Workspace(project.root)
    head = ws.snapshot("HEAD")
    base = ws.snapshot(base_sha)
    head_prompt = head.prompt("echo")
    cases = head.dataset("golden/echo.jsonl").require()
    spec = head_prompt.require().evals[0]
    opts = options(project.root, openai_server)
    base_run = run_eval(base.prompt("echo"), spec, cases, config=head.config, options=opts)
    head_run = run_eval(head_prompt, spec, cases, config=head.config, options=opts)
    assert base_run.summary.version == "1.0.0" and head_run.summary.version == "1.0.1"
    assert base_run.run_dir != head_run.run_dir
    assert sorted(r.case_id for r in base_run.iter_results()) == ["c0", "c1"]
    assert base_run.summary.pass_rate == 0.0 and head_run.summary.pass_rate == 1.0
    outputs = {r.case_id: r.output for r in head_run.iter_results()}
    assert outputs == {"c0": "a please", "c1": "b please"}


def test_interrupted_run_resumes_without_duplicates(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(6)]))
    run = evaluate(project, openai_server, use_cache=False).runs[0]
    path = run.results_path
    lines = path.read_text().splitlines(keepends=True)
    # Simulate a kill -9 after three rows: the fourth row torn mid-write, no summary yet.
    path.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    (run.run_dir / "summary.json").unlink()
    openai_server.reset()
    resumed = evaluate(project, openai_server, use_cache=False).runs[0]
    assert resumed.run_dir == run.run_dir
    assert len(openai_server.chat_requests()) == 3  # only the missing cases ran
    ids = [json.loads(line)["case_id"] for line in path.read_text().splitlines()]
    assert sorted(ids) == [f"c{i}" for i in range(6)]
    assert resumed.summary.cases == 6 and resumed.summary.passed == 6 and resumed.summary.complete


def test_a_run_in_use_by_another_process_is_refused(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a"))
    run = evaluate(project, openai_server).runs[0]
    holder = RunWriter(run.run_dir)
    try:
        with pytest.raises(ConfigError, match="another promptyard process is writing this run"):
            evaluate(project, openai_server)
    finally:
        holder.close()
    assert evaluate(project, openai_server).runs[0].summary.passed == 1


def test_offline_mode_recordings_round_trip(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write(
        "prompts/echo.yaml",
        echo_prompt(asserts=[{"type": "llm-rubric", "value": "polite"}], threshold=0.5),
    )
    project.write("golden/echo.jsonl", text_cases("b text", "a text [[judge:fail]]"))
    notes: list[str] = []
    offline = evaluate(project, None, notify=notes.append).runs[0]
    assert offline.summary.errors == 2 and offline.summary.mode == "offline"
    assert notes == [
        "running offline: no PROMPTYARD_TEST_API_KEY or PROMPTYARD_TEST_BASE_URL set for provider "
        "'default'; answering from recordings and the cache"
    ]
    assert all("promptyard eval echo --record" in r.reason for r in offline.failures)

    recorded = evaluate(project, openai_server, mode="record")
    assert recorded.recordings_written == ["golden/recordings/echo.jsonl"]
    text = (project.root / "golden/recordings/echo.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(r["case"], r["kind"]) for r in lines] == [
        ("c0", "chat"),
        ("c0", "judge"),
        ("c1", "chat"),
        ("c1", "judge"),
    ]
    assert all(isinstance(r["latency_ms"], int) and r["tokens_in"] for r in lines)

    replay = evaluate(project, None, use_cache=False).runs[0]
    live = recorded.runs[0]
    assert replay.summary.errors == 0
    assert (replay.summary.passed, replay.summary.mean_score) == (
        live.summary.passed,
        live.summary.mean_score,
    )
    assert [
        (r.case_id, r.output) for r in sorted(replay.iter_results(), key=lambda r: r.case_id)
    ] == [
        ("c0", "b text"),
        ("c1", "a text [[judge:fail]]"),
    ]
    # Recording again from the cache writes the same bytes: diffs stay empty.
    evaluate(project, openai_server, mode="record")
    assert (project.root / "golden/recordings/echo.jsonl").read_text() == text


def test_record_replaces_stale_rows_of_the_dataset_only(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    doc = echo_prompt()
    doc = doc.replace("evals:\n", "evals:\n- dataset: golden/other.jsonl\n  threshold: 1.0\n")
    project.write("prompts/echo.yaml", doc)
    project.write("golden/echo.jsonl", text_cases("one", "two"))
    project.write("golden/other.jsonl", text_cases("three"))
    evaluate(project, openai_server, mode="record")
    path = project.root / "golden/recordings/echo.jsonl"
    assert len(path.read_text().splitlines()) == 3
    project.write("golden/echo.jsonl", text_cases("one changed"))
    report = evaluate_snapshot(
        Workspace(project.root).snapshot(),
        options=options(project.root, openai_server, mode="record"),
        dataset="golden/echo.jsonl",
    )
    assert [r.summary.dataset for r in report.runs] == ["golden/echo.jsonl"]
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted((r["dataset"], r["text"]) for r in kept) == [
        ("golden/echo.jsonl", "one changed"),
        ("golden/other.jsonl", "three"),
    ]


def test_offline_base_prompt_uses_its_own_snapshot_recordings(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a", "b"))
    evaluate(project, openai_server, mode="record")
    base_sha = project.commit("base with recordings")
    project.write(
        "prompts/echo.yaml", echo_prompt(version="1.1.0").replace("'{{ text }}'", "'{{ text }}!'")
    )
    evaluate(project, openai_server, mode="record")  # head's recordings replace the base's rows
    project.commit("head")
    ws = Workspace(project.root)
    head = ws.snapshot()
    cases = head.dataset("golden/echo.jsonl").require()
    spec = head.prompt("echo").require().evals[0]
    opts = options(project.root, None, use_cache=False)
    base_run = run_eval(
        ws.snapshot(base_sha).prompt("echo"), spec, cases, config=head.config, options=opts
    )
    assert base_run.summary.errors == 0 and base_run.summary.mode == "offline"
    assert {r.output for r in base_run.iter_results()} == {"a", "b"}


def test_corrupt_recordings_are_a_clear_error(project: PromptRepo) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a"))
    project.write("golden/recordings/echo.jsonl", '{"key": "abc", "kind": "chat"}\n')
    with pytest.raises(
        ConfigError, match=r"golden/recordings/echo.jsonl:1: `key` must be"
    ) as caught:
        evaluate(project, None)
    assert "promptyard eval echo --record" in (caught.value.hint or "")


def _open_cache_at_the_barrier(path: str, barrier: Any, results: Any) -> None:
    from promptyard.evals.cache import ResponseCache

    barrier.wait()
    try:
        with ResponseCache(Path(path)) as cache:
            cache.get("some-key")
        results.put("ok")
    except Exception as exc:  # the failure itself is what the test reports
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_cache_at_once_all_get_it(tmp_path: Path) -> None:
    """Switching a new cache to WAL takes an exclusive lock, and SQLite refuses the loser
    of that race at once ("database is locked", no busy wait): it must retry, not fail the
    run. (Before the retry, about one trial in four failed here.)"""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    processes = 6
    for trial in range(25):
        path = str(tmp_path / f"trial-{trial}" / "cache.sqlite")
        Path(path).parent.mkdir()
        barrier, results = context.Barrier(processes), context.Queue()
        workers = [
            context.Process(target=_open_cache_at_the_barrier, args=(path, barrier, results))
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert outcomes == ["ok"] * processes, (trial, outcomes)


def test_two_processes_share_the_cache_safely(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/one.yaml", echo_prompt("one", dataset="golden/one.jsonl"))
    project.write("prompts/two.yaml", echo_prompt("two", dataset="golden/two.jsonl"))
    project.write("golden/one.jsonl", text_cases(*[f"one {i}" for i in range(40)]))
    project.write("golden/two.jsonl", text_cases(*[f"two {i}" for i in range(40)]))
    env = live_env(openai_server)
    procs = [spawn(project, "eval", name, "--format", "json", env=env) for name in ("one", "two")]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    import sqlite3

    db = sqlite3.connect(project.root / ".promptyard/cache.sqlite")
    assert db.execute("SELECT COUNT(*) FROM responses").fetchone() == (80,)
    calls = len(openai_server.requests)
    assert all(r.cached for r in evaluate(project, openai_server).runs[0].iter_results())
    assert len(openai_server.requests) == calls


def test_kill_9_mid_run_then_rerun_completes_only_missing(project: PromptRepo) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(30)]))
    project.write(
        "promptyard.yaml", EVAL_CONFIG.replace("max_concurrency: 8", "max_concurrency: 1")
    )
    with OpenAIServer(latency_ms=40) as server:
        proc = spawn(project, "eval", "--no-cache", env=live_env(server))
        runs = project.root / ".promptyard/runs"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            files = list(runs.glob("*/results.jsonl"))
            if files and len(files[0].read_text().splitlines()) >= 8:
                break
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        done_before = len(files[0].read_text().splitlines())
        assert 8 <= done_before < 30
        server.reset()
        result = project.run("eval", "--no-cache", "--format", "json", env=live_env(server))
        assert result.exit_code == 0, result.stderr
        assert len(server.chat_requests()) <= 30 - done_before + 1
    ids = [json.loads(line)["case_id"] for line in files[0].read_text().splitlines()]
    assert sorted(ids) == sorted(f"c{i}" for i in range(30))
    assert result.json["runs"][0]["cases"] == 30 and result.json["runs"][0]["passed"] == 30


def test_unknown_provider_and_empty_selection_are_config_errors(project: PromptRepo) -> None:
    project.write("prompts/echo.yaml", echo_prompt(model={"provider": "nope", "name": "m"}))
    project.write("golden/echo.jsonl", text_cases("a"))
    with pytest.raises(ConfigError, match="provider 'nope' is not defined"):
        evaluate(project, None)
    project.write("prompts/echo.yaml", echo_prompt(evals=[]))
    with pytest.raises(ConfigError, match="no evals to run"):
        evaluate(project, None)
    with pytest.raises(ConfigError, match="prompt 'echo' has no evals"):
        evaluate(project, None, "echo")


def test_named_prompt_on_an_ad_hoc_dataset(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a"))
    project.write(
        "golden/extra.jsonl",
        jsonl([{"id": "x", "vars": {"text": "hi"}, "assert": [{"type": "equals", "value": "hi"}]}]),
    )
    report = evaluate_snapshot(
        Workspace(project.root).snapshot(),
        ["echo"],
        options=options(project.root, openai_server),
        dataset="golden/extra.jsonl",
    )
    assert [(r.summary.dataset, r.summary.passed) for r in report.runs] == [
        ("golden/extra.jsonl", 1)
    ]


def test_default_reply_is_deterministic() -> None:
    body = {"messages": [{"role": "user", "content": "same [[fault:500*1]]"}]}
    assert default_reply(body) == default_reply(body) == "same"


def test_eval_spec_default_runs_with_cases_given_directly(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    from promptyard.spec import Case

    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a"))
    prompt = Workspace(project.root).snapshot().prompt("echo")
    run = run_eval(
        prompt,
        EvalSpec.model_validate(
            {"dataset": "inline", "assert": [{"type": "contains", "value": "z"}]}
        ),
        [Case.model_validate({"id": "z", "vars": {"text": "xyz"}})],
        config=Workspace(project.root).snapshot().config,
        options=options(project.root, openai_server),
    )
    assert run.summary.dataset == "inline" and run.summary.passed == 1


def test_identical_jobs_run_once(project: PromptRepo, openai_server: OpenAIServer) -> None:
    from promptyard.evals.runner import EvalJob, run_evals

    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a", "b"))
    snapshot = Workspace(project.root).snapshot()
    prompt = snapshot.prompt("echo")
    spec = prompt.require().evals[0]
    report = run_evals(
        [EvalJob(prompt, spec), EvalJob(prompt, spec)],
        config=snapshot.config,
        options=options(project.root, openai_server),
    )
    assert len(report.runs) == 2 and report.runs[0] is report.runs[1]
    assert len(openai_server.chat_requests()) == 2


def test_ctrl_c_keeps_finished_rows_and_marks_the_run_incomplete(project: PromptRepo) -> None:
    import signal

    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(30)]))
    project.write(
        "promptyard.yaml", EVAL_CONFIG.replace("max_concurrency: 8", "max_concurrency: 1")
    )
    with OpenAIServer(latency_ms=40) as server:
        proc = spawn(project, "eval", env=live_env(server))
        runs = project.root / ".promptyard/runs"
        deadline = time.monotonic() + 30
        files: list[Path] = []
        while time.monotonic() < deadline:
            files = list(runs.glob("*/results.jsonl"))
            if files and len(files[0].read_text().splitlines()) >= 5:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr
        summary = json.loads((files[0].parent / "summary.json").read_text())
        assert summary["complete"] is False and 5 <= summary["rows"] < 30
        result = project.run("eval", "--format", "json", env=live_env(server))
    assert result.exit_code == 0 and result.json["runs"][0]["cases"] == 30
    ids = [json.loads(line)["case_id"] for line in files[0].read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 30


def test_cases_given_directly_must_have_unique_ids(project: PromptRepo) -> None:
    from promptyard.spec import Case

    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases("a"))
    snapshot = Workspace(project.root).snapshot()
    prompt = snapshot.prompt("echo")
    twice = [Case.model_validate({"id": "same", "vars": {"text": t}}) for t in ("a", "b")]
    with pytest.raises(ConfigError, match="duplicate case id 'same'"):
        run_eval(
            prompt,
            prompt.require().evals[0],
            twice,
            config=snapshot.config,
            options=options(project.root),
        )


# --- review fixes ---------------------------------------------------------------------------


def test_a_request_shared_in_flight_is_recorded_for_every_prompt(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    # Two prompts that send byte-identical requests: the second waits on the first's call.
    project.write("prompts/echo.yaml", echo_prompt("echo"))
    project.write("prompts/twin.yaml", echo_prompt("twin"))
    project.write("golden/echo.jsonl", text_cases("a", "b", "c"))
    openai_server.set_latency(150)  # both prompts' requests are in flight at the same time
    recorded = evaluate(project, openai_server, mode="record")
    assert len(openai_server.chat_requests()) == 3  # shared, not sent twice
    assert recorded.recordings_written == [
        "golden/recordings/echo.jsonl",
        "golden/recordings/twin.jsonl",
    ]
    for name in ("echo", "twin"):
        lines = rows(project.root / f"golden/recordings/{name}.jsonl")
        assert [(r["case"], r["text"]) for r in lines] == [("c0", "a"), ("c1", "b"), ("c2", "c")]
        offline = evaluate(project, None, name, use_cache=False).runs[0]
        assert offline.summary.mode == "offline"
        assert (offline.summary.passed, offline.summary.errors) == (3, 0), offline.failures


def test_a_failed_provider_stops_every_worker_at_once(project: PromptRepo) -> None:
    # Every call fails without retries; eight workers are mid-call when the third failure
    # decides the provider is down. After that no worker may start a call or touch a
    # closed results file or cache: the process ends with exit 3 and one clear message.
    config = EVAL_CONFIG.replace("max_retries: 2", "max_retries: 0")
    project.write("promptyard.yaml", config)
    project.write("prompts/echo.yaml", echo_prompt())
    project.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(200)]))
    with OpenAIServer(latency_ms=30) as server:
        server.add_fault("500")
        result = project.run("eval", env=live_env(server))
        sent = len(server.chat_requests())
    assert result.exit_code == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("eval: ")]
    assert len(lines) == 2 and lines[1].startswith("  hint:"), result.stderr  # nothing stray
    assert "provider 'default'" in lines[0] and "is unreachable: 3 call(s) failed" in lines[0]
    # 8 calls in flight, plus one new call by each of the 2 workers whose call failed first
    assert sent <= 8 + 2, sent
    (results,) = (project.root / ".promptyard/runs").glob("*/results.jsonl")
    written = rows(results)
    assert len(written) <= 3 and all(r["error_kind"] == "infra" for r in written)
    summary = json.loads((results.parent / "summary.json").read_text())
    assert summary["complete"] is False and summary["rows"] == len(written)


def test_an_unreachable_judge_with_many_cases_stops_the_run(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    project.write("promptyard.yaml", EVAL_CONFIG.replace("max_retries: 2", "max_retries: 0"))
    project.write(
        "prompts/echo.yaml",
        echo_prompt(asserts=[{"type": "llm-rubric", "value": "Is polite"}], threshold=0.0),
    )
    project.write("golden/echo.jsonl", text_cases(*[f"case {i}" for i in range(100)]))
    openai_server.add_fault("500", match="grade an AI output")
    with pytest.raises(InfraError, match="3 judge call"):
        evaluate(project, openai_server)
    judged = [r for r in openai_server.chat_requests() if r.status == 500]
    assert len(judged) <= 8 + 2
    written = rows(next((project.root / ".promptyard/runs").glob("*/results.jsonl")))
    # never a "could not evaluate" verdict: the judge's failure is an infrastructure error
    assert all(r["error_kind"] == "infra" and not r["assertions"] for r in written), written


def test_summary_metrics_agree_with_the_merge_gate(
    project: PromptRepo, openai_server: OpenAIServer
) -> None:
    from promptyard.compare.metrics import head_metrics
    from promptyard.compare.paired import UNAVAILABLE_HEAD, fold_results

    project.write(
        "prompts/echo.yaml",
        echo_prompt(
            asserts=[
                {"type": "contains", "value": "ok", "metric": "quality", "weight": 3},
                {"type": "word-count", "value": {"max": 2}, "metric": "quality"},
                {"type": "contains", "value": "!", "metric": "bang"},
            ],
            threshold=0.0,
        ),
    )
    # c0: ok, 3 words -> quality (3*1 + 1*0) / 4 = 0.75; c1: both fail -> 0; c2: both -> 1
    project.write("golden/echo.jsonl", text_cases("ok then ok", "no no no", "ok!"))
    run = evaluate(project, openai_server, repeat=2).runs[0]
    metrics = run.summary.metrics
    assert metrics["quality"]["mean_score"] == pytest.approx((0.75 + 0 + 1) / 3)
    assert metrics["quality"]["pass_rate"] == pytest.approx(1 / 3)  # every quality check passed
    assert metrics["quality"]["count"] == 3  # cases scored on it
    assert metrics["bang"] == {"mean_score": pytest.approx(1 / 3), "pass_rate": 1 / 3, "count": 3}
    summary_file = json.loads((run.run_dir / "summary.json").read_text())
    assert summary_file["metrics"] == metrics
    # The gate folds the same rows through `CaseResult.metric_scores`: the same numbers.
    outcomes = fold_results(
        run.iter_results(), repeat=2, min_pass=2, unavailable_kinds=UNAVAILABLE_HEAD
    )
    gate = head_metrics(list(outcomes.values()), repeat=2)
    for name in ("quality", "bang"):
        assert gate[name].head == pytest.approx(metrics[name]["mean_score"])
        assert gate[name].n == metrics[name]["count"]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),  # its own entry wins over gpt-4o
        ("gpt-4o-2024-05-13", "gpt-4o"),  # a dated snapshot of gpt-4o
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-nano", None),  # not gpt-4
        ("gpt-4o-mini-tts", None),
        ("gpt-4o-realtime-preview", None),
        ("gpt-4-turbo", None),
        ("gpt-4-2024-1-1", None),
        ("gpt-4o-2024-08-06-extra", None),
        ("gpt", None),
        ("", None),
    ],
)
def test_price_for_matches_a_name_or_its_dated_snapshots(model: str, expected: str | None) -> None:
    from promptyard.evals.pricing import cost_usd, price_for
    from promptyard.spec.config import Price

    table = {
        name: Price(input=float(i + 1), output=float(10 * (i + 1)))
        for i, name in enumerate(["gpt-4", "gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06"])
    }
    assert price_for(table, model) is (table[expected] if expected else None)
    cost = cost_usd(table, model, 1_000_000, 1_000_000)
    assert cost == (table[expected].input + table[expected].output if expected else None)


def test_a_provider_type_registers_itself_in_one_file() -> None:
    import textwrap

    code = textwrap.dedent(
        """
        import sys
        from promptyard.evals.providers import PROVIDERS, create_provider
        from promptyard.evals.providers.base import Provider, provider
        from promptyard.spec import ProviderConfig

        assert PROVIDERS["openai"].type_name == "openai" and "openai" not in sys.modules

        @provider("echo-test")
        class Echo(Provider):
            def describe(self): return "echo"
            async def complete(self, request, *, timeout): raise NotImplementedError
            async def embed(self, model, texts, *, timeout): raise NotImplementedError

        assert Echo.type_name == "echo-test" and PROVIDERS["echo-test"] is Echo
        made = create_provider("p", ProviderConfig.model_validate({"type": "echo-test"}), {})
        assert isinstance(made, Echo)
        try:
            provider("openai")(Echo)
        except ValueError as exc:
            assert "openai" in str(exc)
        else:
            raise AssertionError("a second class for one type name was accepted")
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
