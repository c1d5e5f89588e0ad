"""Rules about environment files (which version of each prompt serves where)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

import semver

from promptyard.documents import Loc
from promptyard.lint.context import LintContext
from promptyard.lint.registry import Hit, rule
from promptyard.release.analysis_sources import missing_data_source
from promptyard.repo.snapshot import LoadedFile
from promptyard.spec import EnvironmentSpec
from promptyard.spec.environment import strategy_problems


@rule("E001", kind="environment")
def unknown_pinned_prompt(ctx: LintContext, env: LoadedFile[EnvironmentSpec]) -> Iterator[Hit]:
    assert env.model and env.document
    for name in env.model.prompts:
        if not ctx.head.has_prompt(name):
            yield (
                env.path,
                env.document.locate(("prompts", name), key=True),
                f"prompt {name!r} does not exist under {ctx.head.paths.prompts}/; "
                "fix the name or remove the pin",
            )


@rule("E004", kind="environment")
def environment_name(ctx: LintContext, env: LoadedFile[EnvironmentSpec]) -> Iterator[Hit]:
    assert env.model and env.document
    stem = PurePosixPath(env.path).stem
    if env.model.environment != stem:
        yield (
            env.path,
            env.document.locate(("environment",)),
            f"environment {env.model.environment!r} does not match the file name; "
            f"set `environment: {stem}`",
        )


@rule("E005", kind="environment")
def untagged_pin(ctx: LintContext, env: LoadedFile[EnvironmentSpec]) -> Iterator[Hit]:
    assert env.model and env.document
    for name, pin in env.model.prompts.items():
        if not ctx.head.has_prompt(name):
            continue  # E001 reports it
        current = ctx.current_version(name)
        pins: list[tuple[Loc, str, str]] = [(("prompts", name, "version"), pin.version, "")]
        if pin.canary is not None:
            pins.append((("prompts", name, "canary", "version"), pin.canary.version, "canary "))
        for loc, version, role in pins:
            if ctx.is_pinnable(name, version):
                continue
            known = sorted(ctx.tagged_versions().get(name, set()), key=semver.Version.parse)
            have = f"tagged: {', '.join(known)}" if known else "no version is tagged yet"
            where = "at this ref" if ctx.base is None else "at this ref or at the base"
            yield (
                env.path,
                env.document.locate(loc),
                f"{role}version {version} of {name!r} has no tag prompts/{name}/v{version} and "
                f"is not the version {where} ({current or 'invalid'}); pin a tagged version "
                f"({have}) or the prompt's current version",
            )


@rule("E010", kind="environment")
def canary_strategy(ctx: LintContext, env: LoadedFile[EnvironmentSpec]) -> Iterator[Hit]:
    assert env.model and env.document
    for name, pin in env.model.prompts.items():
        if pin.canary is None:
            continue
        for loc, message in strategy_problems(pin.canary):
            yield (
                env.path,
                env.document.locate(("prompts", name, "canary", *loc)),
                f"{name} canary: {message}",
            )


@rule("E011", kind="environment")
def analysis_data_source(ctx: LintContext, env: LoadedFile[EnvironmentSpec]) -> Iterator[Hit]:
    assert env.model and env.document
    config = ctx.config
    for name, pin in env.model.prompts.items():
        if pin.canary is None or pin.canary.analysis is None or not ctx.head.has_prompt(name):
            continue
        spec = ctx.head.prompt(name).model
        if spec is None or config is None:
            continue  # the prompt's or the config's own problems are reported elsewhere
        loc = ("prompts", name, "canary", "analysis", "metrics")
        for metric in pin.canary.analysis.metrics.configured():
            missing = missing_data_source(metric, config, name, spec)
            if missing is not None:
                yield (
                    env.path,
                    env.document.locate((*loc, metric), key=True),
                    f"{name} canary: {metric} has no data source: {missing}, or remove the metric",
                )
