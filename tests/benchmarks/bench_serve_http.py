"""`POST /v1/prompts/{name}/render` throughput on one uvicorn worker
(target: >= 2,000 requests/s with p99 <= 20 ms at 32 concurrent connections).

The server (`promptyard serve --source BUNDLE`, one process) and the load generator
(`loadgen.py`, another process) run on loopback; on a machine with 2+ cores each is pinned to
its own core so they do not steal each other's CPU.

With --experiment, an A/B experiment runs on the prompt and the server records every
assignment as an exposure in an event store (`serve --events`); the target is the same.

Run: .venv/bin/python tests/benchmarks/bench_serve_http.py [--seconds 10] [--connections 32]
     [--experiment]
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
from pathlib import Path
from typing import Any

import httpx
from _fixture import VARIABLES, released_repo

from promptyard.release.bundle import build_bundle, bundle_bytes
from promptyard.repo.workspace import Workspace

HERE = Path(__file__).resolve().parent


def pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() >= 2:  # type: ignore[operator]
        os.sched_setaffinity(pid, {cpu})


def run_experiment(repo: Any) -> None:
    """Run a 50/50 experiment on support-reply 1.0.0 vs 1.1.0 in production."""
    sys.path.insert(0, str(HERE.parent))
    from test_experiments_live import EXPERIMENT

    repo.write("experiments/tone.yaml", EXPERIMENT)
    repo.write(
        "serving/environments/production.yaml",
        repo.read("serving/environments/production.yaml") + "experiments: [tone]\n",
    )
    repo.commit("run tone")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--experiment", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        repo = released_repo(tmp_path)
        events: list[str] = []
        if args.experiment:
            run_experiment(repo)
            events = ["--events", str(tmp_path / "events.db")]
        bundle = tmp_path / "bundle.json"
        bundle.write_bytes(bundle_bytes(build_bundle(Workspace(repo.root), "main")))
        body = tmp_path / "body.json"
        body.write_text(json.dumps({"variables": VARIABLES, "key": "user-42"}))
        log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - the server's lifetime
        exe = Path(sys.executable).parent / "promptyard"
        server = subprocess.Popen(
            [
                str(exe),
                "serve",
                "--source",
                str(bundle),
                "--port",
                "0",
                "--poll",
                "0",
                "--log-level",
                "warning",
                *events,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            pin(server.pid, 0)
            deadline = time.monotonic() + 30
            url = None
            while url is None and time.monotonic() < deadline:
                found = re.search(
                    rb"listening on http://([0-9.]+):(\d+)", (tmp_path / "serve.log").read_bytes()
                )
                url = found and (found.group(1).decode(), int(found.group(2)))
                time.sleep(0.05)
            assert url, (tmp_path / "serve.log").read_text()
            host, port = url
            check = httpx.post(
                f"http://{host}:{port}/v1/prompts/support-reply/render", content=body.read_bytes()
            )
            assert check.status_code == 200, check.text
            loadgen = subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "loadgen.py"),
                    "/v1/prompts/support-reply/render",
                    host,
                    str(port),
                    str(body),
                    "--connections",
                    str(args.connections),
                    "--seconds",
                    str(args.seconds),
                ],
                stdout=subprocess.PIPE,
            )
            pin(loadgen.pid, 1)
            out, _ = loadgen.communicate(timeout=args.seconds + 120)
            figures = json.loads(out)
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    print(
        f"POST /render{' (experiment + exposures)' if args.experiment else ''}, 1 uvicorn worker, {figures['connections']} connections, "
        f"{figures['seconds']:.0f} s: {figures['rps']:,.0f} req/s, p50 {figures['p50_ms']:.2f} ms, "
        f"p90 {figures['p90_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, "
        f"max {figures['max_ms']:.1f} ms, errors {figures['errors']}"
    )


if __name__ == "__main__":
    main()
