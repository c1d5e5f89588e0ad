"""`promptyard serving check`: the memory budget of every deployment, and the findings.

The findings are lint's, for the cluster files: the caller passes
`promptyard.lint.cluster_findings`, which runs the very checks of `promptyard.serving.checks`
(serving does not import lint, which imports serving). The budget table comes from the same
arithmetic (`promptyard.serving.fit`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Generic, Protocol, TypeVar

from promptyard.repo.kinds import CLUSTERS
from promptyard.repo.workspace import Workspace
from promptyard.serving.fit import Fit, deployment_fit, startup_estimate_s


@dataclass
class DeploymentBudget:
    """One model deployment's per-GPU memory budget (None when its pool is unknown)."""

    cluster: str
    deployment: str
    pool: str
    gpu: str | None
    fit: Fit | None
    startup_estimate_s: float
    startup_window_s: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "deployment": self.deployment,
            "pool": self.pool,
            "gpu": self.gpu,
            "budget": self.fit.to_dict() if self.fit else None,
            "startup_estimate_s": round(self.startup_estimate_s),
            "startup_window_s": self.startup_window_s,
        }


class LintOutcome(Protocol):
    """What a serving check needs of a lint result (`promptyard.lint.LintResult`)."""

    @property
    def ok(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


L = TypeVar("L", bound=LintOutcome)


@dataclass
class ServingCheck(Generic[L]):
    clusters: list[str]
    budgets: list[DeploymentBudget] = field(default_factory=list)
    lint: L | None = None
    invalid: list[str] = field(default_factory=list)  # cluster files whose model did not load

    @property
    def ok(self) -> bool:
        return self.lint is None or self.lint.ok

    def to_dict(self) -> dict[str, Any]:
        lint = self.lint.to_dict() if self.lint else None
        return {
            "ok": self.ok,
            "clusters": self.clusters,
            "deployments": [b.to_dict() for b in self.budgets],
            "errors": lint["errors"] if lint else 0,
            "warnings": lint["warnings"] if lint else 0,
            "findings": lint["findings"] if lint else [],
        }


def check_clusters(
    workspace: Workspace,
    names: list[str] | None = None,
    *,
    lint: Callable[[Workspace, Sequence[str]], L],
) -> ServingCheck[L]:
    """Check the named cluster files of the working tree (all when `names` is empty);
    `lint(workspace, paths)` lints those files."""
    snapshot = workspace.snapshot()
    if names:
        paths = [snapshot.named(CLUSTERS, name).path for name in names]
    else:
        paths = snapshot.paths_of(CLUSTERS)
    result: ServingCheck[L] = ServingCheck([PurePosixPath(p).stem for p in paths])
    if not paths:
        return result
    result.lint = lint(workspace, paths)
    for path in paths:
        loaded = snapshot.load(CLUSTERS, path)
        spec = loaded.model
        if spec is None:
            result.invalid.append(path)
            continue
        for name, deployment in spec.deployments.items():
            pool = spec.node_pools.get(deployment.pool)
            result.budgets.append(
                DeploymentBudget(
                    cluster=PurePosixPath(path).stem,
                    deployment=name,
                    pool=deployment.pool,
                    gpu=pool.gpu if pool else None,
                    fit=deployment_fit(deployment, pool) if pool else None,
                    startup_estimate_s=startup_estimate_s(deployment, spec.weights_load_gib_per_s),
                    startup_window_s=deployment.probes.startup_seconds,
                )
            )
    return result
