"""Real registry servers on 127.0.0.1: uvicorn in a thread, or `promptyard serve` as a process.

Both bind port 0 (a free port chosen by the kernel) and wait, with a deadline, until the
server answers; `stop()` shuts them down and waits for them to finish.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

STARTUP_DEADLINE_S = 30.0


def wait_until(predicate: Any, deadline_s: float = 20.0, interval_s: float = 0.02) -> Any:
    """Poll `predicate()` until it returns something truthy; AssertionError at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {deadline_s} s")
        time.sleep(interval_s)


class ThreadedServer:
    """A Starlette app on a real uvicorn server in a background thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        # IPPROTO_TCP so asyncio sets TCP_NODELAY (else ~40 ms per response, delayed ACKs).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        wait_until(lambda: self.server.started, STARTUP_DEADLINE_S)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def promptyard_executable() -> str:
    """The `promptyard` console script of the running interpreter's environment."""
    candidate = Path(sys.executable).parent / "promptyard"
    found = str(candidate) if candidate.exists() else shutil.which("promptyard")
    assert found, "the promptyard console script is not installed"
    return found


class ServeProcess:
    """`promptyard serve ... --port 0` in a subprocess; its URL is read from its first line.

    `command="gateway"` runs `promptyard gateway` the same way (it prints the same line).
    """

    def __init__(
        self, *args: str, cwd: Path, log: Path, port: int = 0, command: str = "serve"
    ) -> None:
        self.log = log
        self.cmd = [promptyard_executable(), command, "--port", str(port), *args]
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, *, expect_ready: bool = True) -> ServeProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.handle = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd, cwd=self.cwd, stdout=self.handle, stderr=subprocess.STDOUT, env=env
        )
        if expect_ready:
            match = wait_until(self._listening, STARTUP_DEADLINE_S, 0.05)
            self.url = match
            wait_until(self._ready, STARTUP_DEADLINE_S, 0.05)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _listening(self) -> str | None:
        assert self.proc is not None
        found = re.search(r"listening on (http://[0-9.]+:\d+)", self.output())
        if found:
            return found.group(1)
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited {self.proc.returncode}:\n{self.output()}")
        return None

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.handle.close()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
