"""Benchmark: `promptyard view` on a run of 100,000 cases, as a whole process.

Writes a run directory of N rows (answers of ~300 characters, 2 assertions each, 1 in 10
failing) into a temporary repository, starts `promptyard view --port 0`, and measures:

1. the first page of the run (GET /runs/<id>): target < 1 s;
2. the list of runs, a page deep in the run (page 1000), the failed-only filter, and a text
   search that matches nothing (the worst case: reads every line);
3. the viewer's peak RSS (VmHWM) after all of it: target < 300 MB.

Run by hand:
    .venv/bin/python tests/benchmarks/bench_view.py [--cases 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptyard.evals.results import CaseResult, EvalSummary, RunStats, summarize

ANSWER = "Thanks for reaching out about your order. " * 7


def write_run(root: Path, cases: int) -> str:
    run_id = "support-reply--support-reply-000000000000"
    run_dir = root / ".promptyard/runs" / run_id
    run_dir.mkdir(parents=True)
    stats = RunStats(1, 1)
    with open(run_dir / "results.jsonl", "w", encoding="utf-8") as out:
        for i in range(cases):
            passed = i % 10 != 7
            row = CaseResult(
                run_id, "support-reply", "2.1.0", "0" * 64, "golden/support-reply.jsonl",
                f"case-{i:06d}", 0, "gpt-4o-mini", f"{ANSWER}#{i}", passed, 1.0 if passed else 0.5,
                assertions=[
                    {"type": "icontains", "pass": True, "score": 1.0, "reason": "contains 'order'", "weight": 1.0, "metric": None},
                    {"type": "max-length", "pass": passed, "score": 1.0 if passed else 0.0, "reason": "ok" if passed else "too long", "weight": 1.0, "metric": None},
                ],
                latency_ms=420.0, tokens_in=210, tokens_out=60, cost_usd=0.00007,
                vars={"customer": f"Customer {i}", "question": f"Where is my order {i}?"},
            )  # fmt: skip
            out.write(json.dumps(row.to_dict(), separators=(",", ":")) + "\n")
            stats.add(row)
    summary: EvalSummary = summarize(
        stats, run_id=run_id, prompt="support-reply", version="2.1.0", content_hash="0" * 64,
        dataset="golden/support-reply.jsonl", model="gpt-4o-mini", provider="default",
        mode="live", threshold=0.8, results_path=str(run_dir / "results.jsonl"),
        started_at="2025-01-01T00:00:00+00:00", finished_at="2025-01-01T01:00:00+00:00",
    )  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary.to_dict()))
    return run_id


def timed_get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url) as response:
        body = response.read()
    return time.perf_counter() - started, len(body)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "promptyard.yaml").write_text("providers:\n  default:\n    type: openai\n")
        started = time.perf_counter()
        run_id = write_run(root, args.cases)
        size = (root / ".promptyard/runs" / run_id / "results.jsonl").stat().st_size
        print(
            f"wrote {args.cases:,} rows ({size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "promptyard.cli", "view", "--port", "0"],
            cwd=root, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            base = re.search(r"http://[\d.]+:\d+", proc.stderr.readline()).group(0)  # type: ignore[union-attr]
            timed_get(base + "/")  # warm: imports, templates
            checks = [
                ("first page of the run", f"/runs/{run_id}", 1.0),
                ("run list", "/", None),
                ("page 1,000 of the run", f"/runs/{run_id}?page=1000", None),
                ("failed only, first page", f"/runs/{run_id}?failed=1", None),
                (
                    "text search, no match (reads every line)",
                    f"/runs/{run_id}?q=zzzz-nothing",
                    None,
                ),
            ]
            for label, path, target in checks:
                seconds, length = timed_get(base + path)
                verdict = (
                    "" if target is None else (" OK" if seconds < target else f" OVER {target} s")
                )
                print(f"{label:45s} {seconds * 1000:8.0f} ms  ({length / 1e3:.0f} kB){verdict}")
            rss = peak_rss_mb(proc.pid)
            print(f"viewer peak RSS {rss:.0f} MB{' OK' if rss < 300 else ' OVER 300 MB'}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
