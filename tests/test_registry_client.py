"""`promptyard.Registry`: resolution, rendering, sticky canaries, server caching, fallback."""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from pathlib import Path

import pytest

import promptyard
from promptyard.errors import InfraError
from promptyard.registry.client import Registry
from promptyard.registry.reconcile import GitSource, Reconciler
from promptyard.registry.service import create_app
from promptyard.registry.snapshot import PromptNotFound
from promptyard.release.bundle import build_bundle, bundle_bytes
from promptyard.render import RenderError, VariablesError
from promptyard.repo.workspace import Workspace
from support.repo import PromptRepo, make_repo
from support.servers import ThreadedServer, wait_until

VARS = {"company": "Acme", "ticket": "My order is late"}


def make_canary_repo(tmp_path: Path) -> PromptRepo:
    """support-reply 1.0.0 stable + 1.1.0 canary at 5%; greeter 1.0.0 + 1.0.1 canary at 50%."""
    repo = make_repo(tmp_path)
    repo.release()
    repo.set_prompt("support-reply", "1.1.0", greeting="Good day")
    repo.set_prompt("greeter", "1.0.1", greeting="Hey")
    repo.set_environment(
        "production",
        {"support-reply": ("1.0.0", "1.1.0", 5), "greeter": ("1.0.0", "1.0.1", 50)},
    )
    repo.commit("canaries")
    repo.release()
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> PromptRepo:
    return make_canary_repo(tmp_path)


def write_bundle(repo: PromptRepo, path: Path) -> Path:
    path.write_bytes(bundle_bytes(build_bundle(Workspace(repo.root), "main")))
    return path


def reference_in_canary(env: str, name: str, key: str, weight: float) -> bool:
    """docs/architecture.md §9, written out independently of promptyard.assignment."""
    digest = hashlib.sha256(f"{env}:{name}:{key}".encode()).hexdigest()
    return int(digest[:8], 16) % 10000 < weight * 100


def test_registry_is_exported_lazily() -> None:
    assert promptyard.Registry is Registry


def test_from_repo_resolves_labels_versions_and_renders(repo: PromptRepo) -> None:
    with Registry.from_repo(repo.root, ref="main") as registry:
        stable = registry.get("support-reply")
        assert (stable.version, stable.variant, stable.label) == ("1.0.0", "stable", "production")
        assert stable.canary == {"version": "1.1.0", "weight": 5.0}
        staging = registry.get("support-reply", label="staging")
        assert (staging.version, staging.canary) == ("1.0.0", None)
        explicit = registry.get("support-reply", version="1.1.0")
        assert (explicit.version, explicit.variant) == ("1.1.0", "explicit")

        out = registry.render("support-reply", VARS)
        assert out.messages == [
            {"role": "system", "content": "Hello from Acme.\nBe brief and friendly.\n\n\n"},
            {"role": "user", "content": "My order is late"},
        ]
        assert (out.model, out.provider) == ("gpt-4o-mini", "default")
        assert out.parameters == {"temperature": 0.2, "max_tokens": 400}
        assert (out.version, out.variant, out.is_fallback) == ("1.0.0", "stable", False)
        assert out.revision == registry.revision
        with_history = registry.render("support-reply", {**VARS, "history": ["Hi", "Where?"]})
        assert "Earlier: Hi\nEarlier: Where?\n" in with_history.messages[0]["content"]


def test_unknown_names_and_bad_variables_raise_typed_errors(repo: PromptRepo) -> None:
    with Registry.from_repo(repo.root) as registry:
        with pytest.raises(PromptNotFound, match="no prompt 'nope'"):
            registry.get("nope")
        with pytest.raises(PromptNotFound, match=r"no version 9\.9\.9; tagged versions: 1\.0\.0"):
            registry.get("support-reply", version="9.9.9")
        with pytest.raises(PromptNotFound, match="no label 'prod'"):
            registry.get("support-reply", label="prod")
        with pytest.raises(VariablesError, match="missing required variable 'ticket'"):
            registry.render("support-reply", {"company": "Acme"})
        with pytest.raises(VariablesError, match="variable 'history'"):
            registry.render("support-reply", {**VARS, "history": "not a list"})


