"""In-process `Registry.render` latency (target: p50 <= 50 µs for a typical prompt).

Run: .venv/bin/python tests/benchmarks/bench_registry_render.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from _fixture import VARIABLES, released_repo

from promptyard import Registry

ITERATIONS = 50_000


def measure(fn, iterations: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    clock = time.perf_counter_ns
    for i in range(iterations):
        start = clock()
        fn(i)
        samples.append((clock() - start) / 1000.0)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    print(
        f"{label:<38} p50 {p(0.50):7.1f} µs   p90 {p(0.90):7.1f} µs   p99 {p(0.99):7.1f} µs"
        f"   mean {statistics.fmean(samples):7.1f} µs   (n={len(samples):,})"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = released_repo(Path(tmp))
        registry = Registry.from_repo(repo.root, ref="main")
        keys = [f"user-{i}" for i in range(1000)]
        for i in range(2000):  # warm up
            registry.render("support-reply", VARIABLES, key=keys[i % 1000])
        report(
            "render (label + sticky key)",
            measure(
                lambda i: registry.render("support-reply", VARIABLES, key=keys[i % 1000]),
                ITERATIONS,
            ),
        )
        report(
            "render (label, no key)",
            measure(lambda i: registry.render("support-reply", VARIABLES), ITERATIONS),
        )
        report(
            "render (explicit version)",
            measure(
                lambda i: registry.render("support-reply", VARIABLES, version="1.1.0"),
                ITERATIONS,
            ),
        )
        report(
            "get (label + sticky key)",
            measure(lambda i: registry.get("support-reply", key=keys[i % 1000]), ITERATIONS),
        )
        registry.close()


if __name__ == "__main__":
    main()
