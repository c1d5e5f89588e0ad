"""Reliability of `promptyard serve` (a real process, real git remotes, bounded loops).

- 20 reconciles (new tags, moved pins, canary weight changes) under continuous client load:
  zero failed requests, and every response matches the snapshot it names (old or new);
- a commit with invalid YAML (or a pin without a tag, or a moved tag) is refused: the old
  snapshot keeps serving, /v1/status says Degraded and why, the next good commit recovers;
- git unreachable at start-up: --fallback-bundle serves, otherwise exit 3 at once;
- the same key gets the same variant on every replica and after a restart.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from promptyard.release.bundle import build_bundle, bundle_bytes
from promptyard.release.environments import promote
from promptyard.repo.workspace import Workspace
from support.repo import PromptRepo, make_repo, run_git
from support.servers import ServeProcess, closed_port, wait_until

VARS = {"company": "Acme", "ticket": "Where is my order?"}
KEYS = [f"customer-{i}" for i in range(64)]


def canary_for(env: str, name: str, key: str, weight: float) -> bool:
    digest = hashlib.sha256(f"{env}:{name}:{key}".encode()).hexdigest()
    return int(digest[:8], 16) % 10000 < weight * 100


@dataclass
class Model:
    """What the test expects the registry to serve: greetings by version, and the pins."""

    greetings: dict[str, dict[str, str]] = field(default_factory=dict)
    pins: dict[str, dict[str, tuple[str, str | None, float]]] = field(default_factory=dict)

    def copy(self) -> Model:
        return Model(
            {k: dict(v) for k, v in self.greetings.items()},
            {k: dict(v) for k, v in self.pins.items()},
        )

    def expected(self, name: str, label: str, key: str) -> tuple[str, str, str]:
        stable, canary, weight = self.pins[label][name]
        if canary is not None and canary_for(label, name, key, weight):
            return canary, "canary", self.greetings[name][canary]
        return stable, "stable", self.greetings[name][stable]


def push(repo: PromptRepo) -> None:
    """One atomic push of main and the tags: a poll sees the old state or the new one."""
    repo.git("push", "-q", "--atomic", "origin", "HEAD:refs/heads/main", "--tags")


@pytest.fixture
def remote_repo(tmp_path: Path) -> PromptRepo:
    repo = make_repo(tmp_path, with_remote=True)
    repo.release()
    push(repo)
    return repo


def serve(
    repo: PromptRepo, tmp_path: Path, *args: str, name: str = "serve", port: int = 0
) -> ServeProcess:
    assert repo.remote is not None
    return ServeProcess(
        "--source",
        repo.remote.as_uri(),
        *args,
        cwd=tmp_path,
        log=tmp_path / f"{name}.log",
        port=port,
    )


def status(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/v1/status", timeout=10).json()


def reconcile(url: str) -> dict[str, Any]:
    return httpx.post(f"{url}/v1/reconcile", timeout=60).json()


def render(url: str, name: str = "support-reply", **body: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/prompts/{name}/render", json={"variables": VARS, **body}, timeout=10
    )


# --- 20 reconciles under load ---------------------------------------------------------------------


def _step(repo: PromptRepo, model: Model, i: int) -> None:
    """One change: a new tagged version as canary, a weight change, a promotion, or a new
    greeter version pinned in both environments."""
    workspace = Workspace(repo.root)
    production = model.pins["production"]
    kind = i % 4
    if kind == 0:
        version = f"1.{i // 4 + 1}.0"
        greeting = f"Reply v{version}"
        repo.set_prompt("support-reply", version, greeting=greeting)
        model.greetings["support-reply"][version] = greeting
        repo.commit(f"support-reply {version}")
        repo.release()
        weight = 10.0 + i
        promote(workspace, "support-reply", version, "production", canary=weight)
        production["support-reply"] = (production["support-reply"][0], version, weight)
    elif kind == 1:
        stable, canary, _ = production["support-reply"]
        assert canary is not None
        weight = float((i * 7) % 80 + 5)
        promote(workspace, "support-reply", canary, "production", canary=weight)
        production["support-reply"] = (stable, canary, weight)
    elif kind == 2:
        _, canary, _ = production["support-reply"]
        assert canary is not None
        promote(workspace, "support-reply", canary, "production")
        production["support-reply"] = (canary, None, 0.0)
    else:
        version = f"1.0.{i // 4 + 1}"
        greeting = f"Hi v{version}"
        repo.set_prompt("greeter", version, greeting=greeting)
        model.greetings["greeter"][version] = greeting
        for env in ("production", "staging"):
            promote(workspace, "greeter", version, env)  # the version at the same ref
            model.pins[env]["greeter"] = (version, None, 0.0)
    repo.commit(f"step {i}")
    repo.release()
    push(repo)


@dataclass
class Observation:
    thread: int
    name: str
    label: str
    key: str
    status: int
    body: dict[str, Any] | None
    error: str | None = None


def test_twenty_reconciles_under_load_fail_no_request(
    remote_repo: PromptRepo, tmp_path: Path
) -> None:
    repo = remote_repo
    model = Model(
        greetings={"support-reply": {"1.0.0": "Hello"}, "greeter": {"1.0.0": "Hi"}},
        pins={
            env: {"support-reply": ("1.0.0", None, 0.0), "greeter": ("1.0.0", None, 0.0)}
            for env in ("production", "staging")
        },
    )
    observations: list[Observation] = []
    stop = threading.Event()

    with serve(repo, tmp_path, "--poll", "0.5") as server:
        states: dict[str, Model] = {status(server.url)["revision"]: model.copy()}
        order: list[str] = list(states)

        def load(thread: int) -> None:
            rng = random.Random(thread)
            with httpx.Client(base_url=server.url, timeout=15) as client:
                while not stop.is_set():
                    name = rng.choice(["support-reply", "greeter"])
                    label = rng.choice(["production", "production", "staging"])
                    key = rng.choice(KEYS)
                    try:
                        response = client.post(
                            f"/v1/prompts/{name}/render",
                            json={"variables": VARS, "label": label, "key": key},
                        )
                        body = response.json() if response.status_code == 200 else None
                        observations.append(
                            Observation(thread, name, label, key, response.status_code, body)
                        )
                    except httpx.HTTPError as exc:
                        observations.append(
                            Observation(thread, name, label, key, 0, None, repr(exc))
                        )
                    # A short pause so this process's git and release steps get the GIL;
                    # the server still sees a request every few milliseconds per thread.
                    time.sleep(0.002)

        threads = [threading.Thread(target=load, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        try:
            for i in range(20):
                _step(repo, model, i)
                answer = reconcile(server.url)
                assert answer["status"]["state"] == "Synced", answer
                assert answer["status"]["commit"] == repo.head()
                revision = answer["status"]["revision"]
                assert revision not in states, "every step changes what is served"
                states[revision] = model.copy()
                order.append(revision)
                time.sleep(0.05)  # let the clients see every state
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)

    failures = [o for o in observations if o.status != 200]
    assert failures == [], failures[:5]
    assert len(observations) > 200
    seen_revisions: dict[int, int] = {}
    for o in observations:
        assert o.body is not None
        revision = o.body["revision"]
        assert revision in states, f"response from a snapshot that was never published: {o}"
        version, variant, greeting = states[revision].expected(o.name, o.label, o.key)
        assert (o.body["version"], o.body["variant"]) == (version, variant), o
        assert o.body["messages"][0]["content"].startswith(f"{greeting} from Acme."), o
        # Per client, revisions only move forward: no response from an older snapshot
        # after one from a newer snapshot.
        index = order.index(revision)
        assert index >= seen_revisions.get(o.thread, 0), o
        seen_revisions[o.thread] = index
    distinct = {o.body["revision"] for o in observations if o.body}
    assert len(distinct) >= 10, "the load overlapped the reconciles"


# --- invalid states are refused -------------------------------------------------------------------


def test_invalid_yaml_is_refused_and_the_old_snapshot_keeps_serving(
    remote_repo: PromptRepo, tmp_path: Path
) -> None:
    repo = remote_repo
    with serve(repo, tmp_path, "--poll", "0") as server:
        good = status(server.url)
        assert good["state"] == "Synced"

        repo.write(
            "serving/environments/production.yaml",
            "environment: production\nprompts:\n  support-reply: {version: 1.0.0\n",
        )
        repo.commit("broken production file")
        push(repo)
        answer = reconcile(server.url)
        assert answer["outcome"]["outcome"] == "refused"
        now = status(server.url)
        assert now["state"] == "Degraded"
        assert "serving/environments/production.yaml:4:1: Y001 YAML syntax error" in now["reason"]
        assert now["revision"] == good["revision"]  # the last good snapshot still serves
        assert now["commit"] == good["commit"]
        response = render(server.url)
        assert response.status_code == 200
        assert response.json()["revision"] == good["revision"]
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "promptyard_degraded 1.0" in metrics
        assert 'promptyard_reconciles_total{outcome="refused"} 1.0' in metrics

        # The next good commit recovers.
        repo.set_environment("production", {"support-reply": "1.0.0", "greeter": "1.0.0"})
        repo.commit("fix production")
        push(repo)
        assert reconcile(server.url)["outcome"]["outcome"] == "applied"
        healed = status(server.url)
        assert (healed["state"], healed["reason"]) == ("Synced", None)
        assert healed["commit"] == repo.head()


def test_a_pin_without_a_tag_and_a_moved_tag_are_refused(
    remote_repo: PromptRepo, tmp_path: Path
) -> None:
    repo = remote_repo
    with serve(repo, tmp_path, "--poll", "0") as server:
        good = status(server.url)["revision"]

        repo.set_prompt("greeter", "2.0.0", greeting="Yo")
        repo.set_environment("production", {"support-reply": "1.0.0", "greeter": "2.0.0"})
        repo.commit("pin 2.0.0 before it is tagged")
        push(repo)  # no release ran: there is no tag
        reconcile(server.url)
        now = status(server.url)
        assert now["state"] == "Degraded"
        assert "pins greeter 2.0.0 but there is no tag prompts/greeter/v2.0.0" in now["reason"]
        assert render(server.url, "greeter").json()["version"] == "1.0.0"

        repo.release()
        push(repo)
        reconcile(server.url)
        assert status(server.url)["state"] == "Synced"
        assert render(server.url, "greeter").json()["messages"][0]["content"].startswith("Yo")

        # Someone re-creates a released tag over other content (with a matching message).
        repo.set_prompt("support-reply", "1.0.0", greeting="Tampered")
        repo.commit("tamper")
        content_hash = Workspace(repo.root).snapshot("HEAD").prompt("support-reply").content_hash
        repo.git(
            "tag",
            "-f",
            "-a",
            "prompts/support-reply/v1.0.0",
            "-m",
            f"x\n\ncontent-sha256: {content_hash}",
        )
        repo.git("push", "-q", "--force", "origin", "HEAD:refs/heads/main", "--tags")
        reconcile(server.url)
        now = status(server.url)
        assert now["state"] == "Degraded"
        assert "tags are immutable" in now["reason"]
        body = render(server.url).json()
        assert body["messages"][0]["content"].startswith("Hello from")
        assert body["revision"] != good  # the greeter release stays, the tamper does not


def test_polling_picks_up_changes_without_a_webhook(
    remote_repo: PromptRepo, tmp_path: Path
) -> None:
    repo = remote_repo
    with serve(repo, tmp_path, "--poll", "0.2") as server:
        promote(Workspace(repo.root), "greeter", "1.0.0", "production")  # no-op
        repo.set_prompt("greeter", "1.1.0", greeting="Howdy")
        promote(Workspace(repo.root), "greeter", "1.1.0", "production")
        repo.commit("greeter 1.1.0")
        repo.release()
        push(repo)
        wait_until(lambda: render(server.url, "greeter").json()["version"] == "1.1.0", 20)
        assert status(server.url)["commit"] == repo.head()


# --- start-up without git -------------------------------------------------------------------------


def test_unreachable_git_at_start_serves_the_fallback_bundle_then_recovers(
    remote_repo: PromptRepo, tmp_path: Path
) -> None:
    repo = remote_repo
    bundle = tmp_path / "fallback.json"
    bundle.write_bytes(bundle_bytes(build_bundle(Workspace(repo.root), "main")))
    later = tmp_path / "later" / "prompts.git"  # the remote does not exist yet
    process = ServeProcess(
        "--source",
        later.as_uri(),
        "--fallback-bundle",
        str(bundle),
        "--poll",
        "0.2",
        cwd=tmp_path,
        log=tmp_path / "fallback.log",
    )
    with process as server:
        now = status(server.url)
        assert (now["state"], now["serving"]) == ("Degraded", "fallback-bundle")
        assert "serving the fallback bundle" in now["reason"]
        body = render(server.url).json()
        assert (body["version"], body["is_fallback"]) == ("1.0.0", True)
        assert "promptyard_degraded 1.0" in httpx.get(f"{server.url}/metrics").text

        # git becomes reachable: the next poll switches to it.
        later.parent.mkdir()
        run_git(tmp_path, "clone", "-q", "--bare", str(repo.remote), str(later))
        wait_until(lambda: status(server.url)["serving"] == "source", 20)
        now = status(server.url)
        assert (now["state"], now["reason"]) == ("Synced", None)
        assert render(server.url).json()["is_fallback"] is False


def test_unreachable_git_at_start_without_fallback_fails_fast_with_exit_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/prompts.git"
    process = ServeProcess("--source", url, cwd=tmp_path, log=tmp_path / "fail.log")
    process.start(expect_ready=False)
    try:
        assert process.wait(timeout=60) == 3
    finally:
        process.stop()
    output = process.output().strip().splitlines()
    assert output[0].startswith("error: fetch http://127.0.0.1:")
    assert "git remote unreachable" in output[0]
    assert len(output) <= 2
    assert "Traceback" not in process.output()


def test_a_busy_port_is_one_clear_error_with_exit_3(
    remote_repo: PromptRepo, tmp_path: Path
) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        process = serve(remote_repo, tmp_path, "--poll", "0", name="busy", port=port)
        process.start(expect_ready=False)
        try:
            assert process.wait(timeout=60) == 3
        finally:
            process.stop()
    assert f"error: cannot listen on 127.0.0.1:{port}" in process.output()
    assert "Traceback" not in process.output()


# --- stickiness across replicas and restarts -----------------------------------------------------


def test_same_key_same_variant_on_replicas_and_after_restart(
    remote_repo: PromptRepo, tmp_path: Path
) -> None:
    repo = remote_repo
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    repo.set_environment(
        "production", {"support-reply": ("1.0.0", "1.1.0", 30), "greeter": "1.0.0"}
    )
    repo.commit("canary at 30%")
    repo.release()
    push(repo)

    def variants(url: str) -> dict[str, str]:
        with httpx.Client(base_url=url, timeout=10) as client:
            return {
                key: client.post(
                    "/v1/prompts/support-reply/render", json={"variables": VARS, "key": key}
                ).json()["variant"]
                for key in KEYS
            }

    expected = {
        k: "canary" if canary_for("production", "support-reply", k, 30) else "stable" for k in KEYS
    }
    with (
        serve(repo, tmp_path, "--poll", "0", name="a") as a,
        serve(repo, tmp_path, "--poll", "0", name="b") as b,
    ):
        assert variants(a.url) == variants(b.url) == expected
    with serve(repo, tmp_path, "--poll", "0", name="restarted") as again:
        assert variants(again.url) == expected
