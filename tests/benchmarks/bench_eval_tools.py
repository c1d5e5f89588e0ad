"""Benchmark: a 2,000-case eval with a prompt that declares two tools vs the same without.

Both run as whole `promptyard eval --no-cache` processes against the local server in its
own process (20 ms per answer, concurrency 50), on the same cases with the same
assertions: the two runs differ only in the prompt's `tools`. Each ticket carries a
`[[tool:lookup_order ...]]` marker: with tools the server answers with that call (no
text), without tools it drops the marker and echoes the ticket. The assertions hold for
both answers and exercise the tool checks when there are calls (`tool-args-valid`
validates each call against the declared schema, `not-tool-call` looks through them).
Runs alternate to share machine noise; wall and CPU time of the eval process are reported.
Target: with tools <= 1.10 x the wall time without.

Run by hand:
    .venv/bin/python tests/benchmarks/bench_eval_tools.py [--cases 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fixture import eval_cases, load, median_line, run_eval, server_env, write_eval_repo

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
# The same for both runs: each holds for a plain answer and for a call to lookup_order.
ASSERTS = """\
      - {type: not-contains, value: "as an AI"}
      - {type: not-refusal}
      - {type: tool-args-valid}
      - {type: not-tool-call, value: escalate}
"""


def tool_ticket(i: int) -> str:
    return f'My order {100000 + i} is late. [[tool:lookup_order {{"order": "{100000 + i}"}}]]'


def make_repo(root: Path, cases: int, tools: bool) -> None:
    write_eval_repo(
        root, eval_cases(cases, tool_ticket), asserts=ASSERTS, tools=TOOLS if tools else ""
    )


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
        env = server_env(server.base_url)
        load_before = load()
        wall: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        for attempt in range(args.runs):
            for tools in (False, True):
                root = Path(tmp) / f"{'tools' if tools else 'plain'}-{attempt}"
                make_repo(root, args.cases, tools)
                measured, report = run_eval(root, env, "--no-cache", "--concurrency", "50")
                row = report["runs"][0]
                assert row["cases"] == args.cases and row["errors"] == 0, row
                assert row["passed"] == args.cases, row
                wall[tools].append(measured.wall_s)
                cpu[tools].append(measured.cpu_s)
        print(f"load average: {load_before} before, {load()} after")
        for label, key in (("without tools", False), ("with two tools", True)):
            print(median_line(f"{args.cases} cases {label}, wall", wall[key]))
            print(median_line(f"{args.cases} cases {label}, CPU ", cpu[key]))
        ratio = statistics.median(wall[True]) / statistics.median(wall[False])
        cpu_ratio = statistics.median(cpu[True]) / statistics.median(cpu[False])
        print(f"ratio with/without: wall {ratio:.3f} (target <= 1.10), CPU {cpu_ratio:.3f}")


if __name__ == "__main__":
    main()
