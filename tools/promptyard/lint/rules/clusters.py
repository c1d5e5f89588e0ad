"""Rules about GPU serving cluster files (`serving/clusters/*.yaml`).

The checks live in `promptyard.serving.checks`, shared with `promptyard serving check`;
this module declares their codes and plugs them into the lint runner.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import PurePosixPath

from promptyard.lint.context import LintContext
from promptyard.lint.registry import Hit, declare, rule
from promptyard.serving.checks import (
    CLUSTER_RULES,
    UNKNOWN_CLUSTER_RULE,
    PinnedPrompts,
    check_cluster,
)
from promptyard.spec import ClusterSpec, EnvironmentSpec
from promptyard.workspace import LoadedFile

for _code, _name, _severity, _summary in CLUSTER_RULES:
    declare(_code, _name, _severity, _summary)  # type: ignore[arg-type]


def _pinned(ctx: LintContext) -> PinnedPrompts:
    """One per lint run: tag lookups and typical-input estimates are shared by clusters."""
    if "pinned_prompts" not in ctx.extra:
        ctx.extra["pinned_prompts"] = PinnedPrompts(ctx.workspace, ctx.head)
    pinned: PinnedPrompts = ctx.extra["pinned_prompts"]
    return pinned


@rule(*CLUSTER_RULES[0], kind="cluster")  # type: ignore[arg-type]
def cluster_checks(ctx: LintContext, cluster: LoadedFile[ClusterSpec]) -> Iterator[Hit]:
    """Every cluster check; each problem carries its own code (K001..K016)."""
    yield from check_cluster(ctx.head, cluster, _pinned(ctx))


@rule(*UNKNOWN_CLUSTER_RULE, kind="environment")  # type: ignore[arg-type]
def unknown_cluster(ctx: LintContext, env: LoadedFile[EnvironmentSpec]) -> Iterator[Hit]:
    assert env.model and env.document
    if env.model.cluster is None:
        return
    names = [PurePosixPath(p).stem for p in ctx.head.cluster_paths()]
    if env.model.cluster in names:
        return
    close = difflib.get_close_matches(env.model.cluster, names, n=1)
    folder = ctx.head.paths.clusters
    fix = f"did you mean {close[0]!r}?" if close else f"create {folder}/{env.model.cluster}.yaml"
    yield (
        env.path,
        env.document.locate(("cluster",)),
        f"cluster {env.model.cluster!r} has no file under {folder}/; {fix}",
    )
