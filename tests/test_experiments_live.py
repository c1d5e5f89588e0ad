"""Running experiments: the registry and the gateway assign variants, record exposures,
take feedback, and `experiment analyze --events` reads the store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest

from promptyard.events import EventStore, read_events
from promptyard.registry.client import Registry
from promptyard.serving.gateway import create_gateway_app
from promptyard.spec.gateway import GatewayConfig
from support.clusters import cluster_doc, cluster_text
from support.openai_server import OpenAIServer
from support.repo import PromptRepo, make_repo
from support.servers import ThreadedServer

VARS = {"company": "Acme", "ticket": "My order is late"}
EXPERIMENT = """\
name: tone
variants:
  - {name: control, prompt: support-reply@1.0.0, weight: 50}
  - {name: warm, prompt: support-reply@1.1.0, model: gpt-4o, weight: 50}
assignment: {unit: user_id, salt: tone-2026}
metrics:
  - {name: resolved, type: binary, direction: increase, baseline: 0.3, mde: 0.1}
primary: resolved
"""


def make_experiment_repo(tmp_path: Path) -> PromptRepo:
    """support-reply 1.0.0 and 1.1.0 released; production runs experiment `tone` on them."""
    repo = make_repo(tmp_path)
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    repo.commit("support-reply 1.1.0")
    repo.release()
    repo.write("experiments/tone.yaml", EXPERIMENT)
    repo.write(
        "serving/environments/production.yaml",
        repo.read("serving/environments/production.yaml") + "experiments: [tone]\n",
    )
    repo.commit("run experiment tone in production")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> PromptRepo:
    return make_experiment_repo(tmp_path)


def reference_variant(salt: str, unit: str) -> str:
    """docs/architecture.md §9 / assignment.py's formula written out independently (50/50)."""
    bucket = int(hashlib.sha256(f"{salt}:{unit}".encode()).hexdigest()[:8], 16) % 10000
    return "control" if bucket < 5000 else "warm"


def test_registry_assigns_the_variant_by_unit_and_renders_its_version(repo: PromptRepo) -> None:
    with Registry.from_repo(repo.root, ref="main") as registry:
        seen = set()
        for n in range(200):
            unit = f"user-{n}"
            out = registry.render("support-reply", VARS, key=unit)
            expected = reference_variant("tone-2026", unit)
            assert (out.variant, out.experiment) == (expected, "tone")
            assert out.version == ("1.0.0" if expected == "control" else "1.1.0")
            assert out.model == ("gpt-4o-mini" if expected == "control" else "gpt-4o")
            assert registry.render("support-reply", VARS, key=unit).variant == expected  # sticky
            seen.add(expected)
        assert seen == {"control", "warm"}
        # Without a unit there is no assignment: the pinned stable version serves.
        plain = registry.render("support-reply", VARS)
        assert (plain.variant, plain.experiment, plain.version) == ("stable", None, "1.0.0")
        # Other labels and other prompts are not in the experiment.
        assert registry.render("support-reply", VARS, label="staging", key="u").experiment is None
        assert registry.render("greeter", VARS, key="u").variant == "stable"


def lint_findings(repo: PromptRepo) -> list[tuple[str, int, str]]:
    from promptyard.lint.runner import lint_repository
    from promptyard.repo.workspace import Workspace

    result = lint_repository(Workspace(repo.root))
    return sorted((f.rule, f.line, f.message) for f in result.findings if f.rule == "E012")


