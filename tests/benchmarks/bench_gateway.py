"""Gateway overhead over calling the upstream directly, 32 concurrent streams on loopback
(target: p50 added latency <= 2 ms, throughput >= 80% of direct).

Three processes: a small Starlette/uvicorn upstream that streams like vLLM (a chat
completion of `--tokens` tokens, one SSE event every `--token-ms`), the real
`promptyard gateway` (one uvicorn worker, prompts from a bundle, upstream calls pooled), and
a load generator (asyncio, raw HTTP/1.1 keep-alive, `--connections` streams in flight, each
read to `[DONE]`). With 2+ cores the gateway has core 1 to itself; the upstream and the load
generator share core 0 in every run, so the runs differ only by the gateway in the path.

Runs, interleaved for `--rounds` rounds (each figure is the median over rounds, since the
machine may be shared): direct (the rendered prompt's messages straight to the upstream),
through the gateway with a managed prompt (`prompt:support-reply`: parse, render with the
canary on `user`, usage asked upstream and stripped, metrics), and through the gateway with
a plain model (pass-through).

Added latency: the upstream stamps each event with when it received the request and when it
sent the event (CLOCK_MONOTONIC, shared by every process); the load generator times the
request leg (sent -> received upstream) and the tail leg (the stop event sent -> received
here). Their sum is a stream's latency without the upstream's own generation time (whose
timer jitter is larger than what is measured); added = p50 through the gateway - p50 direct.
Throughput: completed streams per second against direct. Also printed: total latency, time
to first token, and the CPU the gateway (or the upstream, for direct) spent per stream.

Run: .venv/bin/python tests/benchmarks/bench_gateway.py [--seconds 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


# --- the upstream (a process of its own) -----------------------------------------------------------


def run_upstream(tokens: int, token_ms: float) -> None:
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    clock = time.monotonic  # CLOCK_MONOTONIC: the same clock in every process

    def event(payload: Any) -> bytes:
        return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"

    async def chat(request: Request) -> Any:
        received = clock()
        body = await request.json()
        model = body.get("model", "m")
        usage = {"prompt_tokens": 50, "completion_tokens": tokens, "total_tokens": 50 + tokens}
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            # `received` and `sent` let the load generator time the two legs of the trip
            # (client -> upstream, upstream -> client) without the upstream's own pacing.
            return event(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "received": received,
                    "sent": clock(),
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )

        async def stream() -> Any:
            for index in range(tokens):
                await asyncio.sleep(token_ms / 1000)
                word = f"tok{index} "
                yield chunk(
                    {"role": "assistant", "content": word} if index == 0 else {"content": word}
                )
            yield chunk({}, "stop")
            if with_usage:
                payload = {"id": "c", "object": "chat.completion.chunk", "model": model}
                yield event({**payload, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"READY http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


# --- the load generator (a process of its own) -------------------------------------------------------

_RECEIVED = re.compile(rb'"received":([0-9.e+-]+)')
_SENT = re.compile(rb'"sent":([0-9.e+-]+)')


async def one_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> dict[str, float]:
    """Send one request and read its chunked SSE answer to the end.

    Returns the total time, the time to the first token, and the two legs the gateway sits
    on: `request` (sent here -> received by the upstream) and `tail` (the stop event sent by
    the upstream -> received here). Their sum is the stream's latency without the upstream's
    own generation time.
    """
    clock = time.monotonic
    start = clock()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    out = {"status": float(int(head[9:12])), "ttft": 0.0, "request": 0.0, "tail": 0.0}
    if b"transfer-encoding: chunked" in head.lower():
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            data = await reader.readexactly(size + 2)
            now = clock()
            if not out["ttft"] and b'"content":"tok' in data:
                out["ttft"] = now - start
                found = _RECEIVED.search(data)
                out["request"] = float(found.group(1)) - start if found else 0.0
            stop = data.find(b'"finish_reason":"stop"')
            if stop >= 0:
                found = _SENT.search(data, data.rfind(b"data:", 0, stop))
                out["tail"] = now - float(found.group(1)) if found else 0.0
    else:
        match = re.search(rb"content-length:\s*(\d+)", head.lower())
        await reader.readexactly(int(match.group(1)) if match else 0)
    out["total"] = clock() - start
    return out


async def load(
    host: str, port: int, body: bytes, connections: int, seconds: float, warmup: float
) -> dict[str, Any]:
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    begin = time.monotonic()
    warm_end, deadline = begin + warmup, begin + warmup + seconds
    done: list[dict[str, float]] = []
    errors: list[float] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.monotonic() < deadline:
                started = time.monotonic()
                result = await one_stream(reader, writer, request)
                if result["status"] != 200:
                    errors.append(result["status"])
                elif started >= warm_end and started + result["total"] <= deadline:
                    done.append(result)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))

    def p(key: str, q: float) -> float:
        values = sorted(r[key] for r in done)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")

    for r in done:
        r["legs"] = r["request"] + r["tail"]
    return {
        "requests": len(done),
        "errors": len(errors),
        "rps": len(done) / seconds,
        "p50_ms": p("total", 0.5),
        "p99_ms": p("total", 0.99),
        "ttft_p50_ms": p("ttft", 0.5),
        "legs_p50_ms": p("legs", 0.5),
        "legs_p90_ms": p("legs", 0.9),
        "request_p50_ms": p("request", 0.5),
        "tail_p50_ms": p("tail", 0.5),
    }


def run_loadgen(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    body = Path(args.body).read_bytes()
    result = asyncio.run(
        load(args.host, args.port, body, args.connections, args.seconds, args.warmup)
    )
    print(json.dumps(result))


# --- orchestration --------------------------------------------------------------------------------


PIN = True  # --no-pin: let the scheduler place the processes (on a busy shared machine)


def pin(pid: int, cpus: set[int]) -> None:
    if PIN and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(pid, cpus)


def start(cmd: list[str], log: Path, pattern: bytes) -> tuple[subprocess.Popen[bytes], str]:
    handle = open(log, "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_bytes())
        if found:
            return process, found.group(1).decode()
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{cmd[:3]} did not start:\n{log.read_text(errors='replace')}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    url: str, body: Path, args: argparse.Namespace, cpus: set[int], watch: int
) -> dict[str, Any]:
    """One run of the load generator; also the CPU the process `watch` spent per stream."""
    host, port = url.removeprefix("http://").split(":")
    cpu_before = cpu_seconds(watch)
    loadgen = subprocess.Popen(
        [
            sys.executable,
            str(HERE),
            "--role",
            "loadgen",
            "--host",
            host,
            "--port",
            port,
            "--body",
            str(body),
            "--connections",
            str(args.connections),
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(args.warmup),
        ],
        stdout=subprocess.PIPE,
    )
    pin(loadgen.pid, cpus)
    out, _ = loadgen.communicate(timeout=args.seconds + args.warmup + 120)
    result = json.loads(out)
    streams = result["rps"] * (args.seconds + args.warmup)  # roughly, warm-up included
    result["cpu_ms_per_stream"] = (cpu_seconds(watch) - cpu_before) * 1000 / max(streams, 1)
    return result


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    import statistics

    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE.parent))
    from _fixture import VARIABLES, released_repo

    from promptyard.registry.client import Registry
    from promptyard.release.bundle import build_bundle, bundle_bytes
    from promptyard.repo.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        repo = released_repo(tmp_path)
        bundle = tmp_path / "bundle.json"
        bundle.write_bytes(bundle_bytes(build_bundle(Workspace(repo.root), "main")))
        # The direct call sends what the gateway would: the rendered prompt, its parameters.
        with Registry.from_bundle(bundle) as registry:
            rendered = registry.render("support-reply", VARIABLES, key="user-42")
        direct = {
            "model": "gpt-4o-mini",
            "messages": rendered.messages,
            **rendered.parameters,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        managed = {
            "model": "prompt:support-reply",
            "messages": [],
            "variables": VARIABLES,
            "user": "user-42",
            "stream": True,
        }
        plain = {**direct, "model": "plain-model"}
        bodies = {}
        for name, payload in (("direct", direct), ("managed", managed), ("plain", plain)):
            bodies[name] = tmp_path / f"{name}.json"
            bodies[name].write_text(json.dumps(payload))

        load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
        upstream, upstream_url = start(
            [
                sys.executable,
                str(HERE),
                "--role",
                "upstream",
                "--tokens",
                str(args.tokens),
                "--token-ms",
                str(args.token_ms),
            ],
            tmp_path / "upstream.log",
            rb"READY (http://[0-9.:]+)",
        )
        exe = Path(sys.executable).parent / "promptyard"
        gateway, gateway_url = start(
            [
                str(exe),
                "gateway",
                "--source",
                str(bundle),
                "--poll",
                "0",
                "--upstream",
                f"gpt-4o-mini={upstream_url}/v1",
                "--default-upstream",
                f"{upstream_url}/v1",
                "--port",
                "0",
                "--log-level",
                "warning",
            ],
            tmp_path / "gateway.log",
            rb"listening on (http://[0-9.:]+)",
        )
        try:
            pin(gateway.pid, {1})
            pin(upstream.pid, {0})
            import httpx

            check = httpx.post(
                f"{gateway_url}/v1/chat/completions",
                content=bodies["managed"].read_bytes(),
                timeout=30,
            )
            assert check.status_code == 200 and b"[DONE]" in check.content, check.text
            # Alternate the runs, several rounds, and keep each figure's median: the machine
            # may be shared, and a single run is at the mercy of whatever else runs.
            runs: dict[str, list[dict[str, Any]]] = {}
            plan = [
                ("direct", upstream_url, "direct", upstream.pid),
                ("gateway (prompt:support-reply)", gateway_url, "managed", gateway.pid),
                ("gateway (pass-through)", gateway_url, "plain", gateway.pid),
            ]
            for _ in range(args.rounds):
                for name, url, body_name, watch in plan:
                    runs.setdefault(name, []).append(
                        measure(url, bodies[body_name], args, {0}, watch)
                    )
            results = {name: median_of(found) for name, found in runs.items()}
        finally:
            for process in (gateway, upstream):
                process.terminate()
                process.wait(timeout=30)
    base = results["direct"]
    print(
        f"{args.connections} concurrent streams of {args.tokens} tokens, one every "
        f"{args.token_ms:g} ms; {args.seconds:g} s per run after {args.warmup:g} s of warm-up; "
        f"median of {args.rounds} interleaved rounds; {'pinned' if PIN else 'not pinned'}; "
        f"load average at start {load_average}"
    )
    for name, r in results.items():
        print(
            f"  {name:<31} {r['rps']:6.1f} streams/s  total p50 {r['p50_ms']:6.2f} ms"
            f"  p99 {r['p99_ms']:6.2f} ms  ttft p50 {r['ttft_p50_ms']:5.2f} ms"
            f"  legs p50 {r['legs_p50_ms']:5.2f} ms (request {r['request_p50_ms']:.2f}"
            f" + tail {r['tail_p50_ms']:.2f})  errors {r['errors']:g}"
            f"  cpu {r['cpu_ms_per_stream']:.2f} ms/stream"
        )
    for name, r in results.items():
        if name == "direct":
            continue
        print(
            f"  {name}: added latency p50 {r['legs_p50_ms'] - base['legs_p50_ms']:+.2f} ms"
            f" (target <= 2 ms); ttft {r['ttft_p50_ms'] - base['ttft_p50_ms']:+.2f} ms;"
            f" throughput {100 * r['rps'] / base['rps']:.1f}% of direct (target >= 80%)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["main", "upstream", "loadgen"], default="main")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--token-ms", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--body")
    arguments = parser.parse_args()
    PIN = not arguments.no_pin
    if arguments.role == "upstream":
        run_upstream(arguments.tokens, arguments.token_ms)
    elif arguments.role == "loadgen":
        run_loadgen(arguments)
    else:
        main(arguments)
