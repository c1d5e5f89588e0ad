"""The rollout controller against a real Prometheus and a real bare git remote.

A real `prometheus` scrapes a real /metrics endpoint every second; the endpoint serves the
gateway's own metric families (`GatewayMetrics`), fed by a traffic thread that plays what the
gateway would observe for the stable and the canary version. The controller runs in its own
clone and pushes to a bare remote, as in production.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from promptyard.repo.workspace import Workspace
from promptyard.rollout.controller import Controller, ControllerSettings
from promptyard.rollout.prometheus import PrometheusClient
from promptyard.serving.gateway import GatewayMetrics
from support.prometheus import PrometheusServer, free_port
from support.repo import PromptRepo, run_git
from support.rollout_stack import ENV, canary_repo
from support.servers import ThreadedServer, wait_until


class Traffic:
    """What the gateway would count: requests of each side with an error share and latency."""

    def __init__(self, metrics: GatewayMetrics, prompt: str, seed: int = 7) -> None:
        self.metrics = metrics
        self.prompt = prompt
        self.random = random.Random(seed)
        self.canary_error = 0.0
        self.canary_slow = 1.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _observe(self, version: str, variant: str, error: float, slow: float) -> None:
        failed = self.random.random() < error
        labels = (self.prompt, version, variant)
        self.metrics.requests.labels(*labels, "502" if failed else "200").inc()
        self.metrics.latency.labels(*labels).observe(self.random.uniform(0.02, 0.2) * slow)

    def _run(self) -> None:
        while not self.stop.is_set():
            for _ in range(3):
                self._observe("1.0.0", "stable", 0.01, 1.0)
                self._observe("1.1.0", "canary", self.canary_error, self.canary_slow)
            time.sleep(0.05)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def metrics() -> GatewayMetrics:
    return GatewayMetrics()


@pytest.fixture(scope="module")
def prometheus(metrics: GatewayMetrics) -> Iterator[PrometheusServer]:
    async def endpoint(request: object) -> Response:
        return Response(generate_latest(metrics.registry), media_type="text/plain")

    app = Starlette(routes=[Route("/metrics", endpoint)])
    with ThreadedServer(app) as exporter, PrometheusServer([f"127.0.0.1:{exporter.port}"]) as p:
        yield p


def strategy_env(prompt: str, pause: str = "2s", weight: int = 10) -> str:
    return f"""\
# yaml-language-server: $schema=../../tools/promptyard/schemas/environment.json
environment: production   # where it serves
prompts:
  {prompt}:
    version: 1.0.0   # stable
    canary:
      version: 1.1.0
      weight: {weight}
      steps:
        - {{weight: 10, pause: {pause}}}
        - {{weight: 50, pause: {pause}}}
        - {{weight: 100}}
      analysis:
        metrics:
          error_rate: {{max_ratio: 1.5}}
          latency_p95: {{max_ratio: 1.5}}
        min_requests: 30
        interval: 1s