def test_lint_running_experiment_needs_released_served_variants(repo: PromptRepo) -> None:
    assert lint_findings(repo) == []
    repo.replace("experiments/tone.yaml", "support-reply@1.1.0", "support-reply@1.2.0")
    [(code, line, message)] = lint_findings(repo)
    assert (code, line) == ("E012", 8)  # the `experiments:` line of production.yaml
    assert "variant warm is support-reply@1.2.0, which is not released" in message

    repo.replace("experiments/tone.yaml", "support-reply@1.2.0", "support-reply@1.1.0")
    # A cluster serving gpt-4o-mini (the control's model) but not gpt-4o (warm's).
    repo.write("serving/clusters/gpu.yaml", cluster_text(cluster_doc(served_8b=("gpt-4o-mini",))))
    repo.replace(
        "serving/environments/production.yaml",
        "environment: production",
        "environment: production\ncluster: gpu",
    )
    messages = [m for _, _, m in lint_findings(repo)]
    assert messages == [
        "experiment tone variant warm uses model 'gpt-4o', which cluster gpu does not serve "
        "(it serves: gpt-4o-mini, llama-70b); serve it or change the variant"
    ]


# --- the gateway: assignment, exposures, feedback ------------------------------------------------


def gateway_config(url: str, capture: dict[str, float] | None = None) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "endpoints": {"local": {"url": url}},
            "models": {"gpt-4o-mini": "local", "gpt-4o": "local"},
            "pricing": {"gpt-4o-mini": {"input": 1.0, "output": 2.0}},
            "capture": capture or {},
        }
    )


@contextmanager
def served_gateway(
    repo: PromptRepo,
    store: EventStore | None = None,
    *,
    environ: dict[str, str] | None = None,
    capture: dict[str, float] | None = None,
) -> Iterator[tuple[ThreadedServer, OpenAIServer]]:
    """The gateway over the repository's registry, the local OpenAI server as its upstream."""
    with (
        OpenAIServer() as upstream,
        Registry.from_repo(repo.root, ref="main") as registry,
        ThreadedServer(
            create_gateway_app(
                registry,
                gateway_config(upstream.base_url, capture),
                events=store,
                environ=environ or {},
            )
        ) as gateway,
    ):
        yield gateway, upstream


def test_gateway_serves_variants_records_exposures_and_takes_feedback(
    repo: PromptRepo, tmp_path: Path
) -> None:
    store = EventStore(tmp_path / "events.db")
    with (
        served_gateway(repo, store) as (gateway, upstream),
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0) as client,
    ):
        for n in range(30):
            unit = f"user-{n}"
            raw = client.chat.completions.with_raw_response.create(
                model="prompt:support-reply",
                messages=[],
                user=unit,
                extra_body={"variables": VARS},
            )
            expected = reference_variant("tone-2026", unit)
            assert raw.headers["x-promptyard-variant"] == expected
            assert raw.headers["x-promptyard-experiment"] == "tone"
            assert raw.headers["x-promptyard-version"] == (
                "1.0.0" if expected == "control" else "1.1.0"
            )
            sent = upstream.chat_requests()[-1].body
            assert sent["model"] == ("gpt-4o-mini" if expected == "control" else "gpt-4o")
        # No unit: no assignment, no exposure.
        raw = client.chat.completions.with_raw_response.create(
            model="prompt:support-reply", messages=[], extra_body={"variables": VARS}
        )
        assert raw.headers["x-promptyard-variant"] == "stable"
        assert "x-promptyard-experiment" not in raw.headers

        ok = httpx.post(
            f"{gateway.url}/v1/feedback",
            json={
                "events": [
                    {"unit": "user-1", "metric": "resolved", "value": 1},
                    {"unit": "nobody", "metric": "resolved", "value": 0},
                    {"unit": "user-2", "metric": "csat", "value": 4.5},
                ]
            },
        )
        assert (ok.status_code, ok.json()) == (202, {"accepted": 3, "dropped": 0})
        bad = httpx.post(f"{gateway.url}/v1/feedback", json={"unit": "user-1", "metric": "x"})
        assert bad.status_code == 422
        assert "`value` must be a finite number" in bad.json()["error"]["message"]
        metrics = httpx.get(f"{gateway.url}/metrics").text
        assert 'promptyard_events_recorded_total{kind="exposure"} 30.0' in metrics
        assert 'promptyard_events_dropped_total{kind="exposure"}' not in metrics
    assert store.flush()
    store.close()
    tables = read_events(tmp_path / "events.db")
    assert len(tables.exposures) == 30
    by_unit = dict(zip(tables.exposures["unit"], tables.exposures["variant"], strict=True))
    assert by_unit == {f"user-{n}": reference_variant("tone-2026", f"user-{n}") for n in range(30)}
    assert set(tables.exposures["experiment"]) == {"tone"}
    assert tables.exposures["tokens_in"].gt(0).all()
    assert sorted(tables.outcomes["unit"]) == ["nobody", "user-1", "user-2"]  # all kept


