"""Benchmark: a 2,000-case eval with a prompt that declares two tools vs the same without.

Both run as whole `promptyard eval --no-cache` processes against the local server in its
own process (20 ms per answer, concurrency 50); with tools, every case's answer is a tool
call (a `[[tool:...]]` marker), judged by `tool-call` and `tool-args-valid`. Without tools
the server drops the marker and echoes the ticket, judged by `contains`. Runs alternate to share machine noise.
Target: with tools <= 1.10 x the wall time without.

Run by hand:
    .venv/bin/python tests/benchmarks/bench_eval_tools.py [--cases 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_eval import CONFIG, run_eval

from support.openai_server import OpenAIServerProcess

TOOLS = """\
tools:
  - name: lookup_order
    description: Look up an order of {{ customer }} by its number.
    parameters:
      type: object
      properties: {order: {type: string}}
      required: [order]
      additionalProperties: false
    strict: true
  - name: escalate
    description: Hand the ticket to a human.
    parameters: {type: object, properties: {reason: {type: string}}}
"""
PROMPT = """\
name: bench
version: 1.0.0
model: {{name: bench-model, parameters: {{temperature: 0}}}}
inputs:
  customer: {{type: string}}
  ticket: {{type: string}}
messages:
  - role: system
    content: You are a support agent. Address {{{{ customer }}}} by name.
  - role: user
    content: "{{{{ ticket }}}}"
{tools}evals:
  - dataset: golden/cases.jsonl
    assert:
{asserts}
    threshold: 0.9
"""
WITH_TOOLS = """\
      - {type: tool-call, value: {name: lookup_order, json-path: {path: $.order, exists: true}}}
      - {type: tool-args-valid}
"""
WITHOUT_TOOLS = """\
      - {type: contains, value: "is late"}
      - {type: not-contains, value: "as an AI"}
"""


def make_repo(root: Path, cases: int, tools: bool) -> None:
    (root / "prompts").mkdir(parents=True)
    (root / "golden").mkdir()
    (root / "promptyard.yaml").write_text(CONFIG)
    asserts = WITH_TOOLS if tools else WITHOUT_TOOLS
    (root / "prompts/bench.yaml").write_text(
        PROMPT.format(tools=TOOLS if tools else "", asserts=asserts)
    )
    with open(root / "golden/cases.jsonl", "w") as out:
        for i in range(cases):
            ticket = (
                f'My order {100000 + i} is late. [[tool:lookup_order {{"order": "{100000 + i}"}}]]'
            )
            case = {"id": f"case-{i:06d}", "vars": {"customer": f"Customer{i}", "ticket": ticket}}
            out.write(json.dumps(case) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        OpenAIServerProcess(latency_ms=args.latency_ms) as server,
    ):
        env = {**os.environ, "BENCH_BASE_URL": server.base_url, "BENCH_API_KEY": "bench"}
        env.pop("OPENAI_BASE_URL", None)
        times: dict[bool, list[float]] = {False: [], True: []}
        for attempt in range(args.runs):
            for tools in (False, True):
                root = Path(tmp) / f"{'tools' if tools else 'plain'}-{attempt}"
                make_repo(root, args.cases, tools)
                elapsed, report, _ = run_eval(root, env, "--no-cache", "--concurrency", "50")
                row = report["runs"][0]
                assert row["cases"] == args.cases and row["errors"] == 0, row
                assert row["passed"] == args.cases, row
                times[tools].append(elapsed)
        plain, tooled = statistics.median(times[False]), statistics.median(times[True])
        for label, key in (("without tools", False), ("with two tools", True)):
            runs = ", ".join(f"{t:.3f}" for t in times[key])
            print(
                f"{args.cases} cases {label}: median {statistics.median(times[key]):.3f} s ({runs})"
            )
        print(f"ratio with/without: {tooled / plain:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
