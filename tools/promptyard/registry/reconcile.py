"""The GitOps reconcile loop: pull, build a snapshot off the request path, verify, swap.

A `Source` knows where the truth lives: a local repository (re-read), a git URL (fetched
into a private clone), or a bundle file (re-read). `Reconciler.reconcile()` asks the source
for the current bundle document, verifies and loads it into a `ServedSnapshot`, and swaps it
in with one reference assignment. An invalid state (bad YAML, a pin without a tag, a hash
that does not verify, a moved tag) is refused: the last good snapshot keeps serving and the
status says Degraded and why; the next good state recovers by itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from promptyard.errors import ConfigError, InfraError, PromptyardError
from promptyard.registry.snapshot import ServedSnapshot
from promptyard.release.bundle import (
    BundleCache,
    BundleError,
    build_bundle,
    load_bundle,
    read_bundle,
)
from promptyard.repo import git

log = logging.getLogger("promptyard.registry")

SYNCED, DEGRADED, UNKNOWN = "Synced", "Degraded", "Unknown"


# --- sources -----------------------------------------------------------------------------------


class Source(ABC):
    """Where the registry's truth lives."""

    description: str
    branch: str | None = None

    @abstractmethod
    def load(self, previous: str | None) -> tuple[str, dict[str, Any] | None]:
        """(fingerprint, bundle document); the document is None when the fingerprint equals
        `previous` (nothing changed). InfraError when the source cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Release what the source holds (nothing by default)."""


def is_git_url(location: str) -> bool:
    """A URL git understands (scheme://, or scp-like user@host:path), not a local path."""
    if "://" in location:
        return True
    head, sep, _ = location.partition(":")
    return bool(sep) and "@" in head and "/" not in head


class GitSource(Source):
    """A repository: a local working copy re-read in place, or a URL fetched into a clone.

    Tags come from the repository (all of `refs/tags/prompts/*`); environment files come from
    `branch`. A remote is fetched into `workdir` (a private temporary folder by default).
    """

    def __init__(self, location: str, branch: str = "main", workdir: Path | None = None) -> None:
        from promptyard.repo.workspace import Workspace

        self.location = location
        self.branch = branch
        self.cache = BundleCache()
        self._remote = is_git_url(location) or _is_bare(Path(location))
        if self._remote:
            self.url = location if is_git_url(location) else Path(location).resolve().as_uri()
            self.description = self.url
            self._own_workdir = workdir is None
            self.workdir = workdir or Path(tempfile.mkdtemp(prefix="promptyard-serve-"))
            self._workspace: Any = None
            self.ref = f"refs/remotes/origin/{branch}"
        else:
            root = Path(location).resolve()
            usage = "give a repository folder, a bundle file or a git URL"
            if not root.exists():
                raise ConfigError(f"source {location} does not exist", hint=usage)
            if not root.is_dir():
                raise ConfigError(f"source {location} is not a folder or a bundle file", hint=usage)
            self.description = str(root)
            self._workspace = Workspace(root)
            try:
                self._workspace.git  # noqa: B018 - found now, not at the first reconcile
            except ConfigError:
                raise ConfigError(
                    f"source {location} is not inside a git repository", hint=usage
                ) from None
            self.ref = branch

    def close(self) -> None:
        """Remove the private clone (only when it lives in a folder this source created)."""
        if self._remote and self._own_workdir:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)

    def _clone(self) -> Any:
        """An empty repository with `origin` set: creating it never touches the network."""
        from promptyard.repo.workspace import Workspace

        git.init_mirror(self.workdir, self.url)
        return Workspace(self.workdir)

    def sync(self) -> Any:
        """Fetch (remote) and return the Workspace to read."""
        if not self._remote:
            return self._workspace
        if self._workspace is None:
            self._workspace = self._clone()
        git.fetch(
            self._workspace.git,
            "--prune",
            "--no-tags",
            "origin",
            f"+refs/heads/{self.branch}:{self.ref}",
            "+refs/tags/prompts/*:refs/tags/prompts/*",
            what=f"fetch {self.url}",
        )
        return self._workspace

    def load(self, previous: str | None) -> tuple[str, dict[str, Any] | None]:
        workspace = self.sync()
        commit = workspace.resolve_commit(self.ref)
        refs = git.list_refs(workspace.git, "%(refname) %(objectname)", "refs/tags/")
        fingerprint = hashlib.sha256(f"{commit.hexsha}\n{refs}".encode()).hexdigest()
        if fingerprint == previous:
            return fingerprint, None
        document = build_bundle(workspace, commit.hexsha, cache=self.cache, ref_label=self.branch)
        return fingerprint, document