# --- end to end: the experiment file to the decision ----------------------------------------------

RESOLVE_RATE = {"control": 0.30, "warm": 0.45}  # the planted effect


def test_end_to_end_gateway_feedback_analyze_finds_the_planted_effect(
    repo: PromptRepo, tmp_path: Path
) -> None:
    import random

    store_path = tmp_path / "events.db"
    rng = random.Random(16)
    store = EventStore(store_path)
    feedback: list[dict[str, object]] = []
    with (
        served_gateway(repo, store) as (gateway, _),
        httpx.Client(base_url=gateway.url, timeout=30) as http,
    ):
        for n in range(2000):
            unit = f"u{n:05d}"
            answer = http.post(
                "/v1/chat/completions",
                json={"model": "prompt:support-reply", "user": unit, "variables": VARS},
            )
            assert answer.status_code == 200, answer.text
            variant = answer.headers["x-promptyard-variant"]
            if rng.random() < 0.8:  # not every user leaves feedback
                resolved = rng.random() < RESOLVE_RATE[variant]
                feedback.append({"unit": unit, "metric": "resolved", "value": int(resolved)})
        feedback.append({"unit": "ghost", "metric": "resolved", "value": 1})  # unmatched
        for start in range(0, len(feedback), 200):
            posted = http.post("/v1/feedback", json={"events": feedback[start : start + 200]})
            assert posted.status_code == 202
    store.close()

    result = repo.cli(
        "experiment", "analyze", "tone", "--events", str(store_path), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    analysis = json.loads(result.stdout)
    assert analysis["srm"]["flagged"] is False
    assert analysis["rows"] == 2000
    assert analysis["assignment"]["mismatched"] == 0
    [metric] = analysis["metrics"]
    assert (metric["metric"], metric["treatment"], metric["outcome"]) == (
        "resolved",
        "warm",
        "better",
    )
    assert analysis["decision"]["action"] == "ship"
    assert any("1 outcome event(s) name a unit never exposed" in w for w in analysis["warnings"])

    # The Parquet export analyzes the same.
    assert repo.cli("events", "export", str(store_path), str(tmp_path / "export")).exit_code == 0
    again = repo.cli(
        "experiment", "analyze", "tone", "--events", str(tmp_path / "export"), "--format", "json"
    )
    assert json.loads(again.stdout)["metrics"] == analysis["metrics"]


# --- the event store: crash safety and never blocking ---------------------------------------------

CHILD = """
import sys, time
from promptyard.events import EventStore, Outcome
store = EventStore(sys.argv[1], queue_size=10_000)
for n in range(500):
    store.record(Outcome(f"acked-{n}", "resolved", 1.0))
assert store.flush()
print("ACKED 500", flush=True)
accepted = sum(store.record(Outcome(f"late-{n}", "resolved", 0.0)) for n in range(100_000))
print(f"QUEUED {accepted}", flush=True)
time.sleep(60)
"""


def test_kill_9_loses_only_unacknowledged_events(tmp_path: Path) -> None:
    import signal
    import sqlite3
    import subprocess
    import sys

    path = tmp_path / "events.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ACKED 500"
    accepted = int(child.stdout.readline().split()[1])
    child.send_signal(signal.SIGKILL)
    child.wait()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    acked = connection.execute("SELECT count(*) FROM outcomes WHERE unit LIKE 'acked-%'")
    late = connection.execute("SELECT count(*) FROM outcomes WHERE unit LIKE 'late-%'")
    assert acked.fetchone()[0] == 500  # every acknowledged event survives
    lost = accepted - late.fetchone()[0]
    # What can be lost: the queue (10,000) and the batch being written (1,000), no more.
    assert 0 <= lost <= 10_000 + 1_000
    connection.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    from promptyard.events import Outcome

    store = EventStore(tmp_path / "events.db", queue_size=10)
    accepted = store.record_many(Outcome(f"u{n}", "m", 1.0) for n in range(50_000))
    assert accepted + store.dropped == 50_000
    assert store.dropped > 0
    store.close()
    assert len(read_events(tmp_path / "events.db").outcomes) == accepted


def test_registry_service_render_headers_exposures_and_feedback(
    repo: PromptRepo, tmp_path: Path
) -> None:
    from promptyard.registry.reconcile import GitSource, Reconciler
    from promptyard.registry.service import create_app

    store = EventStore(tmp_path / "events.db")
    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler, events=store)) as service:
        answer = httpx.post(
            f"{service.url}/v1/prompts/support-reply/render",
            json={"variables": VARS, "key": "user-7"},
        )
        expected = reference_variant("tone-2026", "user-7")
        assert answer.status_code == 200
        assert (answer.json()["variant"], answer.json()["experiment"]) == (expected, "tone")
        assert answer.headers["x-promptyard-variant"] == expected
        assert answer.headers["x-promptyard-experiment"] == "tone"
        posted = httpx.post(
            f"{service.url}/v1/feedback", json={"unit": "user-7", "metric": "resolved", "value": 1}
        )
        assert posted.status_code == 202
        malformed = httpx.post(
            f"{service.url}/v1/feedback",
            json={"unit": "user-7", "metric": "resolved", "value": "yes"},
        )
        assert malformed.status_code == 422
        assert malformed.json()["error"]["type"] == "invalid_event"
        # A server-backed client assigns itself from the label's cached description.
        with Registry.from_server(service.url) as remote:
            for n in range(40):
                unit = f"user-{n}"
                out = remote.render("support-reply", VARS, key=unit)
                assert (out.variant, out.experiment) == (
                    reference_variant("tone-2026", unit),
                    "tone",
                )
                assert out.model == ("gpt-4o-mini" if out.variant == "control" else "gpt-4o")
            assert remote.render("support-reply", VARS).variant == "stable"
    store.close()
    tables = read_events(tmp_path / "events.db")
    assert list(tables.exposures["variant"]) == [expected]
    assert list(tables.outcomes["unit"]) == ["user-7"]