def test_render_errors_from_the_template_are_typed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    text = repo.read("prompts/greeter.yaml").replace("{{ ticket }}", "{{ ticket.missing.attr }}")
    repo.write("prompts/greeter.yaml", text)
    repo.commit("a template that fails at render time")
    repo.release()
    with Registry.from_repo(repo.root) as registry, pytest.raises(RenderError):
        registry.render("greeter", VARS)


def test_canary_share_matches_its_weight_over_100k_keys(repo: PromptRepo) -> None:
    rng = random.Random(20240601)
    keys = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(100_000)]
    with Registry.from_repo(repo.root) as registry:
        for name, weight in (("support-reply", 5.0), ("greeter", 50.0)):
            canary = sum(registry.get(name, key=key).variant == "canary" for key in keys)
            share = 100.0 * canary / len(keys)
            assert abs(share - weight) <= 0.5, (name, share)
        # Without a key there is no assignment: always stable.
        assert {registry.get("greeter").variant for _ in range(50)} == {"stable"}


def test_assignment_is_sticky_across_sources_restarts_and_languages(
    repo: PromptRepo, tmp_path: Path
) -> None:
    keys = [f"user-{i}" for i in range(400)]
    expected = {k: reference_in_canary("production", "greeter", k, 50) for k in keys}
    bundle = write_bundle(repo, tmp_path / "bundle.json")
    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as server:
        registries = [
            Registry.from_repo(repo.root),
            Registry.from_repo(repo.root),  # a restart: a new process would do the same
            Registry.from_bundle(bundle),
            Registry.from_server(server.url),
        ]
        try:
            for registry in registries:
                seen = {k: registry.get("greeter", key=k).variant == "canary" for k in keys}
                assert seen == expected
        finally:
            for registry in registries:
                registry.close()


def test_from_bundle_serves_the_same_as_the_repository(repo: PromptRepo, tmp_path: Path) -> None:
    bundle = write_bundle(repo, tmp_path / "bundle.json")
    with Registry.from_repo(repo.root) as a, Registry.from_bundle(bundle) as b:
        assert a.revision == b.revision
        assert a.render("support-reply", VARS, key="k1") == b.render(
            "support-reply", VARS, key="k1"
        )


def test_from_repo_refresh_picks_up_new_commits(repo: PromptRepo) -> None:
    with Registry.from_repo(repo.root) as registry:
        before = registry.revision
        repo.set_environment("production", {"support-reply": "1.1.0", "greeter": "1.0.1"})
        repo.commit("promote both")
        assert registry.get("support-reply").version == "1.0.0"  # nothing re-read yet
        registry.refresh()
        assert registry.get("support-reply").version == "1.1.0"
        assert registry.revision != before


def test_renders_stay_consistent_while_the_registry_reconciles(repo: PromptRepo) -> None:
    greetings = {"1.0.0": "Hello", "1.1.0": "Good day"}
    registry = Registry.from_repo(repo.root)
    stop = threading.Event()
    errors: list[str] = []
    seen: set[str] = set()

    def hammer() -> None:
        while not stop.is_set():
            out = registry.render("support-reply", VARS)
            seen.add(out.version)
            if not out.messages[0]["content"].startswith(greetings[out.version]):
                errors.append(f"{out.version}: {out.messages[0]['content']!r}")
            time.sleep(0.0005)  # leave the GIL to the refreshing thread now and then

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for i in range(4):
            stable = "1.1.0" if i % 2 == 0 else "1.0.0"
            repo.set_environment("production", {"support-reply": stable, "greeter": "1.0.0"})
            repo.commit(f"flip {i}")
            registry.refresh()
            assert registry.get("support-reply").version == stable
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        registry.close()
    assert errors == []
    assert seen == {"1.0.0", "1.1.0"}


# --- server-backed ------------------------------------------------------------------------------