"""


@pytest.fixture
def remote_repo(tmp_path: Path) -> PromptRepo:
    """A released repository pushed to a bare remote, with a fresh prompt name per test."""
    prompt = f"bot-{tmp_path.name[-12:].lower().strip('_-').replace('_', '-')}"
    repo = canary_repo(tmp_path, prompt, strategy_env(prompt))
    repo.prompt = prompt  # type: ignore[attr-defined]
    return repo


def hold_the_step(repo: PromptRepo) -> None:
    """Make the current step's pause long: only an abort can move the canary now, however
    slowly a loaded machine gathers the evidence."""
    repo.write(ENV, strategy_env(repo.prompt, pause="1h"))  # type: ignore[attr-defined]
    repo.commit("a long pause: only an abort may move it")
    repo.push()


def controller_for(
    repo: PromptRepo, clone: Path, prometheus_url: str, *, fresh_clone: bool = True
) -> Controller:
    if fresh_clone and not clone.exists():
        PromptRepo.clone(repo.remote, clone)  # type: ignore[arg-type]
    return Controller(
        ControllerSettings(workspace=Workspace(clone), prometheus=PrometheusClient(prometheus_url))
    )


def remote_log(repo: PromptRepo) -> list[str]:
    return run_git(repo.remote, "log", "--format=%s", "main").splitlines()  # type: ignore[arg-type]


def remote_env(repo: PromptRepo) -> dict:
    return yaml.safe_load(run_git(repo.remote, "show", f"main:{ENV}"))  # type: ignore[arg-type]


def test_healthy_canary_walks_to_stable_one_commit_per_step_across_restarts(
    remote_repo: PromptRepo, prometheus: PrometheusServer, metrics: GatewayMetrics, tmp_path: Path
) -> None:
    prompt = remote_repo.prompt  # type: ignore[attr-defined]
    before = remote_log(remote_repo)
    with Traffic(metrics, prompt):

        def finished() -> bool:
            # A new controller every tick: it keeps nothing, so this is a restart each time.
            controller_for(remote_repo, tmp_path / "clone", prometheus.url).tick()
            return "canary" not in remote_env(remote_repo)["prompts"][prompt]

        wait_until(finished, 60, 0.5)
    new = remote_log(remote_repo)[: -len(before)]
    assert new == [
        f"rollout: promote {prompt} 1.1.0 to stable in production",
        f"rollout: advance {prompt} 1.1.0 canary to 50% in production",
    ]
    text = run_git(remote_repo.remote, "show", f"main:{ENV}")  # type: ignore[arg-type]
    assert text.endswith(f"  {prompt}:\n    version: 1.1.0   # stable")  # comments survive
    body = run_git(remote_repo.remote, "log", "-1", "--format=%B", "main~1")  # type: ignore[arg-type]
    assert "step 1 of 3 (10%) passed" in body and "error_rate" in body
    assert "Promptyard-Rollout: advance" in body


def test_broken_canary_is_aborted_with_the_figures(
    remote_repo: PromptRepo, prometheus: PrometheusServer, metrics: GatewayMetrics, tmp_path: Path
) -> None:
    prompt = remote_repo.prompt  # type: ignore[attr-defined]
    hold_the_step(remote_repo)
    with Traffic(metrics, prompt) as traffic:
        traffic.canary_error = 0.5
        controller = controller_for(remote_repo, tmp_path / "clone", prometheus.url)
        wait_until(lambda: controller.tick().moved, 40, 0.5)
    assert remote_log(remote_repo)[0] == f"rollout: abort {prompt} 1.1.0 canary in production"
    pin = remote_env(remote_repo)["prompts"][prompt]
    assert pin == {"version": "1.0.0"}  # stable serves every key
    body = run_git(remote_repo.remote, "log", "-1", "--format=%B", "main")  # type: ignore[arg-type]
    assert "error_rate" in body and "(x1.5): p=" in body and " < 0.025" in body


def test_slow_canary_is_aborted_on_p95_latency(
    remote_repo: PromptRepo, prometheus: PrometheusServer, metrics: GatewayMetrics, tmp_path: Path
) -> None:
    prompt = remote_repo.prompt  # type: ignore[attr-defined]
    hold_the_step(remote_repo)
    with Traffic(metrics, prompt, seed=11) as traffic:
        traffic.canary_slow = 4.0
        controller = controller_for(remote_repo, tmp_path / "clone", prometheus.url)
        wait_until(lambda: controller.tick().moved, 40, 0.5)
    body = run_git(remote_repo.remote, "log", "-1", "--format=%B", "main")  # type: ignore[arg-type]
    assert body.startswith(f"rollout: abort {prompt} 1.1.0 canary in production")
    assert "latency_p95" in body.splitlines()[2]


def test_no_or_nonsense_measurements_hold_and_say_why(
    remote_repo: PromptRepo, tmp_path: Path
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    controller = controller_for(remote_repo, tmp_path / "clone", unreachable)
    result = controller.tick()
    assert result.moved == []
    [rollout] = result.rollouts
    assert rollout.decision.action == "hold"
    assert "no measurements: Prometheus at" in rollout.decision.reason
    assert "unreachable" in rollout.decision.reason

    async def negative(request: object) -> JSONResponse:
        series = {"metric": {"status": "200"}, "values": [[time.time(), "-3"]]}
        return JSONResponse(
            {"status": "success", "data": {"resultType": "matrix", "result": [series]}}
        )

    async def garbage(request: object) -> Response:
        return Response("<html>proxy error</html>", status_code=502)

    for handler, said in ((negative, "negative or not finite"), (garbage, "not JSON")):
        app = Starlette(routes=[Route("/api/v1/query_range", handler)])
        with ThreadedServer(app) as server:
            controller = controller_for(remote_repo, tmp_path / "clone", server.url)
            [rollout] = controller.tick().rollouts
        assert rollout.decision.action == "hold"
        assert said in rollout.decision.reason
    assert remote_log(remote_repo)[0] == "canary with a strategy"  # nothing was pushed


def test_two_controllers_never_both_move_a_canary(
    remote_repo: PromptRepo, prometheus: PrometheusServer, metrics: GatewayMetrics, tmp_path: Path
) -> None:
    prompt = remote_repo.prompt  # type: ignore[attr-defined]
    first = controller_for(remote_repo, tmp_path / "one", prometheus.url)
    second = controller_for(remote_repo, tmp_path / "two", prometheus.url)
    # Another identity, so the two would-be commits differ (identical ones would be one step).
    second.settings.author = ("replica two", "two@promptyard.invalid")
    with Traffic(metrics, prompt):

        def both_would_advance() -> bool:
            commit_a, commit_b = first.fetch(), second.fetch()
            a, b = first.evaluate(commit_a), second.evaluate(commit_b)
            ready = a[0].decision.action == b[0].decision.action == "advance"
            if ready:
                both_would_advance.found = (commit_a, a[0], commit_b, b[0])  # type: ignore[attr-defined]
            return ready

        wait_until(both_would_advance, 40, 0.5)
        commit_a, a, commit_b, b = both_would_advance.found  # type: ignore[attr-defined]
        assert commit_a.hexsha == commit_b.hexsha
        assert first.apply(commit_a, a) is not None
        assert second.apply(commit_b, b) is None  # the lease saw the branch move
        result = second.tick()  # re-reads: the new step's pause has just begun
    assert result.moved == []
    assert result.rollouts[0].canary.weight == 50
    assert result.rollouts[0].decision.action == "hold"
    advances = [s for s in remote_log(remote_repo) if s.startswith("rollout:")]
    assert advances == [f"rollout: advance {prompt} 1.1.0 canary to 50% in production"]


def test_a_hand_edit_mid_rollout_is_followed_and_status_reports_it(
    remote_repo: PromptRepo, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    prompt = remote_repo.prompt  # type: ignore[attr-defined]
    remote_repo.write(ENV, strategy_env(prompt, pause="1h", weight=50))
    remote_repo.commit("by hand: straight to 50%")
    remote_repo.push()
    clone = tmp_path / "clone"
    controller_for(remote_repo, clone, prometheus.url)
    result = PromptRepo(clone).run(
        "rollout", "status", "--prometheus", prometheus.url, "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    [status] = json.loads(result.stdout)["rollouts"]
    assert status["prompt"] == prompt and status["weight"] == 50 and status["step"] == 2
    assert status["decision"]["action"] == "hold"
    assert "step 2 of 3 (50%)" in status["decision"]["reason"]
    assert status["time_in_step_s"] < 60  # the step started with the hand edit
    assert [h["subject"] for h in status["history"][:2]] == [
        "by hand: straight to 50%",
        "canary with a strategy",
    ]
    assert {m["metric"] for m in status["decision"]["metrics"]} == {"error_rate", "latency_p95"}
    text = PromptRepo(clone).run("rollout", "status", "--prometheus", prometheus.url)
    assert text.exit_code == 0, text.stderr
    assert (
        f"production {prompt}: canary 1.1.0 at 50% against stable 1.0.0; step 2 of 3" in text.stdout
    )
    assert "decision: hold:" in text.stdout and "by hand: straight to 50%" in text.stdout


def test_status_without_prometheus_url_is_a_usage_error(remote_repo: PromptRepo) -> None:
    result = remote_repo.run("rollout", "status")
    assert result.exit_code == 2
    assert "--prometheus" in result.stderr
    unknown = remote_repo.run("rollout", "status", "--prometheus", "http://x", "--remote", "nope")
    assert unknown.exit_code == 2 and "no git remote named 'nope'" in unknown.stderr


def test_a_controller_refuses_an_unknown_remote_from_python_too(remote_repo: PromptRepo) -> None:
    """A typo in the remote is a configuration error (exit 2) when the controller is made,
    not an "unreachable remote" (exit 3) at its first fetch."""
    from promptyard.errors import ConfigError

    settings = ControllerSettings(
        workspace=Workspace(remote_repo.root),
        prometheus=PrometheusClient("http://127.0.0.1:9"),
        remote="nope",
    )
    with pytest.raises(ConfigError, match="no git remote named 'nope'") as raised:
        Controller(settings)
    assert raised.value.hint is not None and "origin" in raised.value.hint