def test_feedback_without_an_event_store_is_503(repo: PromptRepo) -> None:
    from promptyard.registry.reconcile import GitSource, Reconciler
    from promptyard.registry.service import create_app

    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as service:
        answer = httpx.post(
            f"{service.url}/v1/feedback", json={"unit": "u", "metric": "m", "value": 1}
        )
        assert answer.status_code == 503
        assert "--no-events" in answer.json()["error"]["message"]


# --- traces --------------------------------------------------------------------------------------


class OTLPReceiver:
    """An OTLP/HTTP traces receiver on 127.0.0.1: decodes each protobuf export request."""

    def __init__(self) -> None:
        import http.server
        import threading

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        self.spans: list[tuple[str, dict[str, object], str]] = []  # (name, attributes, service)
        self.content_types: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.content_types.append(self.headers["content-type"])
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    service = next(
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    )
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            attributes = {
                                a.key: getattr(a.value, a.value.WhichOneof("value"))
                                for a in span.attributes
                            }
                            receiver.spans.append((span.name, attributes, service))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OTLPReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_gateway_exports_genai_spans_with_prompt_attributes_over_otlp_http(
    repo: PromptRepo,
) -> None:
    with OTLPReceiver() as receiver:
        environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SERVICE_NAME": "gw-test"}
        with (
            served_gateway(repo, environ=environ) as (gateway, _),
            httpx.Client(base_url=gateway.url) as http,
        ):
            served = http.post(
                "/v1/chat/completions",
                json={"model": "prompt:support-reply", "user": "user-3", "variables": VARS},
            )
            assert served.status_code == 200
            usage = served.json()["usage"]
            missing = http.post("/v1/chat/completions", json={"model": "prompt:nope"})
            assert missing.status_code == 404
        # The app's shutdown flushed the batch processor.
    assert set(receiver.content_types) == {"application/x-protobuf"}
    by_name = {
        attributes.get("promptyard.prompt.name", "?"): (name, attributes, service)
        for name, attributes, service in receiver.spans
    }
    variant = reference_variant("tone-2026", "user-3")
    model = "gpt-4o-mini" if variant == "control" else "gpt-4o"
    name, attributes, service = by_name["support-reply"]
    assert (name, service) == (f"chat {model}", "gw-test")
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == model
    assert attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert attributes["promptyard.prompt.version"] == ("1.0.0" if variant == "control" else "1.1.0")
    assert attributes["promptyard.prompt.variant"] == variant
    assert attributes["promptyard.experiment"] == "tone"
    _, failed, _ = by_name["_unknown"]
    assert (failed["http.response.status_code"], failed["error.type"]) == (404, "not_found")


