"""A small HTTP/1.1 keep-alive load generator (asyncio, one process, N connections).

Each connection sends one request, reads the whole response, and sends the next one, so
`connections` is the number of requests in flight. Prints one JSON line with the figures.

Run: python loadgen.py URL_PATH HOST PORT BODY_FILE --connections 32 --seconds 10 --warmup 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


async def connection(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    warmup_end: float,
    out: list[float],
    errors: list[str],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    clock = time.perf_counter
    try:
        while True:
            start = clock()
            if start >= deadline:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            end = clock()
            if status != 200:
                errors.append(f"HTTP {status}")
            elif start >= warmup_end:
                out.append(end - start)
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> dict[str, float]:
    with open(args.body, "rb") as handle:
        body = handle.read()
    request = (
        f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    now = time.perf_counter()
    warmup_end = now + args.warmup
    deadline = warmup_end + args.seconds
    latencies: list[float] = []
    errors: list[str] = []
    await asyncio.gather(
        *(
            connection(args.host, args.port, request, deadline, warmup_end, latencies, errors)
            for _ in range(args.connections)
        )
    )
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "connections": args.connections,
        "seconds": args.seconds,
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / args.seconds,
        "p50_ms": pick(0.50),
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "max_ms": latencies[-1] * 1000,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("body")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
