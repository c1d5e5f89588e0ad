"""`allocation: thompson`: live re-weighting from outcomes, within floors, sticky units, the
change log, and `analyze --events` testing the sample ratio against the weights in force."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import numpy as np
import pytest

from promptyard.allocation import ArmData, LiveAllocations, thompson_round
from promptyard.assignment import assign
from promptyard.events import EventStore, read_events
from promptyard.registry.client import Registry
from promptyard.spec.experiment import ExperimentSpec
from promptyard.stats.srm import srm_check
from support.repo import PromptRepo
from support.servers import ThreadedServer
from test_experiments_live import EXPERIMENT, VARS, make_experiment_repo

THOMPSON = EXPERIMENT + "allocation: thompson\nreweight_every: 1s\nfloor: 10\n"


def spec_of(text: str) -> ExperimentSpec:
    import yaml

    return ExperimentSpec.model_validate(yaml.safe_load(text))


# --- the statistic, by simulation ------------------------------------------------------------------


def simulate(
    spec: ExperimentSpec, rates: dict[str, float], rounds: int, per_round: int, seed: int
) -> tuple[list[dict[str, float]], dict[str, int]]:
    """Units arrive, get `assign` with the current weights, succeed at their variant's
    rate; every round the weights are re-computed from all outcomes so far, as the serving
    process does. The weights after each round and the units per variant."""
    rng = np.random.default_rng(seed)
    weights = [(v.name, v.weight) for v in spec.variants]
    units = dict.fromkeys(rates, 0)
    wins = dict.fromkeys(rates, 0)
    history = []
    for r in range(rounds):
        for n in range(per_round):
            variant = assign(f"s{seed}-r{r}-u{n}", spec, weights)
            units[variant] += 1
            wins[variant] += int(rng.random() < rates[variant])
        arms = {name: ArmData(units=units[name], successes=wins[name]) for name in rates}
        outcome = thompson_round(spec, arms)
        assert not isinstance(outcome, str)
        weights = outcome[0]
        history.append(dict(weights))
    return history, units


def test_a_better_variant_gets_the_traffic_within_the_floors() -> None:
    spec = spec_of(THOMPSON)
    history, units = simulate(spec, {"control": 0.30, "warm": 0.45}, 20, 100, seed=1)
    for weights in history:
        assert weights["control"] >= 10 and weights["warm"] >= 10  # the floors hold
        assert sum(weights.values()) == pytest.approx(100)
    assert history[-1]["warm"] >= 85  # at most 90: the other variant keeps its 10
    assert units["warm"] > 1.5 * units["control"]


def test_three_variants_monte_carlo_is_seeded_and_finds_the_best() -> None:
    three = THOMPSON.replace(
        "weight: 50}\n  - {name: warm", "weight: 34}\n  - {name: warm"
    ).replace(
        "gpt-4o, weight: 50}",
        "gpt-4o, weight: 33}\n  - {name: brief, prompt: support-reply@1.1.0, weight: 33}",
    )
    spec = spec_of(three)
    rates = {"control": 0.30, "warm": 0.30, "brief": 0.42}
    history, _ = simulate(spec, rates, 15, 150, seed=3)
    assert history[-1]["brief"] >= 70
    assert min(min(w.values()) for w in history) >= 10
    # The same data give the same weights (seeded Monte Carlo), and the draws are logged.
    arms = {
        "control": ArmData(500, 0, 150),
        "warm": ArmData(500, 0, 160),
        "brief": ArmData(500, 0, 170),
    }
    first, second = thompson_round(spec, arms), thompson_round(spec, arms)
    assert not isinstance(first, str) and first[2] == "monte-carlo"
    assert first[0] == second[0]


def test_equal_variants_do_not_drift_beyond_noise() -> None:
    """Two equal arms: over 200 seeded experiments the traffic share of each averages 50%
    within three standard errors (no bias toward either), and the floors always hold."""
    spec = spec_of(THOMPSON)
    shares, finals = [], []
    for seed in range(200):
        history, units = simulate(spec, {"control": 0.3, "warm": 0.3}, 8, 60, seed=seed)
        shares.append(units["control"] / sum(units.values()))
        finals.append(history[-1]["control"])
        assert all(min(w.values()) >= 10 for w in history)
    shares_a, finals_a = np.array(shares), np.array(finals)
    assert abs(shares_a.mean() - 0.5) < 3 * shares_a.std(ddof=1) / np.sqrt(len(shares_a))
    assert abs(finals_a.mean() - 50) < 3 * finals_a.std(ddof=1) / np.sqrt(len(finals_a))


def test_continuous_primary_uses_a_normal_approximation_and_waits_for_data() -> None:
    text = THOMPSON.replace(
        "- {name: resolved, type: binary, direction: increase, baseline: 0.3, mde: 0.1}",
        "- {name: handle_time, type: continuous, direction: decrease, baseline: 300, sd: 60, mde: 10}",
    ).replace("primary: resolved", "primary: handle_time")
    spec = spec_of(text)
    assert "waiting for 2 values" in str(
        thompson_round(spec, {"control": ArmData(5, 1, 0, 300, 90000)})
    )
    n = 400  # control: mean 300, warm: mean 280 (lower is better), sd 60
    arms = {
        "control": ArmData(n, n, 0, 300 * n, n * (300**2 + 60**2)),
        "warm": ArmData(n, n, 0, 280 * n, n * (280**2 + 60**2)),
    }
    outcome = thompson_round(spec, arms)
    assert not isinstance(outcome, str)
    weights, posterior, _, _ = outcome
    assert dict(weights)["warm"] == pytest.approx(90, abs=0.01)
    assert posterior[1].se == pytest.approx(60 / np.sqrt(n), rel=0.01)


# --- the spec and lint -----------------------------------------------------------------------------


def lint_messages(repo: PromptRepo) -> list[str]:
    from promptyard.lint.runner import lint_repository
    from promptyard.repo.workspace import Workspace

    result = lint_repository(Workspace(repo.root))
    return [f"{f.rule} {f.message}" for f in result.findings if f.file == "experiments/tone.yaml"]


def test_lint_refuses_bad_allocation_values(tmp_path: Path) -> None:
    repo = make_experiment_repo(tmp_path)
    cases = {
        "allocation: bandit": "S002",
        "floor: 60": "X007 the variants' floors sum to 120%, above 100%",
        "reweight_every: soon": "E009 reweight_every: 'soon' is not a duration",
    }
    for line, message in cases.items():
        key = line.split(":")[0]
        kept = [row for row in THOMPSON.splitlines() if not row.startswith(f"{key}:")]
        repo.write("experiments/tone.yaml", "\n".join([*kept, line]) + "\n")
        found = lint_messages(repo)
        assert any(m.startswith(message) for m in found), (line, found)
    repo.write("experiments/tone.yaml", THOMPSON)
    assert lint_messages(repo) == []
    repo.write("experiments/tone.yaml", THOMPSON.replace("allocation: thompson\n", ""))
    [only] = lint_messages(repo)
    assert only.startswith("X007 reweight_every, floor only apply with `allocation: thompson`")
    per_variant = THOMPSON.replace(
        "weight: 50}\n  - {name: warm", "weight: 50, floor: 95}\n  - {name: warm"
    )
    repo.write("experiments/tone.yaml", per_variant)
    assert any("sum to 105%" in m for m in lint_messages(repo))
    repo.write("experiments/tone.yaml", THOMPSON.replace("floor: 10", "floor: 0"))
    assert any("floor below 0.01%" in m for m in lint_messages(repo))


# --- live: the registry service re-weights, logs, stays sticky; analyze accounts for it ------------

RATES = {"control": 0.15, "warm": 0.65}


def test_registry_service_reweights_from_outcomes_and_analyze_accounts_for_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from promptyard.registry.reconcile import GitSource, Reconciler
    from promptyard.registry.service import create_app

    repo = make_experiment_repo(tmp_path)
    repo.write("experiments/tone.yaml", THOMPSON)
    repo.commit("tone: thompson")
    store_path = tmp_path / "events.db"
    store = EventStore(store_path)
    rng = np.random.default_rng(16)
    first_variant: dict[str, str] = {}
    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    caplog.set_level(logging.INFO, logger="promptyard.experiments")

    def serve(http: httpx.Client, unit: str) -> str:
        answer = http.post(
            "/v1/prompts/support-reply/render", json={"variables": VARS, "key": unit}
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["variant"])

    def weights(http: httpx.Client) -> dict[str, float]:
        [live] = http.get("/v1/experiments").json()["experiments"]
        return dict(live["weights"])

    with (
        ThreadedServer(create_app(reconciler, events=store)) as service,
        httpx.Client(base_url=service.url, timeout=30) as http,
    ):
        assert weights(http) == {"control": 50, "warm": 50}
        n = 0
        while weights(http)["warm"] < 80:  # re-weighted every second as outcomes arrive
            assert n < 4000, "the better variant never got the traffic"
            unit = f"a{n:05d}"
            variant = first_variant[unit] = serve(http, unit)
            value = int(rng.random() < RATES[variant])
            http.post("/v1/feedback", json={"unit": unit, "metric": "resolved", "value": value})
            n += 1
        status = http.get("/v1/experiments").json()["experiments"][0]
        latest = status["changes"][-1]  # the last 20 are listed
        assert latest["weights"]["warm"] >= 80 and latest["previous"] != latest["weights"]
        arms = {arm["variant"]: arm for arm in latest["posterior"]}
        warm = arms["warm"]  # Beta(1 + successes, 1 + failures) over its exposed units
        assert (warm["alpha"], warm["beta"]) == (
            1 + round(warm["mean"] * warm["units"]),
            1 + warm["units"] - round(warm["mean"] * warm["units"]),
        )
        assert latest["time"] > 0 and latest["method"] == "exact"
        assert status["floors"] == {"control": 10, "warm": 10}
        # Units already assigned keep their variant, even those whose bucket now falls on
        # the other side of the moved edge.
        current = list(weights(http).items())
        spec = reconciler.snapshot.running_experiments()[0]  # type: ignore[union-attr]
        moved = [u for u, v in first_variant.items() if assign(u, spec, current) != v]
        assert moved, "no unit's bucket crossed the edge: the stickiness check proves nothing"
        for unit in moved[:30]:
            assert serve(http, unit) == first_variant[unit]
        # New units follow the new weights; a server-backed client gets them too.
        new = [serve(http, f"b{k:05d}") for k in range(300)]
        assert new.count("warm") / len(new) > 0.7
        # (Re-weighting goes on every second: compare with the weights of the same moment.)
        before = list(weights(http).values())
        running = http.get("/v1/prompts/support-reply").json()["running_experiment"]
        after = list(weights(http).values())
        assert [v["weight"] for v in running["variants"]] in (before, after)
        with Registry.from_server(service.url) as remote:
            served = [remote.render("support-reply", VARS, key=f"c{k}").variant for k in range(300)]
            assert served.count("warm") / len(served) > 0.7
    store.close()

    changes = [r for r in caplog.records if r.getMessage().startswith("experiment weights changed")]
    assert changes and '"previous": {"control": 50' in changes[0].getMessage()
    tables = read_events(store_path)
    assert tables.allocations is not None  # re-weighting went on until the server stopped
    assert len(tables.allocations) >= len(status["changes"])
    first_row = tables.allocations.iloc[0]
    assert json.loads(first_row["previous"]) == {"control": 50, "warm": 50}
    assert json.loads(first_row["posterior"])["method"] == "exact"

    result = repo.cli(
        "experiment", "analyze", "tone", "--events", str(store_path), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    analysis = json.loads(result.stdout)
    assert analysis["srm"]["flagged"] is False
    # Assignment and the exposure's timestamp are not atomic with a re-weighting, so a row
    # served in the instant the weights moved can be judged against the next epoch (seen
    # once on a loaded machine); wrong assignment code would mismatch a large share.
    assert analysis["assignment"]["share"] <= 0.01, analysis["assignment"]
    assert any("weights changed" in w for w in analysis["warnings"])
    # The same counts against the file's 50/50 would be a (false) sample ratio mismatch.
    observed = dict(zip(analysis["srm"]["variants"], analysis["srm"]["observed"], strict=True))
    assert srm_check(observed, {"control": 50, "warm": 50}).flagged

    # A restarted process continues from the stored weights and first exposures.
    spec = reconciler.snapshot.running_experiments()[0]  # type: ignore[union-attr]
    with EventStore(store_path) as reopened:
        live = LiveAllocations(reopened, lambda: [spec])
        stored = json.loads(tables.allocations["weights"].iloc[-1])  # the last change
        assert dict(live.weights(spec)) == stored
        assert all(live.assign(u, spec) == v for u, v in list(first_variant.items())[:200])
        live.close()
    reconciler.close()


def test_analyze_data_of_a_thompson_experiment_skips_srm_with_the_reason(tmp_path: Path) -> None:
    repo = make_experiment_repo(tmp_path)
    repo.write("experiments/tone.yaml", THOMPSON)
    rows = ["user_id,variant,resolved"] + [
        f"u{i},{'warm' if i % 5 else 'control'},{int(i % 3 == 0)}" for i in range(200)
    ]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    result = repo.cli("experiment", "analyze", "tone", "--data", str(tmp_path / "data.csv"))
    assert result.exit_code == 0, result.output
    assert "sample ratio not checked: allocation: thompson changes the weights" in result.stdout


# --- events are recorded by default, in the state folder ---------------------------------------------


def test_state_dir_follows_promptyard_then_xdg_then_home(tmp_path: Path) -> None:
    from promptyard.events import default_store_path, state_dir

    assert state_dir({"PROMPTYARD_STATE_DIR": str(tmp_path)}) == tmp_path
    assert state_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "promptyard"
    home = Path.home() / ".local" / "state" / "promptyard"
    assert state_dir({"XDG_STATE_HOME": "relative/ignored"}) == home
    assert default_store_path("gateway", {}) == home / "events-gateway.db"


def test_serve_records_events_by_default_and_not_with_no_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support.servers import ServeProcess

    repo = make_experiment_repo(tmp_path)
    state = tmp_path / "state"
    monkeypatch.setenv("PROMPTYARD_STATE_DIR", str(state))
    with ServeProcess("--poll", "0", cwd=repo.root, log=tmp_path / "serve.log") as served:
        rendered = httpx.post(
            f"{served.url}/v1/prompts/support-reply/render", json={"variables": VARS, "key": "u1"}
        )
        assert rendered.headers["x-promptyard-experiment"] == "tone"
        posted = httpx.post(
            f"{served.url}/v1/feedback", json={"unit": "u1", "metric": "resolved", "value": 1}
        )
        assert posted.status_code == 202
        assert f"events: {state / 'events-serve.db'}" in served.output()
    tables = read_events(state / "events-serve.db")  # committed at shutdown
    assert list(tables.exposures["unit"]) == ["u1"] and list(tables.outcomes["unit"]) == ["u1"]
    assert not list(repo.root.glob("*.db"))  # nothing in the working folder

    log = tmp_path / "off.log"
    with ServeProcess("--poll", "0", "--no-events", cwd=repo.root, log=log) as served:
        off = httpx.post(f"{served.url}/v1/feedback", json={"unit": "u", "metric": "m", "value": 1})
        assert off.status_code == 503
        assert "events: not recorded (--no-events)" in served.output()
    both = repo.run("serve", "--events", str(tmp_path / "x.db"), "--no-events")
    assert both.exit_code == 2 and "not both" in both.stderr


# --- capture: streamed answers are assembled and captured --------------------------------------------


def test_streamed_answers_text_and_tool_calls_are_captured(tmp_path: Path) -> None:
    import openai
    import yaml

    from promptyard.serving.gateway import create_gateway_app
    from promptyard.spec.gateway import GatewayConfig
    from support.openai_server import OpenAIServer
    from support.repo import make_repo
    from test_gateway_tools import AGENT
    from test_gateway_tools import VARS as AGENT_VARS

    repo = make_repo(tmp_path)
    repo.write("prompts/agent.yaml", yaml.safe_dump(AGENT, sort_keys=False))
    repo.set_environment("production", {"support-reply": "1.0.0", "agent": "1.0.0"})
    repo.commit("agent")
    repo.release()
    store_path = tmp_path / "events.db"
    store = EventStore(store_path)
    with (
        OpenAIServer() as upstream,
        Registry.from_repo(repo.root, ref="main") as registry,
    ):
        config = GatewayConfig.model_validate(
            {
                "endpoints": {"local": {"url": upstream.base_url}},
                "models": {"gpt-4o-mini": "local"},
                "capture": {"support-reply": 100, "agent": 100},
            }
        )
        app = create_gateway_app(registry, config, events=store, environ={})
        with (
            ThreadedServer(app) as gateway,
            openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0) as client,
        ):
            stream = client.chat.completions.create(
                model="prompt:support-reply",
                messages=[],
                stream=True,
                extra_body={"variables": {"company": "Acme", "ticket": "Streamed, please"}},
            )
            streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            assert streamed
            tools = client.chat.completions.create(
                model="prompt:agent", messages=[], stream=True, extra_body={"variables": AGENT_VARS}
            )
            assert [c for c in tools if c.choices]
    store.close()

    result = repo.cli(
        "capture", "support-reply", "--events", str(store_path), "-o", str(repo.path("c.jsonl"))
    )
    assert result.exit_code == 0, result.output
    [case] = repo.jsonl("c.jsonl")
    assert case["vars"]["ticket"] == "Streamed, please"
    assert case["metadata"]["production_answer"] == streamed  # assembled from the deltas
    result = repo.cli(
        "capture", "agent", "--events", str(store_path), "-o", str(repo.path("a.jsonl"))
    )
    assert result.exit_code == 0, result.output
    [call] = repo.jsonl("a.jsonl")[0]["metadata"]["production_tool_calls"]
    assert call["function"]["name"] == "lookup_order"
    assert json.loads(call["function"]["arguments"]) == {"order_id": "A7"}
    assert call["id"]


def test_gateway_learns_live_weights_from_its_own_store(tmp_path: Path) -> None:
    import openai

    from support.servers import wait_until
    from test_experiments_live import served_gateway

    repo = make_experiment_repo(tmp_path)
    repo.write("experiments/tone.yaml", THOMPSON)
    repo.commit("tone: thompson")
    store = EventStore(tmp_path / "events.db")
    rng = np.random.default_rng(7)
    with (
        served_gateway(repo, store) as (gateway, _),
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0) as client,
        httpx.Client(base_url=gateway.url) as http,
    ):
        [live] = http.get("/v1/experiments").json()["experiments"]
        assert (live["name"], live["weights"]) == ("tone", {"control": 50, "warm": 50})
        for n in range(150):
            raw = client.chat.completions.with_raw_response.create(
                model="prompt:support-reply",
                messages=[],
                user=f"g{n}",
                extra_body={"variables": VARS},
            )
            variant = raw.headers["x-promptyard-variant"]
            value = int(rng.random() < RATES[variant])
            http.post("/v1/feedback", json={"unit": f"g{n}", "metric": "resolved", "value": value})

        def moved() -> dict[str, float] | None:
            [now] = http.get("/v1/experiments").json()["experiments"]
            return now["weights"] if now["weights"]["warm"] > 80 else None

        weights = wait_until(moved, deadline_s=30)
        assert weights["control"] >= 10  # the floor
    store.close()