# --- capture: production cases back into golden sets ----------------------------------------------

REDACTOR = """
import re
def scrub(case):
    if "DROP" in case["vars"]["ticket"]:
        return None
    case["vars"]["ticket"] = re.sub(r"\\S+@\\S+", "<email>", case["vars"]["ticket"])
    return case
"""


def test_capture_turns_sampled_requests_into_candidate_cases(
    repo: PromptRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptyard.capture import case_id

    store_path = tmp_path / "events.db"
    store = EventStore(store_path)
    tickets = ["Late order", "Mail me at a@b.example", "Late order", "DROP this", "Late order"]
    with (
        served_gateway(repo, store, capture={"support-reply": 100}) as (gateway, _),
        httpx.Client(base_url=gateway.url) as http,
    ):
        for ticket in tickets:
            variables = {"company": "Acme", "ticket": ticket}
            http.post(
                "/v1/chat/completions",
                json={"model": "prompt:support-reply", "variables": variables},
            ).raise_for_status()
        http.post(
            "/v1/chat/completions", json={"model": "prompt:greeter", "variables": VARS}
        ).raise_for_status()  # not opted in: never captured
    store.close()

    (tmp_path / "redactmod.py").write_text(REDACTOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    output = repo.path("golden/candidates.jsonl")
    args = ("capture", "support-reply", "--events", str(store_path), "-o", str(output))
    result = repo.cli(*args, "--redact", "redactmod:scrub")
    assert result.exit_code == 0, result.output
    assert "2 cases (2 new; 2 duplicates, 1 redacted away" in result.stdout
    cases = repo.jsonl("golden/candidates.jsonl")
    assert [c["vars"]["ticket"] for c in cases] == ["Late order", "Mail me at <email>"]
    assert cases[0]["id"] == case_id("support-reply", {"company": "Acme", "ticket": "Late order"})
    assert cases[0]["metadata"]["production_answer"]  # the answer, for the reviewer
    assert cases[0]["metadata"]["version"] == "1.0.0"  # no unit: the stable version served
    # Running again adds nothing (stable ids); a cap bounds a new file.
    again = repo.cli(*args, "--redact", "redactmod:scrub")
    assert "2 cases (0 new; 4 duplicates" in again.stdout
    capped = repo.cli(*args[:-1], str(tmp_path / "capped.jsonl"), "--max-cases", "1")
    assert "1 cases (1 new; 2 duplicates, 0 redacted away, 0 too large, 2 over --max-cases)" in (
        capped.stdout
    )


def test_join_per_unit_binary_any_continuous_mean_and_unmatched() -> None:
    import pandas as pd
    import yaml

    from promptyard.events import EventTables, experiment_events
    from promptyard.spec.experiment import ExperimentSpec

    spec = ExperimentSpec.model_validate(
        yaml.safe_load(
            EXPERIMENT.replace(
                "primary: resolved",
                "  - {name: csat, type: continuous, direction: increase, baseline: 4, sd: 1, "
                "mde: 0.2}\nprimary: resolved",
            )
        )
    )
    exposures = pd.DataFrame(
        [
            (1.0, "a", "tone", "control"),
            (2.0, "a", "tone", "control"),
            (3.0, "b", "tone", "warm"),
            (4.0, "b", "tone", "control"),  # switched: the first (warm) counts
            (5.0, "c", "other", "x"),  # another experiment
        ],
        columns=["time", "unit", "experiment", "variant"],
    )
    outcomes = pd.DataFrame(
        [
            (1.0, "a", "resolved", 0.0, None),
            (2.0, "a", "resolved", 1.0, None),
            (3.0, "a", "csat", 3.0, None),
            (4.0, "a", "csat", 5.0, "tone"),
            (5.0, "ghost", "resolved", 1.0, None),
            (6.0, "b", "thumbs", 1.0, None),
            (7.0, "a", "resolved", 0.0, "other"),  # another experiment's: not ours
        ],
        columns=["time", "unit", "metric", "value", "experiment"],
    )
    joined = experiment_events(spec, EventTables(exposures, outcomes))
    rows = joined.frame.set_index("user_id").to_dict("index")
    assert rows["a"] == {"variant": "control", "resolved": 1.0, "csat": 4.0}
    assert rows["b"]["variant"] == "warm" and rows["b"]["resolved"] == 0.0
    assert pd.isna(rows["b"]["csat"])
    assert (joined.unmatched_units, joined.unmatched_metrics, joined.switched_units) == (1, 1, 1)


def test_bad_event_inputs_are_clean_errors(repo: PromptRepo, tmp_path: Path) -> None:
    from support.cli import assert_clean_error

    missing = str(tmp_path / "missing.db")
    assert_clean_error(
        repo.run("experiment", "analyze", "tone", "--events", missing), 2, "missing.db"
    )
    assert_clean_error(
        repo.run("experiment", "analyze", "tone"), 2, "--data FILE or --events STORE"
    )
    not_a_store = repo.path("promptyard.yaml")
    assert_clean_error(
        repo.run("experiment", "analyze", "tone", "--events", str(not_a_store)),
        2,
        "not a promptyard event store",
    )
    EventStore(tmp_path / "empty.db").close()
    assert_clean_error(
        repo.run("experiment", "analyze", "tone", "--events", str(tmp_path / "empty.db")),
        2,
        "no exposures of experiment 'tone'",
    )
    assert_clean_error(
        repo.run("capture", "support-reply", "--events", missing, "-o", "c.jsonl"), 2, "missing.db"
    )
    assert_clean_error(
        repo.run(
            "capture",
            "support-reply",
            "--events",
            str(tmp_path / "empty.db"),
            "-o",
            "c.jsonl",
            "--redact",
            "nomodule",
        ),
        2,
        "module:function",
    )


def test_bundle_carries_running_experiments_and_refuses_one_without_them(
    repo: PromptRepo,
) -> None:
    from promptyard.release.bundle import BundleError, build_bundle, document_hash, load_bundle
    from promptyard.repo.workspace import Workspace

    document = build_bundle(Workspace(repo.root), "main")
    entry = document["environments"]["production"]
    assert entry["experiments"]["tone"]["assignment"]["salt"] == "tone-2026"
    assert load_bundle(document).experiments["production"]["tone"].name == "tone"
    del entry["experiments"]
    document["hash"] = document_hash(document)
    with pytest.raises(BundleError) as caught:
        load_bundle(document)
    assert "runs experiment(s) tone but the bundle does not carry them" in str(
        caught.value.problems
    )
