"""The registry HTTP API on a real uvicorn server: endpoints, errors, status, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from promptyard.assignment import in_canary
from promptyard.registry.reconcile import GitSource, Reconciler
from promptyard.registry.service import MAX_BODY_BYTES, create_app
from support.repo import PromptRepo, make_repo
from support.servers import ThreadedServer

VARS = {"company": "Acme", "ticket": "Refund please"}


@pytest.fixture
def repo(tmp_path: Path) -> PromptRepo:
    repo = make_repo(tmp_path)
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    repo.set_environment(
        "production", {"support-reply": ("1.0.0", "1.1.0", 20), "greeter": "1.0.0"}
    )
    repo.commit("canary 1.1.0")
    repo.release()
    return repo


@pytest.fixture
def served(repo: PromptRepo) -> Iterator[tuple[httpx.Client, Reconciler]]:
    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    with (
        ThreadedServer(create_app(reconciler)) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        yield client, reconciler


def test_health_and_readiness(served: tuple[httpx.Client, Reconciler]) -> None:
    client, reconciler = served
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["revision"] == reconciler.snapshot.revision  # type: ignore[union-attr]


def test_not_ready_before_any_snapshot(repo: PromptRepo) -> None:
    reconciler = Reconciler(GitSource(str(repo.root), "main"))  # never reconciled
    with ThreadedServer(create_app(reconciler)) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert httpx.get(f"{server.url}/readyz").status_code == 503
        response = httpx.post(f"{server.url}/v1/prompts/greeter/render", json={})
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "not_ready"


def test_catalog_lists_versions_and_pins(served: tuple[httpx.Client, Reconciler]) -> None:
    client, _ = served
    catalog = client.get("/v1/prompts").json()["prompts"]
    assert catalog == [
        {
            "name": "greeter",
            "versions": ["1.0.0"],
            "labels": {
                "production": {"version": "1.0.0", "canary": None},
                "staging": {"version": "1.0.0", "canary": None},
            },
        },
        {
            "name": "support-reply",
            "versions": ["1.0.0", "1.1.0"],
            "labels": {
                "production": {"version": "1.0.0", "canary": {"version": "1.1.0", "weight": 20.0}},
                "staging": {"version": "1.0.0", "canary": None},
            },
        },
    ]


def test_get_prompt_by_label_version_and_key(served: tuple[httpx.Client, Reconciler]) -> None:
    client, _ = served
    stable = client.get("/v1/prompts/support-reply").json()
    assert (stable["version"], stable["variant"], stable["label"]) == (
        "1.0.0",
        "stable",
        "production",
    )
    assert stable["canary"] == {"version": "1.1.0", "weight": 20.0}
    assert stable["tag"] == "prompts/support-reply/v1.0.0"
    assert stable["spec"]["model"]["name"] == "gpt-4o-mini"
    assert '{% include "tone.j2" %}' in stable["source"]
    assert stable["partials"] == {"tone.j2": "Be brief and friendly.\n"}
    explicit = client.get("/v1/prompts/support-reply", params={"version": "1.1.0"}).json()
    assert (explicit["version"], explicit["variant"]) == ("1.1.0", "explicit")
    key = next(k for k in map(str, range(1000)) if in_canary("production", "support-reply", k, 20))
    keyed = client.get("/v1/prompts/support-reply", params={"key": key}).json()
    assert (keyed["version"], keyed["variant"]) == ("1.1.0", "canary")


def test_render_returns_messages_model_and_variant(served: tuple[httpx.Client, Reconciler]) -> None:
    client, reconciler = served
    response = client.post("/v1/prompts/support-reply/render", json={"variables": VARS})
    assert response.status_code == 200
    body = response.json()
    assert body["messages"][0]["content"].startswith("Hello from Acme.\n")
    assert body["messages"][1] == {"role": "user", "content": "Refund please"}
    assert (body["model"], body["provider"]) == ("gpt-4o-mini", "default")
    assert body["parameters"] == {"temperature": 0.2, "max_tokens": 400}
    assert (body["version"], body["variant"], body["label"]) == ("1.0.0", "stable", "production")
    assert body["revision"] == reconciler.snapshot.revision  # type: ignore[union-attr]
    assert body["is_fallback"] is False

    staging = client.post(
        "/v1/prompts/support-reply/render",
        json={"variables": VARS, "label": "staging", "key": "anyone"},
    ).json()
    assert (staging["label"], staging["variant"]) == ("staging", "stable")
    pinned = client.post(
        "/v1/prompts/support-reply/render", json={"variables": VARS, "version": "1.1.0"}
    ).json()
    assert pinned["messages"][0]["content"].startswith("Good day from Acme.")


def test_canary_is_sticky_per_key(served: tuple[httpx.Client, Reconciler]) -> None:
    client, _ = served
    for key in map(str, range(60)):
        expected = "canary" if in_canary("production", "support-reply", key, 20) else "stable"
        for _ in range(2):
            body = client.post(
                "/v1/prompts/support-reply/render", json={"variables": VARS, "key": key}
            ).json()
            assert body["variant"] == expected


@pytest.mark.parametrize(
    ("path", "body", "status", "kind", "message"),
    [
        ("/v1/prompts/nope/render", {}, 404, "not_found", "no prompt 'nope'"),
        (
            "/v1/prompts/support-reply/render",
            {"variables": VARS, "label": "qa"},
            404,
            "not_found",
            "no label 'qa'",
        ),
        (
            "/v1/prompts/support-reply/render",
            {"variables": VARS, "version": "3.0.0"},
            404,
            "not_found",
            "no version 3.0.0",
        ),
        (
            "/v1/prompts/support-reply/render",
            {"variables": {"company": "Acme"}},
            422,
            "invalid_variables",
            "missing required variable 'ticket'",
        ),
        (
            "/v1/prompts/support-reply/render",
            {"variables": {**VARS, "ticket": 42}},
            422,
            "invalid_variables",
            "variable 'ticket': 42 is not of type 'string'",
        ),
        (
            "/v1/prompts/support-reply/render",
            {"variables": {**VARS, "color": "red"}},
            422,
            "invalid_variables",
            "unknown variable 'color'",
        ),
        (
            "/v1/prompts/support-reply/render",
            {"variables": ["a"]},
            422,
            "invalid_request",
            "`variables` must be a JSON object",
        ),
        (
            "/v1/prompts/support-reply/render",
            {"variables": VARS, "key": 7},
            422,
            "invalid_request",
            "`key` must be a string",
        ),
        (
            "/v1/prompts/support-reply/render",
            {"vars": VARS},
            422,
            "invalid_request",
            "unknown field 'vars'",
        ),
    ],
)
def test_client_errors_are_4xx_with_the_reason(
    served: tuple[httpx.Client, Reconciler],
    path: str,
    body: dict,
    status: int,
    kind: str,
    message: str,
) -> None:
    client, _ = served
    response = client.post(path, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == kind
    assert message in error["message"]


def test_malformed_and_oversized_bodies_are_refused(
    served: tuple[httpx.Client, Reconciler],
) -> None:
    client, _ = served
    url = "/v1/prompts/support-reply/render"
    for raw in (b"{not json", b"[1,2]", b'{"a":1,"a":2}', b"\xff\xfe", b'{"x": NaN}'):
        response = client.post(url, content=raw)
        assert response.status_code == 400, raw
    too_big = b'{"variables": {"ticket": "' + b"x" * MAX_BODY_BYTES + b'"}}'
    assert client.post(url, content=too_big).status_code == 413
    assert client.get("/v1/prompts/unknown/thing").status_code == 404
    assert client.delete("/v1/prompts/support-reply").status_code == 405


def test_a_template_that_fails_at_render_time_is_422(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    text = repo.read("prompts/greeter.yaml").replace("{{ ticket }}", "{{ ticket.a.b }}")
    repo.write("prompts/greeter.yaml", text)
    repo.commit("bad attribute access")
    repo.release()
    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as server:
        response = httpx.post(f"{server.url}/v1/prompts/greeter/render", json={"variables": VARS})
        assert response.status_code == 422
        assert response.json()["error"]["type"] == "render_error"
        assert "failed to render" in response.json()["error"]["message"]


def test_status_and_reconcile_endpoint(
    repo: PromptRepo, served: tuple[httpx.Client, Reconciler]
) -> None:
    client, _ = served
    status = client.get("/v1/status").json()
    assert status["state"] == "Synced" and status["reason"] is None
    assert status["commit"] == repo.head()
    assert status["source"] == str(repo.root)
    assert status["labels"] == ["production", "staging"]
    assert status["last_reconcile"] is not None

    repo.set_environment("production", {"support-reply": "1.1.0", "greeter": "1.0.0"})
    repo.commit("promote 1.1.0")
    answer = client.post("/v1/reconcile").json()
    assert answer["outcome"]["outcome"] == "applied"
    assert answer["status"]["commit"] == repo.head()
    assert answer["status"]["revision"] != status["revision"]
    rendered = client.post("/v1/prompts/support-reply/render", json={"variables": VARS}).json()
    assert rendered["version"] == "1.1.0"
    assert client.post("/v1/reconcile").json()["outcome"]["outcome"] == "unchanged"


def test_metrics_count_requests_renders_and_reconciles(
    served: tuple[httpx.Client, Reconciler],
) -> None:
    client, reconciler = served
    for _ in range(3):
        client.post("/v1/prompts/support-reply/render", json={"variables": VARS})
    client.post("/v1/prompts/support-reply/render", json={"variables": {}})
    client.post("/v1/prompts/no-such-prompt-xyz/render", json={})
    client.post("/v1/reconcile")
    text = client.get("/metrics").text
    assert (
        'promptyard_requests_total{endpoint="render",prompt="support-reply",status="200",'
        'variant="stable",version="1.0.0"} 3.0'
    ) in text
    assert 'status="422",variant="stable",version="1.0.0"} 1.0' in text
    assert 'prompt="_unknown",status="404"' in text
    assert "no-such-prompt-xyz" not in text  # client input never becomes a label
    assert 'promptyard_render_seconds_count{prompt="support-reply"} 3.0' in text
    assert 'promptyard_reconciles_total{outcome="applied"} 1.0' in text
    assert 'promptyard_reconciles_total{outcome="unchanged"} 1.0' in text
    snapshot = reconciler.snapshot
    assert snapshot is not None
    assert (
        f'promptyard_revision_info{{commit="{snapshot.commit}",revision="{snapshot.revision}",'
        'serving="source"} 1.0'
    ) in text
    assert "promptyard_degraded 0.0" in text
