"""The promptyard repository on disk (the folder holding promptyard.yaml) and its git repo.

`Workspace.snapshot(ref)` reads the working tree (`ref=None`) or any git ref through the same
`Snapshot`; the git work itself (resolving refs, merge bases, changed paths) is `repo.git`'s.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from promptyard.errors import ConfigError
from promptyard.repo import git
from promptyard.repo.snapshot import CONFIG_FILE, Snapshot
from promptyard.repo.trees import GitTree, WorkingTree

STATE_FOLDER = ".promptyard"  # eval results and the cache (EvalOptions.state)


class Workspace:
    """A promptyard repository on disk (the folder holding promptyard.yaml) and its git repo."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @classmethod
    def discover(cls, start: Path | None = None) -> Workspace:
        """The nearest folder at or above `start` holding promptyard.yaml."""
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / CONFIG_FILE).is_file():
                return cls(folder)
        raise ConfigError(
            f"no {CONFIG_FILE} in {here} or any parent folder",
            hint="run `promptyard init` to create a prompt repository, or pass --repo PATH",
        )

    @cached_property
    def git(self) -> Any:
        """The enclosing git repository (GitPython), or a ConfigError when there is none."""
        return git.open_repo(self.root)

    @cached_property
    def _prefix(self) -> str:
        rel = self.root.relative_to(git.work_tree(self.git)).as_posix()
        return "" if rel == "." else rel + "/"

    @property
    def git_prefix(self) -> str:
        """Where the repository root sits inside its git work tree ("" at the top, or no git)."""
        try:
            return self._prefix
        except ConfigError:
            return ""

    def resolve_commit(self, ref: str) -> Any:
        """The commit a ref names; RefError (exit 2) when it names nothing."""
        return git.resolve_commit(self.git, ref, self.root)

    def commit(self, sha: str) -> Any:
        """The commit of a sha (or a ref) known to exist, e.g. one a tag points at."""
        return git.commit_at(self.git, sha)

    def merge_base(self, base: str, head: str | None = None) -> Any:
        """Where the change starts: the merge base of `base` and head (HEAD by default)."""
        return git.merge_base(self.git, base, head, self.root)

    def snapshot(self, ref: str | None = None) -> Snapshot:
        """The repository at `ref`, or the working tree when `ref` is None."""
        if ref is None:
            return Snapshot(WorkingTree(self.root))
        return self.snapshot_at(self.resolve_commit(ref))

    def snapshot_at(self, commit: Any) -> Snapshot:
        return Snapshot(GitTree(self.git, commit, self._prefix))

    def changed_paths(self, base_commit: Any, head: str | None = None) -> set[str]:
        """Repository-relative paths that differ between a base commit and head.

        Head is a ref, or the working tree (tracked changes, staged or not, plus untracked
        files that git does not ignore) when None. promptyard's own state folder
        (`.promptyard/`: eval results, the cache) is never part of a change, even where
        .gitignore does not list it.
        """
        head_sha = self.resolve_commit(head).hexsha if head is not None else None
        changed = git.changed_paths(self.git, base_commit.hexsha, head_sha, self.root)
        return {path for path in changed if not path.startswith(f"{STATE_FOLDER}/")}
