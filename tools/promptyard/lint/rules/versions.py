"""`lint --base`: the semver rules of docs/architecture.md §6 for every prompt that changed."""

from __future__ import annotations

from collections.abc import Iterator

from promptyard.lint.context import LintContext
from promptyard.lint.registry import Hit, rule
from promptyard.problems import Problem
from promptyard.release.semver import Bump, classify_change, next_version, version_bump
from promptyard.repo.snapshot import LoadedPrompt


@rule("R001", kind="change")  # also reports R002, R003, R004
def semver_bump(ctx: LintContext, head: LoadedPrompt, base: LoadedPrompt) -> Iterator[Hit]:
    assert head.model and head.document and base.model and base.document
    old, new = base.model.version, head.model.version
    where = head.document.locate(("version",))
    bump = version_bump(old, new)
    if bump is None:
        yield Problem.at(
            "R002", head.path, where, f"version went down from {old} to {new}; versions only go up"
        )
        return
    if head.content_hash == base.content_hash:
        if bump is not Bump.NONE:
            yield Problem.at(
                "R004",
                head.path,
                where,
                f"version bumped {old} -> {new} but the content is identical",
            )
        return
    changes = classify_change(
        base.model,
        base.document.data,
        base.resolution[0],
        head.model,
        head.document.data,
        head.resolution[0],
    )
    needed = changes[0].bump if changes else Bump.PATCH
    why = changes[0].reason if changes else _image_change(base, head) or "content changed"
    if bump is Bump.NONE:
        yield (
            head.path,
            where,
            f"content changed ({why}) but version is still {old}; bump it to at least "
            f"{next_version(old, needed)} ({needed.label})",
        )
    elif bump < needed:
        yield Problem.at(
            "R003",
            head.path,
            where,
            f"{old} -> {new} is a {bump.label} bump but {why}, which needs a {needed.label} "
            f"bump: use {next_version(old, needed)}",
        )


def _image_change(base: LoadedPrompt, head: LoadedPrompt) -> str | None:
    """Which fixed image files changed (their bytes are content, like a partial's text)."""
    old, new = base.static_images[0], head.static_images[0]
    changed = sorted(path for path in set(old) | set(new) if old.get(path) != new.get(path))
    return f"image file {', '.join(changed)} changed" if changed else None