def test_from_server_caches_with_ttl_and_revalidates_in_the_background(
    repo: PromptRepo, tmp_path: Path
) -> None:
    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    server = ThreadedServer(create_app(reconciler)).__enter__()
    ttl = 0.3
    client = Registry.from_server(server.url, ttl=ttl)
    try:
        first = client.render("support-reply", VARS)
        assert (first.version, first.is_fallback) == ("1.0.0", False)
        assert first.revision == reconciler.snapshot.revision  # type: ignore[union-attr]

        repo.set_environment("production", {"support-reply": "1.1.0", "greeter": "1.0.0"})
        repo.commit("promote support-reply 1.1.0")
        assert reconciler.reconcile().outcome == "applied"
        assert client.get("support-reply").version == "1.0.0"  # fresh in the cache

        time.sleep(ttl)
        stale = client.get("support-reply")  # expired: answered stale, revalidated behind
        assert stale.version == "1.0.0"
        wait_until(lambda: client.get("support-reply").version == "1.1.0", 10)

        # The server goes away: the stale copy keeps answering, past its TTL.
        server.stop()
        time.sleep(ttl)
        assert client.get("support-reply").version == "1.1.0"
        wait_until(lambda: client.status()["last_error"], 10)
        assert client.render("support-reply", VARS).version == "1.1.0"
        # Explicit versions are immutable and stay cached too.
        assert client.get("support-reply", version="1.1.0").variant == "explicit"
    finally:
        client.close()
        server.stop()


def test_from_server_reports_404_from_the_server(repo: PromptRepo) -> None:
    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as server, Registry.from_server(server.url) as c:
        with pytest.raises(PromptNotFound, match="no prompt 'nope'"):
            c.get("nope")
        with pytest.raises(PromptNotFound, match="no label 'qa'"):
            c.get("greeter", label="qa")
        with pytest.raises(VariablesError):
            c.render("greeter", {})
        canary_keys = [
            k for k in map(str, range(200)) if c.get("greeter", key=k).variant == "canary"
        ]
        assert canary_keys and all(
            c.render("greeter", VARS, key=k).messages[0]["content"].startswith("Hey")
            for k in canary_keys[:5]
        )


def test_cold_client_with_the_server_down_uses_the_fallback_bundle(
    repo: PromptRepo, tmp_path: Path
) -> None:
    from support.servers import closed_port

    url = f"http://127.0.0.1:{closed_port()}"
    bundle = write_bundle(repo, tmp_path / "fallback.json")
    with Registry.from_server(url, fallback_bundle=bundle, timeout=1) as client:
        out = client.render("support-reply", VARS, key="k")
        assert out.is_fallback is True
        assert out.version in ("1.0.0", "1.1.0")
        assert client.get("greeter", version="1.0.1").is_fallback is True
    with Registry.from_server(url, timeout=1) as client, pytest.raises(InfraError):
        client.get("support-reply")


def test_the_catalog_is_the_same_from_every_source(repo: PromptRepo, tmp_path: Path) -> None:
    from support.servers import closed_port

    bundle = write_bundle(repo, tmp_path / "bundle.json")
    with Registry.from_repo(repo.root) as local:
        catalog = local.catalog()
    assert [e["name"] for e in catalog] == ["greeter", "support-reply"]
    assert catalog[1]["labels"]["production"] == {
        "version": "1.0.0",
        "canary": {"version": "1.1.0", "weight": 5.0},
    }
    reconciler = Reconciler(GitSource(str(repo.root), "main"))
    reconciler.start_up()
    with ThreadedServer(create_app(reconciler)) as server, Registry.from_server(server.url) as c:
        assert c.catalog() == catalog
    down = f"http://127.0.0.1:{closed_port()}"
    with Registry.from_server(down, fallback_bundle=bundle, timeout=1) as client:
        assert client.catalog() == catalog  # the fallback bundle answers
    with Registry.from_server(down, timeout=1) as client, pytest.raises(InfraError):
        client.catalog()


def test_from_repo_with_an_unreachable_remote_fails_or_falls_back(
    repo: PromptRepo, tmp_path: Path
) -> None:
    from support.servers import closed_port

    url = f"http://127.0.0.1:{closed_port()}/prompts.git"
    with pytest.raises(InfraError, match="unreachable"):
        Registry.from_repo(url)
    bundle = write_bundle(repo, tmp_path / "fallback.json")
    with Registry.from_repo(url, fallback_bundle=bundle) as registry:
        assert registry.get("support-reply").is_fallback is True
        assert registry.status()["state"] == "Degraded"
