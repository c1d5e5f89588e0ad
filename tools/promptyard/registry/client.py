"""`promptyard.Registry`: resolve and render released prompts from an application.

Three ways to build one, one API:

```python
from promptyard import Registry

registry = Registry.from_repo(".", ref="main")          # tags + environment files in git
registry = Registry.from_bundle("prompts.bundle.json")  # a file built by `promptyard bundle`
registry = Registry.from_server("http://registry:8700", fallback_bundle="prompts.bundle.json")

out = registry.render("support-reply", {"company": "Acme", "ticket": "..."}, key=user_id)
out.messages, out.model, out.parameters, out.version, out.variant, out.is_fallback
```

A repository or bundle registry holds a verified `ServedSnapshot` and renders in-process
(`refresh()` re-reads its source; `poll=` does so in the background). A server-backed
registry fetches each label's resolution and each version's definition over HTTP, verifies
the content hash, and renders locally: label entries are cached for `ttl` seconds, then
served stale while one background request revalidates them; when the server errors the stale
copy stays; with nothing cached and the server down, a local `fallback_bundle` answers (and
results say `is_fallback=True`). Versions are immutable, so their definitions never expire.
Every method is thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from promptyard.assignment import bucket, in_canary, pick
from promptyard.errors import ConfigError, InfraError
from promptyard.registry.reconcile import (
    BundleSource,
    GitSource,
    Reconciler,
    load_fallback,
    open_source,
)
from promptyard.registry.snapshot import (
    CANARY,
    DEFAULT_LABEL,
    EXPLICIT,
    STABLE,
    PromptNotFound,
    ResolvedPrompt,
    ServedSnapshot,
)
from promptyard.release.bundle import BundledPrompt, BundleError, load_prompt_entry
from promptyard.render import RenderResult
from promptyard.spec.bundle import BundleEntry

log = logging.getLogger("promptyard.registry")

DEFAULT_TTL_S = 60.0
DEFAULT_TIMEOUT_S = 5.0
MAX_CACHED_VERSIONS = 4096

if TYPE_CHECKING:
    from promptyard.allocation import LiveAllocations
    from promptyard.events import EventRecorder, EventStore


class Registry:
    """Resolve `name` + (`version` | `label`) to a released prompt, and render it."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend
        self._events: EventRecorder | None = None

    def record_exposures(self, events: EventRecorder | None) -> None:
        """Record an exposure for each render an experiment assigned (None: stop)."""
        self._events = events

    def learn_allocations(self, store: EventStore | None) -> LiveAllocations | None:
        """Assign `allocation: thompson` experiments with live weights learned from `store`
        (`promptyard.allocation`); the caller starts and closes what is returned. None for
        a server-backed registry: the server learns, and its weights reach this client."""
        return self._backend.learn_allocations(store)

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_repo(
        cls,
        path: str | Path = ".",
        ref: str = "main",
        *,
        poll: float | None = None,
        fallback_bundle: str | Path | None = None,
    ) -> Registry:
        """Tags and the environment files at `ref` of a local repository (or a git URL)."""
        fallback = Path(fallback_bundle) if fallback_bundle else None
        reconciler = Reconciler(GitSource(str(path), ref), fallback_bundle=fallback)
        return cls._local(reconciler, poll)

    @classmethod
    def from_source(
        cls,
        location: str | Path,
        ref: str = "main",
        *,
        poll: float | None = None,
        fallback_bundle: str | Path | None = None,
    ) -> Registry:
        """A bundle file, a local repository or a git URL, by what `location` is (as
        `promptyard serve --source` decides)."""
        fallback = Path(fallback_bundle) if fallback_bundle else None
        reconciler = Reconciler(open_source(str(location), ref), fallback_bundle=fallback)
        return cls._local(reconciler, poll)

    @classmethod
    def from_bundle(cls, path: str | Path, *, poll: float | None = None) -> Registry:
        """A bundle file written by `promptyard bundle`."""
        return cls._local(Reconciler(BundleSource(Path(path))), poll)

    @classmethod
    def from_server(
        cls,
        url: str,
        *,
        ttl: float = DEFAULT_TTL_S,
        timeout: float = DEFAULT_TIMEOUT_S,
        fallback_bundle: str | Path | None = None,
    ) -> Registry:
        """A `promptyard serve` instance at `url` (see the module docstring for caching)."""
        fallback = Path(fallback_bundle) if fallback_bundle else None
        return cls(_ServerBackend(url, ttl=ttl, timeout=timeout, fallback_bundle=fallback))

    @classmethod
    def _local(cls, reconciler: Reconciler, poll: float | None) -> Registry:
        try:
            reconciler.start_up()
        except BaseException:
            reconciler.close()  # a private clone must not outlive a failed start
            raise
        if poll:
            reconciler.start(poll)
        return cls(_LocalBackend(reconciler))

    # -- the API --------------------------------------------------------------------------------

    def get(
        self,
        name: str,
        version: str | None = None,
        label: str = DEFAULT_LABEL,
        key: str | None = None,
    ) -> ResolvedPrompt:
        """The released prompt for `version`, or the one `label` pins (its canary for `key`).

        Raises PromptNotFound for an unknown prompt, version or label.
        """
        return self._backend.resolve(name, version, label, key)

    def render(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        label: str = DEFAULT_LABEL,
        key: str | None = None,
        version: str | None = None,
    ) -> RenderResult:
        """Render the resolved prompt: messages, model, parameters, version, variant, ...

        Raises PromptNotFound, or VariablesError / RenderError for bad variables. With a
        running experiment, `key` is its unit: `variant` and `experiment` say what it got.
        """
        rendered = self._backend.resolve(name, version, label, key).render(variables)
        if self._events is not None and key is not None:
            self._events.exposure(rendered, key)
        return rendered

    def catalog(self) -> list[dict[str, Any]]:
        """Every prompt, its tagged versions and what each label pins (`GET /v1/prompts`).

        A server-backed registry asks the server each time (its fallback bundle answers when
        the server cannot); InfraError when nothing can answer.
        """
        return self._backend.catalog()

    def refresh(self) -> None:
        """Re-read the source now (repository, bundle) or drop cached labels (server)."""
        self._backend.refresh()

    def status(self) -> dict[str, Any]:
        return self._backend.status()

    @property
    def revision(self) -> str | None:
        """The bundle hash of what this registry currently serves (None before anything)."""
        return self._backend.revision()

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Backend:
    def resolve(
        self, name: str, version: str | None, label: str, key: str | None
    ) -> ResolvedPrompt:
        raise NotImplementedError

    def catalog(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def refresh(self) -> None:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        raise NotImplementedError

    def revision(self) -> str | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def learn_allocations(self, store: EventStore | None) -> LiveAllocations | None:
        return None


class _LocalBackend(_Backend):
    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self.allocations: LiveAllocations | None = None

    def learn_allocations(self, store: EventStore | None) -> LiveAllocations | None:
        from promptyard.allocation import LiveAllocations

        self.allocations = LiveAllocations.of(self.reconciler, store)
        return self.allocations

    def _snapshot(self) -> ServedSnapshot:
        snapshot = self.reconciler.snapshot
        if snapshot is None:  # start_up raised, so this is only reachable after close()
            raise InfraError("the registry has nothing to serve")
        return snapshot

    def resolve(
        self, name: str, version: str | None, label: str, key: str | None
    ) -> ResolvedPrompt:
        return self._snapshot().resolve(name, version, label, key, self.allocations)

    def catalog(self) -> list[dict[str, Any]]:
        return self._snapshot().catalog()

    def refresh(self) -> None:
        outcome = self.reconciler.reconcile()
        if outcome.error is not None:
            raise outcome.error

    def status(self) -> dict[str, Any]:
        return self.reconciler.status()

    def revision(self) -> str | None:
        snapshot = self.reconciler.snapshot
        return snapshot.revision if snapshot else None

    def close(self) -> None:
        self.reconciler.close()


# --- the server-backed client ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LabelEntry:
    stable: BundledPrompt
    canary_version: str | None
    weight: float
    revision: str
    fetched_at: float
    running: _Running | None = None


@dataclass(frozen=True, slots=True)
class _Running:
    """The experiment running on a prompt in a label, as the server described it."""

    name: str
    salt: str
    variants: dict[str, tuple[str, str, str | None]]  # variant -> (prompt, version, model)
    weights: list[tuple[str, float]]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> _Running:
        variants = {
            str(v["name"]): (str(v["prompt"]), str(v["version"]), v.get("model"))
            for v in data["variants"]
        }
        weights = [(str(v["name"]), float(v["weight"])) for v in data["variants"]]
        return cls(str(data["name"]), str(data["salt"]), variants, weights)


class _ServerError(Exception):
    """The server could not answer (unreachable, 5xx, garbage): use stale or fallback."""


class _ServerBackend(_Backend):
    def __init__(
        self, url: str, *, ttl: float, timeout: float, fallback_bundle: Path | None
    ) -> None:
        import httpx

        if ttl < 0:
            raise ConfigError("ttl must be >= 0 seconds")
        self.url = url.rstrip("/")
        self.ttl = ttl
        self.fallback_bundle = fallback_bundle
        # Verified now: a broken fallback must show before the outage it is there for.
        self._fallback = load_fallback(fallback_bundle) if fallback_bundle else None
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._lock = threading.Lock()
        self._labels: dict[tuple[str, str], _LabelEntry] = {}
        self._versions: OrderedDict[tuple[str, str], BundledPrompt] = OrderedDict()
        self._refreshing: set[tuple[str, str]] = set()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="promptyard-swr")
        self._last_error: str | None = None

    # -- HTTP -------------------------------------------------------------------------------------

    def _fetch(self, name: str, params: dict[str, str]) -> dict[str, Any]:
        return self._get_json(f"/v1/prompts/{quote(name, safe='/')}", params)

    def _get_json(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET a JSON object from the server; PromptNotFound on 404, else _ServerError."""
        import httpx

        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise _ServerError(f"{self.url} unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code == 404:
            raise PromptNotFound(_error_message(response))
        if response.status_code != 200:
            raise _ServerError(f"{self.url} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise _ServerError(f"{self.url} answered with invalid JSON") from None
        if not isinstance(body, dict):
            raise _ServerError(f"{self.url} answered with an unexpected document")
        return body

    def _definition(self, body: dict[str, Any]) -> BundledPrompt:
        """Load a definition the server sent, re-checking its content hash."""
        try:
            entry = BundleEntry(
                tag=body["tag"],
                commit=body["commit"],
                content_hash=body["content_hash"],
                path=body["path"],
                source=body["source"],
                spec=body["spec"],
                partials=body.get("partials") or {},
                images=body.get("images") or {},
            )
            prompt = load_prompt_entry(body["name"], body["version"], entry)
        except (KeyError, TypeError, ValueError, BundleError) as exc:
            raise _ServerError(
                f"{self.url} sent a definition that does not verify: {exc}"
            ) from None
        key = (prompt.name, prompt.version)
        with self._lock:
            cached = self._versions.get(key)
            if cached is not None and cached.content_hash == prompt.content_hash:
                self._versions.move_to_end(key)
                return cached
            self._versions[key] = prompt
            while len(self._versions) > MAX_CACHED_VERSIONS:
                self._versions.popitem(last=False)
        return prompt

    def _fetch_label(self, name: str, label: str) -> _LabelEntry:
        body = self._fetch(name, {"label": label})
        stable = self._definition(body)
        try:
            canary = body.get("canary") or None
            running = body.get("running_experiment") or None
            return _LabelEntry(
                stable=stable,
                canary_version=str(canary["version"]) if canary else None,
                weight=float(canary["weight"]) if canary else 0.0,
                revision=str(body.get("revision", "")),
                fetched_at=time.monotonic(),
                running=_Running.parse(running) if running else None,
            )
        except (KeyError, TypeError, ValueError):
            raise _ServerError(
                f"{self.url} sent a malformed canary or experiment for {name}@{label}"
            ) from None

    def _version(self, name: str, version: str) -> BundledPrompt:
        with self._lock:
            cached = self._versions.get((name, version))
        if cached is not None:
            return cached
        return self._definition(self._fetch(name, {"version": version}))

    # -- caching ----------------------------------------------------------------------------------

    def _revalidate(self, key: tuple[str, str]) -> None:
        try:
            entry = self._fetch_label(*key)
        except PromptNotFound:
            with self._lock:
                self._labels.pop(key, None)  # the next call asks again and gets the 404
        except _ServerError as exc:
            self._last_error = str(exc)
            log.warning("revalidating %s@%s failed, keeping the stale copy: %s", *key, exc)
        else:
            with self._lock:
                self._labels[key] = entry
            self._last_error = None
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _label(self, name: str, label: str) -> _LabelEntry | None:
        """The label entry (stale ones revalidate in the background); None when cold and down."""
        key = (name, label)
        with self._lock:
            entry = self._labels.get(key)
            start_refresh = (
                entry is not None
                and time.monotonic() - entry.fetched_at >= self.ttl
                and key not in self._refreshing
            )
            if start_refresh:
                self._refreshing.add(key)
        if entry is not None:
            if start_refresh:
                self._pool.submit(self._revalidate, key)
            return entry
        try:
            entry = self._fetch_label(name, label)
        except _ServerError as exc:
            self._last_error = str(exc)
            return None
        with self._lock:
            self._labels[key] = entry
        return entry

    def _fallback_snapshot(self, why: str) -> ServedSnapshot:
        if self.fallback_bundle is None:
            raise InfraError(why, hint="pass fallback_bundle= so a cold client can still answer")
        assert self._fallback is not None  # loaded with the backend
        return self._fallback

    def resolve(
        self, name: str, version: str | None, label: str, key: str | None
    ) -> ResolvedPrompt:
        label = label or DEFAULT_LABEL
        try:
            if version is not None:
                prompt = self._version(name, version)
                return ResolvedPrompt(prompt, EXPLICIT, None, None, None)
            entry = self._label(name, label)
            if entry is None:
                return self._fallback_snapshot(self._last_error or "server unreachable").resolve(
                    name, None, label, key
                )
            if entry.running is not None and key is not None:
                return self._assigned(entry.running, label, key, entry.revision)
            canary = (
                {"version": entry.canary_version, "weight": entry.weight}
                if entry.canary_version
                else None
            )
            if (
                entry.canary_version is not None
                and key is not None
                and in_canary(label, name, key, entry.weight)
            ):
                prompt = self._version(name, entry.canary_version)
                return ResolvedPrompt(prompt, CANARY, label, canary, entry.revision)
            return ResolvedPrompt(entry.stable, STABLE, label, canary, entry.revision)
        except _ServerError as exc:  # a version fetch failed with nothing cached
            return self._fallback_snapshot(str(exc)).resolve(name, version, label, key)

    def _assigned(self, running: _Running, label: str, key: str, revision: str) -> ResolvedPrompt:
        """The variant `assign` gives unit `key` (the same formula the server uses)."""
        variant = pick(bucket(running.salt, str(key)), running.weights)
        prompt_name, version, model = running.variants[variant]
        prompt = self._version(prompt_name, version)
        return ResolvedPrompt(
            prompt, variant, label, None, revision, experiment=running.name, model=model
        )

    def catalog(self) -> list[dict[str, Any]]:
        try:
            prompts = self._get_json("/v1/prompts").get("prompts")
            if not isinstance(prompts, list):
                raise _ServerError(f"{self.url} answered with an unexpected document")
        except _ServerError as exc:
            return self._fallback_snapshot(str(exc)).catalog()
        return prompts

    def refresh(self) -> None:
        with self._lock:
            self._labels.clear()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "source": self.url,
                "cached_labels": len(self._labels),
                "cached_versions": len(self._versions),
                "ttl_seconds": self.ttl,
                "last_error": self._last_error,
                "fallback_loaded": self._fallback is not None,
            }

    def revision(self) -> str | None:
        with self._lock:
            newest = max(self._labels.values(), key=lambda e: e.fetched_at, default=None)
        return newest.revision if newest else None

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()


def _error_message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"not found ({response.request.url})"
