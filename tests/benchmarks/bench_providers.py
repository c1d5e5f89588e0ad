"""Benchmark: each provider type against its local server (each server in its own process).

1. CPU per call: `provider.complete` on a short chat, `--calls` times at concurrency 10
   against a server answering at once; this process's CPU time (the server's is not
   counted) divided by the calls. Request building, the SDK transport, parsing.
2. Throughput: an eval of `--cases` cases at concurrency 50 against a server answering
   after 20 ms (`evaluate_snapshot` in this process, nothing cached); cases per second of
   wall time. Ideal: 50 / 20 ms = 2,500 cases/s.

Types: `openai` (the OpenAI-compatible server), `azure-openai` (the same server, Azure's
URL shape through the SDK's Azure client) and `anthropic` (the Messages API server).
Runs alternate between types to share machine noise; the median of `--runs` is reported.

Run by hand:
    .venv/bin/python tests/benchmarks/bench_providers.py [--calls 2000] [--cases 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptyard.evals.providers import ChatRequest, create_provider
from promptyard.evals.runner import EvalOptions, evaluate_snapshot
from promptyard.repo.workspace import Workspace
from promptyard.spec import ProviderConfig
from support.anthropic_server import AnthropicServerProcess
from support.openai_server import OpenAIServerProcess
from support.repo import PromptRepo

TYPES = ("openai", "azure-openai", "anthropic")
MODEL = "bench-model"


def environ(provider_type: str, server: Any) -> dict[str, str]:
    if provider_type == "openai":
        return {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k"}
    if provider_type == "azure-openai":
        return {"AZURE_OPENAI_ENDPOINT": server.url, "AZURE_OPENAI_API_KEY": "k"}
    return {"ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": "k"}


def server_for(provider_type: str, latency_ms: float) -> Any:
    cls = AnthropicServerProcess if provider_type == "anthropic" else OpenAIServerProcess
    return cls(latency_ms=latency_ms)


def cpu_per_call(provider_type: str, server: Any, calls: int) -> float:
    """Microseconds of this process's CPU per `complete` call."""
    config = ProviderConfig(type=provider_type, max_concurrency=10)
    provider = create_provider("bench", config, environ(provider_type, server))
    messages = [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "My order A7 has not arrived, where is it?"},
    ]
    request = ChatRequest(MODEL, messages, {"temperature": 0, "max_tokens": 100})

    async def run() -> float:
        gate = asyncio.Semaphore(10)

        async def one() -> None:
            async with gate:
                await provider.complete(request, timeout=30)

        await asyncio.gather(*(one() for _ in range(50)))  # warm up: connections, imports
        started = time.process_time()
        await asyncio.gather(*(one() for _ in range(calls)))
        spent = time.process_time() - started
        await provider.aclose()
        return spent / calls * 1e6

    return asyncio.run(run())


def make_project(root: Path, provider_type: str, cases: int) -> PromptRepo:
    config = f"""\
providers:
  default: {{type: {provider_type}, max_concurrency: 50, timeout_s: 30, max_retries: 2}}
pricing:
  {MODEL}: {{input: 0.15, output: 0.60}}
"""
    repo = PromptRepo.create(root, config)
    prompt = {
        "name": "bench",
        "version": "1.0.0",
        "model": {"provider": "default", "name": MODEL, "parameters": {"max_tokens": 100}},
        "inputs": {"ticket": {"type": "string"}},
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "{{ ticket }}"},
        ],
        "evals": [
            {
                "dataset": "golden/bench.jsonl",
                "assert": [{"type": "contains", "value": "order"}],
                "threshold": 0.0,
            }
        ],
    }
    repo.write("prompts/bench.yaml", json.dumps(prompt))
    rows = [
        json.dumps({"id": f"c{i}", "vars": {"ticket": f"Where is my order {i}?"}})
        for i in range(cases)
    ]
    repo.write("golden/bench.jsonl", "\n".join(rows) + "\n")
    return repo


def cases_per_second(provider_type: str, server: Any, repo: PromptRepo, cases: int) -> float:
    options = EvalOptions(
        repo_root=repo.root,
        environ=environ(provider_type, server),
        use_cache=False,
        concurrency=50,
    )
    started = time.perf_counter()
    report = evaluate_snapshot(Workspace(repo.root).snapshot(), (), options=options)
    elapsed = time.perf_counter() - started
    (run,) = report.runs
    summary = run.summary
    assert summary.cases == cases and summary.passed == cases, summary
    return cases / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cpu: dict[str, list[float]] = {t: [] for t in TYPES}
    rate: dict[str, list[float]] = {t: [] for t in TYPES}
    with tempfile.TemporaryDirectory() as tmp:
        projects = {t: make_project(Path(tmp) / t, t, args.cases) for t in TYPES}
        for _ in range(args.runs):
            for provider_type in TYPES:
                with server_for(provider_type, 0) as server:
                    cpu[provider_type].append(cpu_per_call(provider_type, server, args.calls))
                with server_for(provider_type, 20) as server:
                    repo = projects[provider_type]
                    rate[provider_type].append(
                        cases_per_second(provider_type, server, repo, args.cases)
                    )
    print(f"{args.calls} calls (CPU) / {args.cases} cases at concurrency 50, 20 ms server")
    print(f"{'type':<14}{'CPU/call (us)':>15}{'cases/s':>10}{'vs openai':>11}")
    base = statistics.median(rate["openai"])
    for provider_type in TYPES:
        per_call = statistics.median(cpu[provider_type])
        per_second = statistics.median(rate[provider_type])
        ratio = per_second / base
        print(f"{provider_type:<14}{per_call:>15.0f}{per_second:>10.0f}{ratio:>10.2f}x")


if __name__ == "__main__":
    main()
