"""A real LiteLLM proxy process (`litellm[proxy]`) on 127.0.0.1 for tests.

LiteLLM pins packages that would move the dev lock, so it lives in a venv of its own, made
from requirements/litellm.txt (`.ci/run` builds it). Its `litellm` script is
$PROMPTYARD_LITELLM, else `.venv-litellm/bin/litellm` in this checkout. Tests that need it
skip when it is missing, unless PROMPTYARD_REQUIRE_LITELLM is set (as in `.ci/run`), where a
missing proxy fails them.

The proxy starts offline: the bundled model cost map instead of the remote one, no telemetry,
a master key so it agrees to start, and nothing but loopback addresses in its config.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.prometheus import free_port

ROOT = Path(__file__).parents[2]
START_TIMEOUT_S = 300.0  # importing the proxy costs ~10 s of CPU; a shared 2-core box is slower


def litellm_binary() -> str:
    """The `litellm` script of the LiteLLM venv; skip (or fail under CI) when it is missing."""
    configured = os.environ.get("PROMPTYARD_LITELLM")
    path = Path(configured) if configured else ROOT / ".venv-litellm" / "bin" / "litellm"
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    hint = (
        f"no LiteLLM proxy at {path} (python3 -m venv .venv-litellm && .venv-litellm/bin/pip "
        "install --require-hashes -r requirements/litellm.txt, or set PROMPTYARD_LITELLM)"
    )
    if os.environ.get("PROMPTYARD_REQUIRE_LITELLM"):
        pytest.fail(hint)
    pytest.skip(hint)


class LiteLLMProxy:
    """`litellm --config` with `model_list` and `prompts`, on a free loopback port."""

    def __init__(
        self, workdir: Path, model_list: list[dict[str, Any]], prompts: list[dict[str, Any]]
    ) -> None:
        self.binary = litellm_binary()
        self.workdir = workdir
        self.master_key = "sk-" + secrets.token_hex(32)
        self.port = free_port()
        self.config = {
            "model_list": model_list,
            "prompts": prompts,
            "general_settings": {"master_key": self.master_key},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return (self.workdir / "litellm.log").read_text(errors="replace")

    def start(self) -> LiteLLMProxy:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "litellm.yaml"
        config.write_text(yaml.safe_dump(self.config, sort_keys=False))
        env = {
            **os.environ,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the remote cost map
            "LITELLM_TELEMETRY": "False",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        command = [self.binary, "--config", str(config), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--telemetry", "False"]
        started = time.monotonic()
        with (self.workdir / "litellm.log").open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        while time.monotonic() - started < START_TIMEOUT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"the LiteLLM proxy exited at start:\n{self.log[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health/liveliness", timeout=1).status_code == 200:
                    self.startup_s = time.monotonic() - started
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the LiteLLM proxy did not start in {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LiteLLMProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