def _is_bare(path: Path) -> bool:
    return path.is_dir() and (path / "HEAD").is_file() and (path / "objects").is_dir()


class BundleSource(Source):
    """A bundle file, re-read on every reconcile (replace it atomically to roll out)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path.resolve())

    def load(self, previous: str | None) -> tuple[str, dict[str, Any] | None]:
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            raise InfraError(f"bundle {self.path}: cannot read ({exc.strerror})") from None
        # Size and mtime first, so an unchanged file is not re-read on every poll.
        fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"
        if fingerprint == previous:
            return fingerprint, None
        return fingerprint, read_bundle(self.path)


def open_source(location: str, branch: str = "main", workdir: Path | None = None) -> Source:
    """A bundle file, a local repository or a git URL, by what `location` is."""
    if not is_git_url(location) and Path(location).is_file():
        return BundleSource(Path(location))
    return GitSource(location, branch, workdir)


def load_fallback(path: Path) -> ServedSnapshot:
    """A fallback bundle, read and verified; ConfigError naming the file when it is unusable.

    Called at start-up, not when the source fails: a broken fallback must be found before
    the outage it is there for.
    """
    try:
        bundle = load_bundle(read_bundle(path))
    except BundleError as exc:
        raise ConfigError(
            f"fallback bundle {path} does not verify: {exc.message}",
            hint="rebuild it with `promptyard bundle --out FILE`",
        ) from None
    except ConfigError as exc:  # unreadable, not JSON, not a bundle: the message names it
        raise ConfigError(f"fallback {exc.message}", hint=exc.hint) from None
    return ServedSnapshot(bundle, str(path), is_fallback=True)


# --- the reconciler ------------------------------------------------------------------------------


@dataclass
class ReconcileOutcome:
    """What one reconcile did: applied | unchanged | refused | unreachable | error."""

    outcome: str
    revision: str | None
    reason: str | None = None
    seconds: float = 0.0
    error: PromptyardError | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "revision": self.revision,
            "reason": self.reason,
            "seconds": round(self.seconds, 6),
        }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


class Reconciler:
    """Keeps `snapshot` equal to the last good state of a source (thread-safe)."""

    def __init__(self, source: Source, *, fallback_bundle: Path | None = None) -> None:
        self.source = source
        self.fallback_bundle = fallback_bundle
        self._fallback: ServedSnapshot | None = None  # verified by start_up()
        self.snapshot: ServedSnapshot | None = None  # swapped whole, never mutated
        self.poll: float | None = None
        self.listeners: list[Callable[[ReconcileOutcome, ServedSnapshot | None], None]] = []
        self._fingerprint: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = UNKNOWN
        self.reason: str | None = None
        self.last_outcome: ReconcileOutcome | None = None
        self.last_attempt: float | None = None
        self.last_success: float | None = None
        self.last_change: float | None = None
        self.counts: dict[str, int] = {}

    def reconcile(self, *, quiet: bool = False) -> ReconcileOutcome:
        """Pull the source once; swap in a new snapshot when it changed and verifies.

        Failures are logged unless `quiet` (the caller reports them itself).
        """
        with self._lock:
            started = time.perf_counter()
            self.last_attempt = time.time()
            current = self.snapshot
            try:
                fingerprint, document = self.source.load(
                    None if current is None or current.is_fallback else self._fingerprint
                )
                if document is None:
                    outcome = ReconcileOutcome("unchanged", current.revision if current else None)
                else:
                    previous = current.bundle if current and not current.is_fallback else None
                    bundle = load_bundle(document, previous=previous)
                    new = ServedSnapshot(bundle, self.source.description)
                    self.snapshot = new  # the atomic swap: one reference assignment
                    self._fingerprint = fingerprint
                    changed = current is None or current.revision != new.revision
                    if changed:
                        self.last_change = time.time()
                    outcome = ReconcileOutcome("applied" if changed else "unchanged", new.revision)
                self.state, self.reason = SYNCED, None
                self.last_success = time.time()
            except InfraError as exc:
                outcome = self._failed("unreachable", exc, quiet)
            except PromptyardError as exc:
                outcome = self._failed("refused", exc, quiet)
            except Exception as exc:  # a bug must not stop the loop or the serving
                log.exception("reconcile failed")
                outcome = self._failed(
                    "error", PromptyardError(f"internal error: {type(exc).__name__}: {exc}"), quiet
                )
            outcome.seconds = time.perf_counter() - started
            if outcome.outcome == "applied":
                log.info(
                    "reconcile applied: revision %s, commit %s (%.0f ms)",
                    (outcome.revision or "")[:12],
                    self.snapshot.commit[:12] if self.snapshot else "-",
                    outcome.seconds * 1000,
                )
            self.last_outcome = outcome
            self.counts[outcome.outcome] = self.counts.get(outcome.outcome, 0) + 1
            snapshot = self.snapshot
        for listener in self.listeners:
            listener(outcome, snapshot)
        return outcome

    def _failed(self, kind: str, exc: PromptyardError, quiet: bool) -> ReconcileOutcome:
        self.state = DEGRADED
        self.reason = exc.message
        if self.snapshot is not None and self.snapshot.is_fallback:
            self.reason = f"serving the fallback bundle: {exc.message}"
        if not quiet:
            log.warning("reconcile %s: %s", kind, exc.message)
        revision = self.snapshot.revision if self.snapshot else None
        return ReconcileOutcome(kind, revision, exc.message, error=exc)

    def use_fallback(self) -> ServedSnapshot:
        """Serve the fallback bundle (the source is unusable and nothing was served yet)."""
        if self.fallback_bundle is None:
            raise ConfigError("no fallback bundle configured")
        if self._fallback is None:
            self._fallback = load_fallback(self.fallback_bundle)
        snapshot = self._fallback
        with self._lock:
            self.snapshot = snapshot
            self.last_change = time.time()
            self.state = DEGRADED
            why = self.reason or "the source was never reached"
            self.reason = f"serving the fallback bundle: {why}"
        for listener in self.listeners:
            listener(ReconcileOutcome("fallback", snapshot.revision, self.reason), snapshot)
        return snapshot

    def start_up(self) -> ReconcileOutcome:
        """The first reconcile. When it yields nothing to serve: the fallback bundle if one is
        configured, else the error (InfraError for an unreachable git remote: exit 3).

        The fallback bundle is verified first, whether it is needed now or not: ConfigError
        (exit 2) naming it when it is unusable.
        """
        if self.fallback_bundle is not None and self._fallback is None:
            self._fallback = load_fallback(self.fallback_bundle)
        outcome = self.reconcile(quiet=True)
        if self.snapshot is None:
            if self.fallback_bundle is not None:
                self.use_fallback()
            elif outcome.error is not None:
                raise outcome.error
        return outcome

    # -- the background loop ------------------------------------------------------------------

    def start(self, poll: float) -> None:
        """Reconcile every `poll` seconds in a daemon thread until `stop()`."""
        self.poll = poll
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="promptyard-reconcile", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        assert self.poll is not None
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.reconcile()

    def stop(self) -> None:
        """Stop the background loop (a reconcile in progress finishes first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def close(self) -> None:
        """Stop the loop and release the source (a private clone is removed)."""
        self.stop()
        if self._lock.acquire(timeout=30):  # never remove a clone a reconcile is reading
            try:
                self.source.close()
            finally:
                self._lock.release()

    # -- status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What `GET /v1/status` returns."""
        snapshot = self.snapshot
        bundle = snapshot.bundle if snapshot else None
        return {
            "state": self.state,
            "reason": self.reason,
            "source": self.source.description,
            "branch": self.source.branch,
            "serving": None
            if snapshot is None
            else ("fallback-bundle" if snapshot.is_fallback else "source"),
            "revision": snapshot.revision if snapshot else None,
            "commit": snapshot.commit if snapshot else None,
            "snapshot_built_at": _iso(snapshot.built_at) if snapshot else None,
            "last_reconcile": _iso(self.last_attempt),
            "last_outcome": self.last_outcome.to_dict() if self.last_outcome else None,
            "last_success": _iso(self.last_success),
            "last_change": _iso(self.last_change),
            "poll_seconds": self.poll,
            "reconciles": dict(sorted(dict(self.counts).items())),
            "prompts": len(bundle.prompts) if bundle else 0,
            "versions": sum(len(v) for v in bundle.prompts.values()) if bundle else 0,
            "labels": snapshot.labels() if snapshot else [],
        }
