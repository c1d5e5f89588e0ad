"""Rules about the project config, promptyard.yaml."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from promptyard.documents import START
from promptyard.evals.providers import PROVIDERS
from promptyard.lint.context import LintContext
from promptyard.lint.registry import Hit, rule
from promptyard.repo.snapshot import CONFIG_FILE
from promptyard.repo.trees import WorkingTree
from promptyard.repo.workspace import STATE_FOLDER


@rule("C001", kind="project")
def unknown_provider_type(ctx: LintContext) -> Iterator[Hit]:
    config = ctx.config
    if config is None:
        return
    document = ctx.head.config_file.document
    known = sorted(PROVIDERS)
    for name, provider in config.providers.items():
        if provider.type in PROVIDERS:
            continue
        close = difflib.get_close_matches(provider.type, known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"known types: {', '.join(known)}"
        where = document.locate(("providers", name, "type")) if document else START
        yield (CONFIG_FILE, where, f"provider {name!r} has unknown type {provider.type!r}; {fix}")


@rule("C002", kind="project")
def link_leaves_repository(ctx: LintContext) -> Iterator[Hit]:
    # Reads refuse to follow such a link and writes (recordings, manifests, results) refuse to
    # go through it, so a pull request that plants one must not lint clean either.
    tree = ctx.head.tree
    if not isinstance(tree, WorkingTree):
        return  # a commit's links are checked where they are read
    paths = ctx.head.paths
    folders = {paths.prompts, paths.golden, paths.recordings, paths.experiments}
    folders |= {paths.environments, paths.clusters, paths.manifests, STATE_FOLDER}
    for link, target in sorted(_links_out_of(tree.root, sorted(folders))):
        yield (
            link,
            START,
            f"{link} is a symbolic link to {target}, outside the repository; promptyard will "
            "not read or write through it: replace it with a real folder or file",
        )


def _links_out_of(root: Path, folders: list[str]) -> set[tuple[str, str]]:
    """(link, target) for each symbolic link on or under `folders` that leaves `root`."""
    real_root = os.path.realpath(root)
    found: set[tuple[str, str]] = set()

    def visit(path: Path) -> bool:
        """Record `path` if it is a link out; whether it is safe to descend into."""
        if not path.is_symlink():
            return True
        real = os.path.realpath(path)
        if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
            found.add((path.relative_to(root).as_posix(), os.readlink(path)))
        return False  # links inside the repository are walked where they point

    for folder in folders:
        path = root
        for part in PurePosixPath(folder).parts:
            path = path / part
            if not visit(path):
                break
        else:
            for dirpath, dirnames, filenames in os.walk(path):
                here = Path(dirpath)
                dirnames[:] = [d for d in dirnames if visit(here / d)]
                for name in filenames:
                    visit(here / name)
    return found
