"""Trees: where a snapshot's bytes come from — the working tree, a git commit, or memory.

A `Tree` is read-only and knows nothing of promptyard files; `repo.snapshot.Snapshot` parses
and validates whatever a tree holds, the same way for all three.
"""

from __future__ import annotations

import os
import stat
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from promptyard.errors import ConfigError
from promptyard.pathsafety import safe_relpath
from promptyard.repo import git

MAX_SYMLINK_HOPS = 8


class UnsafePathError(ConfigError):
    """A path (or the symlink chain behind it) that leaves the repository."""


class Tree(ABC):
    """Read-only view of a repository's files at one point: the working tree or a commit."""

    label: str
    revision: str | None  # the commit sha, or None for the working tree
    holds = "the repository"  # what a missing file is missing from, in messages

    @abstractmethod
    def read(self, path: str, limit: int) -> bytes | None:
        """At most `limit + 1` bytes of the file (so callers can detect oversize), or None."""

    @abstractmethod
    def list_files(self, directory: str) -> list[str]:
        """Every file under `directory` (recursive), as sorted repository-relative paths."""

    def size(self, path: str) -> int | None:
        """The file's size in bytes without reading it (None when it cannot be told)."""
        return None

    def list_dirs(self, directory: str) -> list[str]:
        """Every folder under `directory` (recursive); git trees hold no empty folders, and
        the others show in `list_files`."""
        return []


class WorkingTree(Tree):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.label = "working tree"
        self.revision = None
        self._root_str = str(self.root)
        self._root_prefix = self._root_str.rstrip(os.sep) + os.sep
        self._folders: dict[str, str] = {}

    def read(self, path: str, limit: int) -> bytes | None:
        full = os.path.join(self.root, path)
        try:
            # Resolve symlinks (the file's and its folders'); folders are resolved once.
            folder, name = os.path.split(full)
            real_folder = self._real_folder(folder)
            real = os.path.join(real_folder, name)
            if os.path.islink(real):
                real = os.path.realpath(real, strict=True)
        except (OSError, RuntimeError):  # a symlink loop, or a dangling link
            if os.path.islink(full):
                raise UnsafePathError(f"{path}: broken symlink or symlink loop") from None
            return None
        if not (real == self._root_str or real.startswith(self._root_prefix)):
            raise UnsafePathError(f"{path}: symlink points outside the repository")
        try:
            mode = os.stat(real).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISDIR(mode):
            return None
        if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end
            raise UnsafePathError(f"{path}: not a regular file")
        try:
            with open(real, "rb") as handle:
                return handle.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def size(self, path: str) -> int | None:
        try:
            return os.stat(os.path.join(self.root, path)).st_size
        except OSError:
            return None

    def _real_folder(self, folder: str) -> str:
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder)
        return real

    def list_dirs(self, directory: str) -> list[str]:
        found: list[str] = []
        for dirpath, dirnames, _ in os.walk(self.root / directory):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            found.extend(f"{rel}/{name}" for name in dirnames)
        return sorted(found)

    def list_files(self, directory: str) -> list[str]:
        base = self.root / directory
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            found.extend(f"{rel}/{name}" for name in filenames if not name.startswith("."))
        return sorted(found)


class GitTree(Tree):
    """The files of one commit (`ls-tree` once, blobs on demand)."""

    def __init__(self, repo: Any, commit: Any, prefix: str = "") -> None:
        self.repo = repo
        self.commit = commit
        self.revision = commit.hexsha
        self.prefix = prefix  # the promptyard root inside the git repository ("" or "a/b/")
        self.label = f"{commit.hexsha[:12]}"

    @cached_property
    def _entries(self) -> dict[str, tuple[str, str]]:
        """path -> (mode, blob sha) for every blob of the commit under the prefix."""
        return git.tree_entries(self.repo, self.commit.hexsha, self.prefix)

    def read(self, path: str, limit: int) -> bytes | None:
        for _ in range(MAX_SYMLINK_HOPS):
            entry = self._entries.get(path)
            if entry is None:
                return None
            mode, sha = entry
            if mode != "120000":
                return git.read_blob(self.repo, sha, limit + 1)
            target = git.read_blob(self.repo, sha).decode("utf-8", "replace")
            joined = os.path.normpath(str(PurePosixPath(path).parent / target))
            resolved = safe_relpath(joined.replace(os.sep, "/"))
            if resolved is None or target.startswith("/"):
                raise UnsafePathError(f"{path}: symlink points outside the repository")
            path = resolved
        raise UnsafePathError(f"{path}: too many symlink hops")

    def list_files(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/"
        return sorted(p for p in self._entries if p.startswith(prefix))

    def size(self, path: str) -> int | None:
        entry = self._entries.get(path)
        if entry is None or entry[0] == "120000":
            return None  # a link: its target's size is what counts, and read() reports that
        return git.blob_size(self.repo, entry[1])


class MemoryTree(Tree):
    """A tree held in memory (a bundled prompt version, its partials and a minimal config)."""

    def __init__(self, files: dict[str, bytes], label: str, holds: str | None = None) -> None:
        self.files = files
        self.label = label
        self.revision = None
        if holds is not None:
            self.holds = holds

    def read(self, path: str, limit: int) -> bytes | None:
        data = self.files.get(path)
        return None if data is None else data[: limit + 1]

    def list_files(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/"
        return sorted(p for p in self.files if p.startswith(prefix))
