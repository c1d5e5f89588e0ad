"""A real Prometheus server (Debian's `prometheus` package) on 127.0.0.1 for tests.

`PrometheusServer(targets, scrape_s=1)` writes a scrape config for the given `host:port`
targets into a temporary folder, starts `/usr/bin/prometheus` there with its own storage, and
waits until it is ready. Tests that need it skip when the binary is missing, unless
PROMPTYARD_REQUIRE_PROMETHEUS is set (as in `.ci/run`), where a missing binary fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from support.servers import wait_until


def prometheus_binary(name: str = "prometheus") -> str:
    """The path of `prometheus` or `promtool`; skip (or fail under CI) when it is missing."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("PROMPTYARD_REQUIRE_PROMETHEUS"):
        pytest.fail(f"{name} is not installed (apt-get install prometheus)")
    pytest.skip(f"{name} is not installed (apt-get install prometheus)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_config(targets: list[str], scrape_s: float, labels: dict[str, str] | None = None) -> str:
    lines = [
        "global:",
        f"  scrape_interval: {scrape_s:g}s",
        f"  scrape_timeout: {scrape_s:g}s",
        "scrape_configs:",
        "  - job_name: promptyard-gateway",
        "    static_configs:",
        f"      - targets: [{', '.join(repr(t) for t in targets)}]",
    ]
    if labels:
        lines.append("        labels:")
        lines += [f"          {k}: {v!r}" for k, v in labels.items()]
    return "\n".join(lines) + "\n"


class PrometheusServer:
    """`prometheus` scraping `targets` every `scrape_s` seconds, on a free loopback port."""

    def __init__(
        self, targets: list[str], *, scrape_s: float = 1.0, labels: dict[str, str] | None = None
    ) -> None:
        self.binary = prometheus_binary()
        self.folder = Path(tempfile.mkdtemp(prefix="promptyard-prometheus-"))
        self.config = self.folder / "prometheus.yml"
        self.config.write_text(scrape_config(targets, scrape_s, labels))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.folder / "prometheus.log"

    def start(self) -> PrometheusServer:
        self.handle = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )
        wait_until(self._ready, 30, 0.1)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log.read_text(errors='replace')}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def scraped(self, query: str) -> bool:
        """Whether an instant query has any result yet."""
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5).json()
        return bool(body["data"]["result"])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.handle.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
