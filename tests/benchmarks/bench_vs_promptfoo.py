"""Benchmark: `promptyard eval` side by side with `promptfoo eval` on the same work.

Both tools evaluate the same 2,000 cases (the prompt of bench_eval: a system and a user
message) against the same local OpenAI-compatible server in its own process (20 ms per
answer), at concurrency 50, with nothing cached, judged by the same three assertions
(`icontains` the customer's name, `word-count` 3..200, `not-contains "as an AI"`; promptfoo
has all three with the same meaning). Each tool writes its results to one file
(promptyard: its run's results.jsonl; promptfoo: `-o results.json`, `--no-write`: no
database). Runs alternate so both share the machine's noise; each process's wall and CPU
time are measured, and every run is checked to have passed all 2,000 cases.
Target (issue 14): promptyard at least 5 x promptfoo's speed (median wall times).

promptfoo is not a dependency of promptyard: install it anywhere outside the repository,

    mkdir -p ~/promptfoo-bench && cd ~/promptfoo-bench && npm install promptfoo

and pass its binary (`--promptfoo` or the PROMPTFOO_BIN environment variable):

    .venv/bin/python tests/benchmarks/bench_vs_promptfoo.py \
        --promptfoo ~/promptfoo-bench/node_modules/.bin/promptfoo [--cases 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fixture import (
    Measured,
    eval_cases,
    load,
    measure,
    median_line,
    run_eval,
    server_env,
    write_eval_repo,
)

from support.openai_server import OpenAIServerProcess

INSTALL = (
    "promptfoo not found: install it outside this repository "
    "(mkdir -p ~/promptfoo-bench && cd ~/promptfoo-bench && npm install promptfoo) and pass "
    "--promptfoo ~/promptfoo-bench/node_modules/.bin/promptfoo (or set PROMPTFOO_BIN)"
)


def promptfoo_config(base_url: str) -> dict[str, Any]:
    """promptfoo's equivalent of the bench prompt, its provider and its assertions."""
    return {
        "description": "promptyard side-by-side benchmark",
        "prompts": ["file://prompt.json"],
        "providers": [
            {
                "id": "openai:chat:bench-model",
                "config": {"apiBaseUrl": base_url, "apiKey": "bench", "temperature": 0},
            }
        ],
        "defaultTest": {
            "assert": [
                {"type": "icontains", "value": "{{ customer }}"},
                {"type": "word-count", "value": {"min": 3, "max": 200}},
                {"type": "not-contains", "value": "as an AI"},
            ]
        },
        "tests": "file://tests.json",
    }


def write_promptfoo_project(root: Path, cases: list[dict[str, Any]], base_url: str) -> None:
    root.mkdir(parents=True)
    messages = [
        {"role": "system", "content": "You are a support agent. Address {{ customer }} by name."},
        {"role": "user", "content": "{{ ticket }}"},
    ]
    (root / "prompt.json").write_text(json.dumps(messages))
    tests = [{"description": case["id"], "vars": case["vars"]} for case in cases]
    (root / "tests.json").write_text(json.dumps(tests))
    # JSON is YAML: promptfoo reads the config as YAML
    (root / "promptfooconfig.yaml").write_text(json.dumps(promptfoo_config(base_url)))


def run_promptfoo(binary: str, root: Path, env: dict[str, str]) -> tuple[Measured, int, int]:
    """One `promptfoo eval` process: its measurement, and the passed and total test count."""
    command = [binary, "eval", "-c", "promptfooconfig.yaml", "--no-cache", "-j", "50"]
    command += ["--no-write", "--no-table", "--no-progress-bar", "-o", "results.json"]
    measured = measure(command, root, env)
    stats = json.loads((root / "results.json").read_text())["results"]["stats"]
    return measured, stats["successes"], stats["successes"] + stats["failures"] + stats["errors"]


def find_promptfoo(given: str | None) -> str:
    binary = given or os.environ.get("PROMPTFOO_BIN") or shutil.which("promptfoo")
    if not binary or not (Path(binary).is_file() or shutil.which(binary)):
        raise SystemExit(INSTALL)
    return binary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--promptfoo", help="the promptfoo binary (default: $PROMPTFOO_BIN)")
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    binary = find_promptfoo(args.promptfoo)
    cases = eval_cases(args.cases)
    with (
        tempfile.TemporaryDirectory() as tmp,
        OpenAIServerProcess(latency_ms=args.latency_ms) as server,
    ):
        env = server_env(server.base_url)
        foo_env = {
            **env,
            "PROMPTFOO_CONFIG_DIR": str(Path(tmp) / "promptfoo-home"),
            "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "PROMPTFOO_DISABLE_UPDATE": "1",
            "NO_COLOR": "1",
        }
        load_before = load()
        ours: list[Measured] = []
        theirs: list[Measured] = []
        for attempt in range(args.runs):
            root = Path(tmp) / f"promptyard-{attempt}"
            write_eval_repo(root, cases)
            measured, report = run_eval(root, env, "--no-cache", "--concurrency", "50")
            row = report["runs"][0]
            assert row["cases"] == row["passed"] == args.cases, row
            ours.append(measured)
            root = Path(tmp) / f"promptfoo-{attempt}"
            write_promptfoo_project(root, cases, server.base_url)
            measured, passed, total = run_promptfoo(binary, root, foo_env)
            assert passed == total == args.cases, (passed, total)
            theirs.append(measured)
        print(f"load average: {load_before} before, {load()} after")
        for label, runs in (("promptyard", ours), ("promptfoo ", theirs)):
            print(median_line(f"{args.cases} cases, {label} wall", [m.wall_s for m in runs]))
            print(median_line(f"{args.cases} cases, {label} CPU ", [m.cpu_s for m in runs]))
        speedup = statistics.median(m.wall_s for m in theirs) / statistics.median(
            m.wall_s for m in ours
        )
        print(f"promptyard is {speedup:.2f} x promptfoo's speed (target >= 5)")


if __name__ == "__main__":
    main()
