"""Generating a cluster's manifest set, writing it atomically, and checking it for drift."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from promptyard.errors import CheckFailed, ConfigError
from promptyard.fsutil import atomic_write, ensure_inside
from promptyard.repo.kinds import CLUSTERS
from promptyard.repo.snapshot import LoadedFile, Snapshot
from promptyard.serving.manifests._base import DIFF_LINES, HEADER_MARK, _labels, dump_documents
from promptyard.serving.manifests.gateway import gateway_documents
from promptyard.serving.manifests.models import model_documents
from promptyard.serving.manifests.registry import bundle_documents, registry_documents
from promptyard.serving.manifests.rollout import alert_documents, rollout_documents
from promptyard.spec import ClusterSpec
from promptyard.spec.config import OnlineQuality, Price

# --- generation ---------------------------------------------------------------------------------


@dataclass
class ManifestSet:
    """The manifests of one cluster: file name (inside its folder) -> bytes, and documents."""

    cluster: str
    source: str
    kubernetes_version: str
    files: dict[str, bytes] = field(default_factory=dict)
    documents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, filename: str, documents: list[dict[str, Any]]) -> None:
        header = (
            f"{HEADER_MARK} from {self.source}.\n"
            "# Do not edit: change the cluster file and run it again (CI checks with --check).\n"
        )
        self.documents[filename] = documents
        self.files[filename] = dump_documents(documents, header)


def generate(
    loaded: LoadedFile[ClusterSpec],
    pricing: Mapping[str, Price],
    bundle: tuple[bytes, str] | None = None,
    online: OnlineQuality | None = None,
) -> ManifestSet:
    """Every manifest of a valid cluster file (pure: the same input, the same bytes)."""
    spec = loaded.require()
    out = ManifestSet(PurePosixPath(loaded.path).stem, loaded.path, spec.kubernetes_version)
    labels = _labels("promptyard", spec.namespace, "namespace", spec.name)
    out.add(
        "namespace.yaml",
        [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": spec.namespace, "labels": labels},
            }
        ],
    )
    for name, deployment in sorted(spec.deployments.items()):
        out.add(f"model-{name}.yaml", model_documents(spec, name, deployment, loaded.path))
    if spec.registry is not None:
        out.add("registry.yaml", registry_documents(spec))
    if spec.gateway is not None:
        out.add("gateway.yaml", gateway_documents(spec, pricing, online))
        out.add("alerts.yaml", alert_documents(spec))
    if spec.rollout is not None:
        out.add("rollout.yaml", rollout_documents(spec))
    if bundle is not None and (spec.registry is not None or spec.gateway is not None):
        out.add("bundle.yaml", bundle_documents(spec, *bundle))
    return out


def _errors_of(snapshot: Snapshot, workspace: Any, path: str) -> list[str]:
    """The error findings lint has for a cluster file (its problems and every check)."""
    from promptyard.codes import RULES
    from promptyard.serving.checks import PinnedPrompts, check_cluster

    loaded = snapshot.load(CLUSTERS, path)
    problems = list(loaded.problems)
    if loaded.model is not None:
        problems += check_cluster(snapshot, loaded, PinnedPrompts(workspace, snapshot))
    return [str(p) for p in sorted(problems) if RULES[p.code].severity == "error"]


def manifests_for(
    workspace: Any,
    clusters: Iterable[str] = (),
    bundle_path: Path | None = None,
) -> list[ManifestSet]:
    """The manifests of the named clusters (all when none are named) in the working tree.

    A cluster file with lint errors is refused (CheckFailed, exit 1) before anything is
    generated: manifests for a model that cannot fit would only fail in the cluster.
    """
    snapshot = workspace.snapshot()
    names = list(clusters)
    if names:
        loaded = [snapshot.named(CLUSTERS, name) for name in names]
    else:
        loaded = [snapshot.load(CLUSTERS, path) for path in snapshot.paths_of(CLUSTERS)]
    errors = [e for item in loaded for e in _errors_of(snapshot, workspace, item.path)]
    if errors:
        shown = "\n  ".join(errors[:5]) + (
            f"\n  (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        )
        raise CheckFailed(
            f"cluster file(s) have errors:\n  {shown}",
            hint="fix them first (`promptyard serving check`)",
        )
    bundle = None
    if bundle_path is not None:
        from promptyard.release.bundle import load_bundle, read_bundle

        document = read_bundle(bundle_path)
        load_bundle(document)  # refuse what a registry would refuse
        bundle = (bundle_path.read_bytes(), str(bundle_path))
    config = snapshot.config_file.require()
    return [generate(item, config.pricing, bundle, config.online_quality) for item in loaded]


# --- writing and drift ----------------------------------------------------------------------------


def _generated(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(HEADER_MARK)).decode("utf-8", "replace") == HEADER_MARK
    except OSError:
        return False


def _stale(sets: list[ManifestSet], out: Path, all_clusters: bool) -> list[Path]:
    """Generated files under `out` that the current generation does not produce."""
    wanted = {out / s.cluster / name for s in sets for name in s.files}
    folders = {out / s.cluster for s in sets}
    if all_clusters and out.is_dir():
        folders |= {p for p in out.iterdir() if p.is_dir()}
    stale = []
    for folder in sorted(folders):
        if folder.is_dir():
            stale += [p for p in sorted(folder.glob("*.yaml")) if p not in wanted and _generated(p)]
    return stale


@dataclass
class WriteResult:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"written": self.written, "unchanged": self.unchanged, "removed": self.removed}


def write_manifests(sets: list[ManifestSet], out: Path, *, all_clusters: bool) -> WriteResult:
    """Write every file atomically (unchanged files are not touched); remove stale ones.

    Everything is checked before anything is written: a path that a symbolic link carries
    out of `out`, or a hand-written file (no generated header) where a manifest would go,
    is a ConfigError (exit 2) and nothing changes.
    """
    planned: list[tuple[Path, bytes]] = []
    for manifest in sets:
        for name, data in manifest.files.items():
            path = out / manifest.cluster / name
            ensure_inside(path, out)  # serving/k8s/<cluster> may be a link planted by a PR
            planned.append((path, data))
    hand_written = [p for p, _ in planned if p.exists() and not _generated(p)]
    if hand_written:
        shown = ", ".join(str(p) for p in hand_written[:3])
        raise ConfigError(
            f"{shown}: not generated by promptyard (no `{HEADER_MARK}` header); refusing to "
            "overwrite",
            hint="move the file away, or point --out at another folder",
        )
    stale = _stale(sets, out, all_clusters)
    for path in stale:
        ensure_inside(path, out)
    result = WriteResult()
    for path, data in planned:
        try:
            same = path.read_bytes() == data
        except OSError:
            same = False
        if same:
            result.unchanged.append(str(path))
            continue
        atomic_write(path, data)
        result.written.append(str(path))
    for path in stale:
        path.unlink()
        result.removed.append(str(path))
    return result


@dataclass
class Drift:
    """What differs between the generated manifests and the files under `out`."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.stale)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "changed": self.changed,
            "missing": self.missing,
            "stale": self.stale,
            "diffs": self.diffs,
        }


def drift(
    sets: list[ManifestSet], out: Path, *, all_clusters: bool, root: Path | None = None
) -> Drift:
    """Compare the generated manifests with what is on disk under `out` (`--check`)."""
    result = Drift()

    def shown(path: Path) -> str:
        if root is not None:
            try:
                return path.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    for manifest in sets:
        for name, data in manifest.files.items():
            path = out / manifest.cluster / name
            result.checked += 1
            try:
                current = path.read_bytes()
            except OSError:
                result.missing.append(shown(path))
                continue
            if current != data:
                result.changed.append(shown(path))
                lines = difflib.unified_diff(
                    current.decode("utf-8", "replace").splitlines(),
                    data.decode("utf-8").splitlines(),
                    f"{shown(path)} (committed)",
                    f"{shown(path)} (generated)",
                    lineterm="",
                )
                result.diffs[shown(path)] = "\n".join(list(lines)[:DIFF_LINES])
    result.stale = [shown(p) for p in _stale(sets, out, all_clusters)]
    return result
