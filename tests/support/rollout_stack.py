"""The whole rollout loop as real processes on 127.0.0.1, for the end-to-end test and the
benchmark: a bare git remote, `promptyard serve --source <remote> --poll 1`, the local
OpenAI-compatible server as upstream, `promptyard gateway --registry ...`, a real Prometheus
scraping the gateway every second, `promptyard rollout run --poll 1` in its own clone, and
traffic from the official `openai` client with random users (sticky canary).

The canary 1.1.0 of the prompt renders "Good day" in its system message (the stable 1.0.0
"Hello"), so `upstream.add_fault("500", match="Good day")` breaks the canary only.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import yaml

from support.openai_server import OpenAIServerProcess
from support.prometheus import PrometheusServer
from support.repo import PromptRepo, make_repo, run_git
from support.servers import ServeProcess, promptyard_executable

ENV = "serving/environments/production.yaml"
PROMPT = "bot"
VARS = {"company": "Acme", "ticket": "Where is my order?"}


def strategy_env(weights: list[int], pause: str, min_requests: int) -> str:
    steps = (
        "".join(f"        - {{weight: {w}, pause: {pause}}}\n" for w in weights if w < 100)
        + "        - {weight: 100}\n"
    )
    return f"""\
environment: production
prompts:
  {PROMPT}:
    version: 1.0.0
    canary:
      version: 1.1.0
      weight: {weights[0]}
      steps:
{steps}      analysis:
        metrics:
          error_rate: {{max_ratio: 1.5}}
          latency_p95: {{max_ratio: 3}}
        min_requests: {min_requests}
        interval: 1s
  greeter: {{version: 1.0.0}}
  support-reply: {{version: 1.0.0}}
"""


def canary_repo(tmp: Path, prompt: str, environment: str) -> PromptRepo:
    """A repository with `prompt` 1.0.0 and 1.1.0 ("Good day") released, production's file
    set to `environment`, pushed to a bare remote (`repo.remote`)."""
    repo = make_repo(tmp, with_remote=True)
    repo.set_prompt(prompt, "1.0.0")
    repo.commit(f"add {prompt}")
    repo.release()
    repo.set_prompt(prompt, "1.1.0", greeting="Good day")
    repo.commit(f"{prompt} 1.1.0")
    repo.release()
    repo.write(ENV, environment)
    repo.commit("canary with a strategy")
    repo.push()
    return repo


class Traffic:
    """`workers` threads calling `prompt:bot` through the gateway, each request a new user;
    counts answers by (version, status)."""

    def __init__(self, gateway_url: str, workers: int = 3) -> None:
        self.url = gateway_url
        self.workers = workers
        self.stop_event = threading.Event()
        self.counts: Counter[tuple[str, int]] = Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self) -> None:
        with openai.OpenAI(base_url=f"{self.url}/v1", api_key="sk-x", max_retries=0) as client:
            while not self.stop_event.is_set():
                try:
                    raw = client.chat.completions.with_raw_response.create(
                        model=f"prompt:{PROMPT}",
                        messages=[],
                        user=uuid.uuid4().hex,
                        extra_body={"variables": VARS},
                    )
                    key = (
                        raw.headers.get("x-promptyard-version", "?"),
                        raw.http_response.status_code,
                    )
                except openai.APIStatusError as exc:
                    key = (exc.response.headers.get("x-promptyard-version", "?"), exc.status_code)
                except openai.APIConnectionError:
                    key = ("?", 0)
                with self.lock:
                    self.counts[key] += 1

    def start(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(10)


class RolloutStack:
    """Every process of the loop; `start()` in order, `stop()` in reverse."""

    def __init__(
        self,
        tmp: Path,
        *,
        weights: list[int],
        pause: str = "2s",
        min_requests: int = 20,
        workers: int = 3,
    ) -> None:
        self.tmp = tmp
        self.repo = canary_repo(tmp, PROMPT, strategy_env(weights, pause, min_requests))
        assert self.repo.remote is not None
        self.remote: Path = self.repo.remote
        self.workers = workers
        self.processes: list[Any] = []
        self.controller: subprocess.Popen[bytes] | None = None

    def start(self) -> RolloutStack:
        tmp = self.tmp
        self.upstream = self._keep(OpenAIServerProcess(latency_ms=5).start())
        self.registry = self._keep(
            ServeProcess(
                "--source", str(self.remote), "--poll", "1", cwd=tmp, log=tmp / "serve.log"
            ).start()
        )
        config = tmp / "gateway.json"
        config.write_text(
            json.dumps(
                {"endpoints": {"vllm": {"url": self.upstream.base_url}}, "default_upstream": "vllm"}
            )
        )
        self.gateway = self._keep(
            ServeProcess(
                "--registry",
                self.registry.url,
                "--registry-ttl",
                "0.5",
                "--config",
                str(config),
                cwd=tmp,
                log=tmp / "gateway.log",
                command="gateway",
            ).start()
        )
        self.prometheus = self._keep(
            PrometheusServer([self.gateway.url.removeprefix("http://")]).start()
        )
        self.traffic = self._keep(Traffic(self.gateway.url, self.workers).start())
        clone = tmp / "controller"
        PromptRepo.clone(self.remote, clone)
        self.controller_log = open(tmp / "controller.log", "wb")  # noqa: SIM115 - closed in stop()
        self.controller = subprocess.Popen(
            [
                promptyard_executable(),
                "rollout",
                "run",
                "--prometheus",
                self.prometheus.url,
                "--poll",
                "1",
            ],
            cwd=clone,
            stdout=self.controller_log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def _keep(self, process: Any) -> Any:
        self.processes.append(process)
        return process

    def stop(self) -> None:
        if self.controller is not None and self.controller.poll() is None:
            self.controller.terminate()
            try:
                self.controller.wait(10)
            except subprocess.TimeoutExpired:
                self.controller.kill()
                self.controller.wait(10)
            self.controller_log.close()
        for process in reversed(self.processes):
            process.stop()

    def __enter__(self) -> RolloutStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what happened ----------------------------------------------------------------------

    def rollout_commits(self) -> list[str]:
        """Subjects of the controller's commits on the remote, oldest first."""
        log = run_git(self.remote, "log", "--reverse", "--format=%s", "main").splitlines()
        return [s for s in log if s.startswith("rollout:")]

    def pin(self) -> dict[str, Any]:
        env = yaml.safe_load(run_git(self.remote, "show", f"main:{ENV}"))
        return dict(env["prompts"][PROMPT])

    def served_versions(self, users: int = 40) -> Counter[str]:
        """Which versions the registry serves to `users` fresh users right now."""
        import httpx

        out: Counter[str] = Counter()
        for _ in range(users):
            answer = httpx.get(
                f"{self.registry.url}/v1/prompts/{PROMPT}",
                params={"label": "production", "key": uuid.uuid4().hex},
                timeout=5,
            )
            out[answer.json()["version"]] += 1
        return out

    def logs(self) -> str:
        parts = []
        for name in ("controller.log", "serve.log", "gateway.log"):
            path = self.tmp / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


def wait_for(predicate: Any, deadline_s: float, interval_s: float = 0.1) -> float | None:
    """Seconds until `predicate()` held, or None at the deadline."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval_s)
    return None
