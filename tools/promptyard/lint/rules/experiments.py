"""Rules about A/B experiment files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from promptyard.lint.context import LintContext
from promptyard.lint.registry import Hit, rule
from promptyard.repo.snapshot import LoadedFile
from promptyard.spec import ExperimentSpec


@rule("X002", kind="experiment")
def unknown_prompt(ctx: LintContext, exp: LoadedFile[ExperimentSpec]) -> Iterator[Hit]:
    assert exp.model and exp.document
    for index, variant in enumerate(exp.model.variants):
        if not ctx.head.has_prompt(variant.prompt_name):
            yield (
                exp.path,
                exp.document.locate(("variants", index, "prompt")),
                f"variant {variant.name!r}: prompt {variant.prompt_name!r} does not exist",
            )


@rule("X004", kind="experiment")
def experiment_name(ctx: LintContext, exp: LoadedFile[ExperimentSpec]) -> Iterator[Hit]:
    assert exp.model and exp.document
    stem = PurePosixPath(exp.path).stem
    if exp.model.name != stem:
        yield (
            exp.path,
            exp.document.locate(("name",)),
            f"name {exp.model.name!r} does not match the file name; set `name: {stem}`",
        )


@rule("X006", kind="experiment")
def unreleased_variant(ctx: LintContext, exp: LoadedFile[ExperimentSpec]) -> Iterator[Hit]:
    assert exp.model and exp.document
    for index, variant in enumerate(exp.model.variants):
        name, version = variant.prompt_name, variant.prompt_version
        if not ctx.head.has_prompt(name) or ctx.is_pinnable(name, version):
            continue  # a missing prompt is X002's
        yield (
            exp.path,
            exp.document.locate(("variants", index, "prompt")),
            f"variant {variant.name!r}: {name}@{version} is neither released (no tag "
            f"prompts/{name}/v{version}) nor the prompt's current version "
            f"({ctx.current_version(name) or 'invalid'})",
        )
