"""Rules about GPU serving cluster files (`serving/clusters/*.yaml`).

The checks live in `promptyard.serving.checks`, shared with `promptyard serving check`;
this module plugs them into the lint runner (their codes are in `promptyard.codes`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import PurePosixPath

from promptyard.errors import ConfigError
from promptyard.lint.context import LintContext
from promptyard.lint.registry import Hit, rule
from promptyard.repo.kinds import CLUSTERS, EXPERIMENTS
from promptyard.repo.snapshot import LoadedFile
from promptyard.serving.checks import (
    PinnedPrompts,
    check_cluster,
    served_models,
)
from promptyard.spec import ClusterSpec, EnvironmentSpec


def _pinned(ctx: LintContext) -> PinnedPrompts:
    """One per lint run: tag lookups and typical-input estimates are shared by clusters."""
    if "pinned_prompts" not in ctx.extra:
        ctx.extra["pinned_prompts"] = PinnedPrompts(ctx.workspace, ctx.head)
    pinned: PinnedPrompts = ctx.extra["pinned_prompts"]
    return pinned


@rule("K001", kind="cluster")
def cluster_checks(ctx: LintContext, cluster: LoadedFile[ClusterSpec]) -> Iterator[Hit]:
    """Every cluster check; each problem carries its own code (K001..K016)."""
    yield from check_cluster(ctx.head, cluster, _pinned(ctx))


@rule("E006", kind="environment")
def unknown_cluster(ctx: LintContext, env: LoadedFile[EnvironmentSpec]) -> Iterator[Hit]:
    assert env.model and env.document
    if env.model.cluster is None:
        return
    names = [PurePosixPath(p).stem for p in ctx.head.paths_of(CLUSTERS)]
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


@rule("E012", kind="environment")
def running_experiment(ctx: LintContext, env: LoadedFile[EnvironmentSpec]) -> Iterator[Hit]:
    assert env.model and env.document
    served = _cluster_models(ctx, env.model.cluster)
    for index, name in enumerate(env.model.experiments):
        where = env.document.locate(("experiments", index))
        try:
            experiment = ctx.head.named(EXPERIMENTS, name).model
        except ConfigError:
            yield (
                env.path,
                where,
                f"runs experiment {name!r}, but there is no "
                + (f"{ctx.head.paths.experiments}/{name}.yaml; create it or remove the name"),
            )
            continue
        if experiment is None:
            continue  # the experiment file's own problems are reported on it
        for variant in experiment.variants:
            tagged = ctx.tagged_versions().get(variant.prompt_name, set())
            if variant.prompt_version not in tagged:
                yield (
                    env.path,
                    where,
                    f"experiment {name} variant {variant.name} is {variant.prompt}, which is "
                    f"not released (no tag prompts/{variant.prompt_name}/"
                    f"v{variant.prompt_version}); run `promptyard release` first",
                )
                continue
            prompt = _pinned(ctx).get(variant.prompt_name, variant.prompt_version)
            model = variant.model or (prompt.model.model.name if prompt and prompt.model else None)
            if served is not None and model is not None and model not in served:
                yield (
                    env.path,
                    where,
                    f"experiment {name} variant {variant.name} uses model {model!r}, which "
                    f"cluster {env.model.cluster} does not serve (it serves: "
                    f"{', '.join(sorted(served)) or 'nothing'}); serve it or change the variant",
                )


def _cluster_models(ctx: LintContext, cluster: str | None) -> set[str] | None:
    """The models the cluster serves; None when there is no (valid) cluster to ask."""
    if cluster is None:
        return None
    try:
        spec = ctx.head.named(CLUSTERS, cluster).model
    except ConfigError:
        return None  # E011 reports an unknown cluster
    return set(served_models(spec)) if spec is not None else None
