"""The rollout loop's reaction times with real processes on loopback (tests/support/
rollout_stack.py): 1 s scrape, 1 s analysis interval, 1 s controller tick, 1 s registry poll,
gateway label cache 0.5 s.

1. Abort: the canary serves healthily at its first step until it has `--warm` requests, then
   its upstream answers 500 for every canary request. Measured from the injected fault to
   the abort commit on the remote, and to the registry serving stable to every key
   (target: <= 10 s).
2. Healthy walk 5 -> 25 -> 50 -> 100 with `--pause` per step: time from the start to each
   step's commit and to the promotion.

Run: .venv/bin/python tests/benchmarks/bench_rollout.py [--first-weight 5] [--pause 2s]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.rollout_stack import RolloutStack, wait_for


def canary_answers(stack: RolloutStack) -> int:
    return sum(n for (version, _), n in stack.traffic.counts.items() if version == "1.1.0")


def abort(first_weight: int, warm: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        weights = [first_weight, *(w for w in (25, 50, 100) if w > first_weight)]
        with RolloutStack(
            Path(tmp), weights=weights, pause="10m", min_requests=15, workers=workers
        ) as stack:
            if wait_for(lambda: canary_answers(stack) >= warm, 120) is None:
                sys.exit(f"the canary got no {warm} answers in 120 s:\n{stack.logs()}")
            start = time.monotonic()
            stack.upstream.add_fault("500", match="Good day")
            committed = wait_for(lambda: "canary" not in stack.pin(), 120, 0.05)
            served = wait_for(lambda: stack.served_versions(20) == {"1.0.0": 20}, 60, 0.05)
            total = time.monotonic() - start
            rate = sum(stack.traffic.counts.values()) / max(total, 1e-9)
        print(f"abort at {first_weight}% (canary warmed with {warm} answers, ~{rate:.0f} req/s):")
        if committed is None or served is None:
            print(f"  not aborted within the deadline\n{stack.logs()}")
            return
        print(f"  fault -> abort commit pushed:            {committed:6.1f} s")
        print(f"  fault -> registry serves stable to all:  {total:6.1f} s (target <= 10 s)")
        print(f"  commits: {stack.rollout_commits()}")


def walk(pause: str, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        with RolloutStack(
            Path(tmp), weights=[5, 25, 50, 100], pause=pause, min_requests=15, workers=workers
        ) as stack:
            start = time.monotonic()
            seen: list[tuple[float, str]] = []

            def progressed() -> bool:
                commits = stack.rollout_commits()
                for subject in commits[len(seen) :]:
                    seen.append((time.monotonic() - start, subject))
                return stack.pin() == {"version": "1.1.0"}

            done = wait_for(progressed, 300, 0.1)
            rate = sum(stack.traffic.counts.values()) / (time.monotonic() - start)
        print(f"healthy walk 5 -> 25 -> 50 -> 100, pause {pause} per step (~{rate:.0f} req/s):")
        for at, subject in seen:
            print(f"  {at:6.1f} s  {subject}")
        print(f"  promoted after {done:.1f} s" if done is not None else "  not promoted in 300 s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first-weight", type=int, default=5)
    parser.add_argument("--warm", type=int, default=30, help="canary answers before the fault")
    parser.add_argument("--pause", default="2s")
    parser.add_argument("--workers", type=int, default=4, help="traffic threads")
    parser.add_argument("--only", choices=["abort", "walk"])
    args = parser.parse_args()
    if args.only != "walk":
        abort(args.first_weight, args.warm, args.workers)
    if args.only != "abort":
        walk(args.pause, args.workers)


if __name__ == "__main__":
    main()
