"""Benchmark: `promptyard eval` against the local OpenAI-compatible server, as whole processes.

The server runs in its own process (tests/support/openai_server.py) and answers every
request after 20 ms. Measured:

1. 2,000 cases at concurrency 50, nothing cached. Ideal: 2000 / 50 x 20 ms = 0.8 s.
   Target: wall time <= 1.25 x 0.8 s + process start.
2. The same command again, fully cached. Target: >= 5,000 cases/s.
3. 100,000 cases (live, concurrency 50): peak RSS of the eval process. Target: < 500 MB.

"Process start" is the wall time of a `promptyard eval --no-cache` on a one-case dataset:
interpreter, imports (the `openai` package alone takes ~0.5 s to import here), config, the
run directory, the cache, and one live call. The cached re-run is compared with a
one-case run that has nothing to fetch (nothing imports the client then).

Run by hand:
    .venv/bin/python tests/benchmarks/bench_eval.py [--cases 2000] [--big 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.openai_server import OpenAIServerProcess

CONFIG = """\
providers:
  default:
    type: openai
    base_url_env: BENCH_BASE_URL
    api_key_env: BENCH_API_KEY
    max_concurrency: 50
    timeout_s: 30
    max_retries: 2
pricing:
  bench-model: {input: 0.15, output: 0.60}
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
evals:
  - dataset: {dataset}
    assert:
      - {{type: icontains, value: "{{{{ vars.customer }}}}"}}
      - {{type: word-count, value: {{min: 3, max: 200}}}}
      - {{type: not-contains, value: "as an AI"}}
    threshold: 0.9
"""


def make_repo(root: Path, cases: int, name: str) -> None:
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    (root / "golden").mkdir(exist_ok=True)
    (root / "promptyard.yaml").write_text(CONFIG)
    dataset = f"golden/{name}.jsonl"
    (root / "prompts/bench.yaml").write_text(PROMPT.format(dataset=dataset))
    with open(root / dataset, "w") as out:
        for i in range(cases):
            case = {
                "id": f"case-{i:06d}",
                "vars": {
                    "customer": f"Customer{i}",
                    "ticket": f"Customer{i} here: my order {100000 + i} has not arrived, "
                    "can you check the tracking and tell me when it will be delivered?",
                },
            }
            out.write(json.dumps(case) + "\n")


def run_eval(root: Path, env: dict[str, str], *extra: str) -> tuple[float, dict, int]:
    """Wall time, the JSON report, and the peak RSS (KiB) of one `promptyard eval` process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptyard", "eval", "--format", "json", *extra],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    peak = [0]

    def watch() -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, _ = proc.communicate()
    elapsed = time.perf_counter() - started
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"eval exited {proc.returncode}: {out[:500]}")
    return elapsed, json.loads(out), peak[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument(
        "--big", type=int, default=100_000, help="cases of the memory run (0: skip)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        OpenAIServerProcess(latency_ms=args.latency_ms) as server,
    ):
        env = {**os.environ, "BENCH_BASE_URL": server.base_url, "BENCH_API_KEY": "bench"}
        env.pop("OPENAI_BASE_URL", None)

        # process start: a live one-case eval, and a one-case eval answered from the cache
        tiny = Path(tmp) / "tiny"
        make_repo(tiny, 1, "tiny")
        starts = [run_eval(tiny, env, "--no-cache")[0] for _ in range(args.runs)]
        start = statistics.median(starts)
        cached_starts = [run_eval(tiny, env)[0] for _ in range(args.runs)]
        cached_start = statistics.median(cached_starts)

        ideal = args.cases / 50 * args.latency_ms / 1000
        cold, warm = [], []
        for attempt in range(args.runs):
            root = Path(tmp) / f"cold-{attempt}"
            make_repo(root, args.cases, "cases")
            elapsed, report, _ = run_eval(root, env, "--concurrency", "50")
            assert report["runs"][0]["cases"] == args.cases and report["runs"][0]["errors"] == 0
            cold.append(elapsed)
            elapsed, report, _ = run_eval(root, env, "--concurrency", "50")
            warm.append(elapsed)

        print(
            f"process start, one live call:        {start:.3f} s  (runs: {', '.join(f'{s:.3f}' for s in starts)})"
        )
        print(f"process start, one cached answer:    {cached_start:.3f} s")
        print(
            f"{args.cases} cases, concurrency 50, cold: median {statistics.median(cold):.3f} s, "
            f"best {min(cold):.3f} s  (target <= {1.25 * ideal:.2f} s + start = {1.25 * ideal + start:.3f} s)"
        )
        print(
            f"  minus process start:                {statistics.median(cold) - start:.3f} s  (ideal {ideal:.2f} s)"
        )
        rate = [args.cases / max(w - cached_start, 1e-9) for w in warm]
        print(
            f"{args.cases} cases fully cached: median {statistics.median(warm):.3f} s wall, "
            f"{statistics.median(rate):,.0f} cases/s excluding process start "
            f"({args.cases / statistics.median(warm):,.0f}/s including it; target >= 5,000/s)"
        )

        if args.big:
            root = Path(tmp) / "big"
            make_repo(root, args.big, "big")
            elapsed, report, peak_kib = run_eval(root, env, "--concurrency", "50")
            row = report["runs"][0]
            assert row["cases"] == args.big, row
            print(
                f"{args.big:,} cases live: {elapsed:.1f} s, peak RSS {peak_kib / 1024:.0f} MB "
                f"(target < 500 MB); pass rate {row['pass_rate']:.3f}"
            )


if __name__ == "__main__":
    main()
