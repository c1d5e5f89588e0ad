"""Shared by the benchmarks: a released prompt repository (a typical prompt, a canary), and
the eval benchmarks' prompt repository, cases and process measurement."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.repo import GIT_ENV, PromptRepo, make_repo

os.environ.update(GIT_ENV)

VARIABLES = {
    "company": "Acme Corp",
    "ticket": "My order #4411 arrived damaged. Can I get a replacement before Friday?",
    "history": ["Hi, I ordered a lamp.", "It arrived broken.", "Please help."],
}


def released_repo(tmp: Path) -> PromptRepo:
    """support-reply 1.0.0 stable with 1.1.0 as a 10% canary in production; all tagged."""
    repo = make_repo(tmp)
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    repo.set_environment(
        "production", {"support-reply": ("1.0.0", "1.1.0", 10), "greeter": "1.0.0"}
    )
    repo.commit("canary")
    repo.release()
    return repo


# --- the eval benchmarks (bench_eval, bench_eval_tools, bench_vs_promptfoo, bench_check) ----

EVAL_CONFIG = """\
providers:
  default:
    type: openai
    base_url_env: BENCH_BASE_URL
    api_key_env: BENCH_API_KEY
    max_concurrency: {max_concurrency}
    timeout_s: 30
    max_retries: 2
pricing:
  bench-model: {{input: 0.15, output: 0.60}}
"""
EVAL_PROMPT = """\
name: {name}
version: 1.0.0
model: {{name: bench-model, parameters: {{temperature: 0}}}}
inputs:
  customer: {{type: string}}
  ticket: {{type: string}}
messages:
  - role: system
    content: {system}
  - role: user
    content: "{{{{ ticket }}}}"
{tools}evals:
  - dataset: {dataset}
    assert:
{asserts}    threshold: 0.9
"""
# What every case of bench_eval is judged by (bench_vs_promptfoo gives promptfoo the same).
EVAL_ASSERTS = """\
      - {type: icontains, value: "{{ vars.customer }}"}
      - {type: word-count, value: {min: 3, max: 200}}
      - {type: not-contains, value: "as an AI"}
"""
EVAL_SYSTEM = "You are a support agent. Address {{ customer }} by name."


def eval_config(max_concurrency: int = 50) -> str:
    """promptyard.yaml of a benchmark repository: provider `default` at BENCH_BASE_URL."""
    return EVAL_CONFIG.format(max_concurrency=max_concurrency)


def eval_prompt(
    *,
    name: str = "bench",
    system: str = EVAL_SYSTEM,
    tools: str = "",
    dataset: str = "golden/cases.jsonl",
    asserts: str = EVAL_ASSERTS,
) -> str:
    """A prompt of two messages (`system` as YAML, `tools` spliced in as given) evaluated on
    `dataset` by `asserts` (YAML list items, indented for `evals[0].assert`)."""
    return EVAL_PROMPT.format(
        name=name, system=system, tools=tools, dataset=dataset, asserts=asserts
    )


def ticket(i: int) -> str:
    return (
        f"Customer{i} here: my order {100000 + i} has not arrived, "
        "can you check the tracking and tell me when it will be delivered?"
    )


def eval_cases(count: int, make_ticket: Callable[[int], str] = ticket) -> list[dict[str, Any]]:
    return [
        {"id": f"case-{i:06d}", "vars": {"customer": f"Customer{i}", "ticket": make_ticket(i)}}
        for i in range(count)
    ]


def write_eval_repo(
    root: Path,
    cases: list[dict[str, Any]],
    *,
    asserts: str = EVAL_ASSERTS,
    tools: str = "",
    dataset: str = "golden/cases.jsonl",
) -> None:
    """A prompt repository with prompt `bench` (two messages, `tools` spliced in as given)
    evaluated on `cases` by `asserts` (YAML list items, indented for `evals[0].assert`)."""
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    (root / "golden").mkdir(exist_ok=True)
    (root / "promptyard.yaml").write_text(eval_config())
    (root / "prompts/bench.yaml").write_text(
        eval_prompt(tools=tools, dataset=dataset, asserts=asserts)
    )
    with open(root / dataset, "w") as out:
        for case in cases:
            out.write(json.dumps(case) + "\n")


def server_env(base_url: str) -> dict[str, str]:
    """The environment an eval process reaches the benchmark server with."""
    env = {**os.environ, "BENCH_BASE_URL": base_url, "BENCH_API_KEY": "bench"}
    env.pop("OPENAI_BASE_URL", None)
    return env


@dataclass
class Measured:
    """One benchmarked process: wall time, CPU time (user + system), peak RSS, its stdout."""

    wall_s: float
    cpu_s: float
    peak_kib: int
    stdout: str


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> Measured:
    """Run `command` to its end; raise SystemExit when it fails."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.DEVNULL, text=True
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... exited {proc.returncode}: {stdout[:500]}")
    # ru_maxrss is in KiB on Linux: the peak of this process (the eval has no children)
    return Measured(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, stdout)


def run_eval(root: Path, env: dict[str, str], *extra: str) -> tuple[Measured, dict[str, Any]]:
    """One `promptyard eval --format json` process in `root`, and its JSON report."""
    measured = measure(
        [sys.executable, "-m", "promptyard", "eval", "--format", "json", *extra], root, env
    )
    return measured, json.loads(measured.stdout)


def median_line(label: str, values: list[float], unit: str = "s") -> str:
    runs = ", ".join(f"{v:.3f}" for v in values)
    return f"{label}: median {statistics.median(values):.3f} {unit} ({runs})"


def load() -> str:
    """The load averages (1, 5, 15 min): the machine is shared, so figures come with it."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
