"""`promptyard init`: scaffold a prompt repository that lints clean and runs offline.

The files under `files/` are copied as they are, except that a leading `dot-` in a path
part becomes `.` (so package data needs no dotfiles) and `__INSTALL__` in the workflow is
the command that installs promptyard. The JSON Schemas that the files' `$schema` modelines
point at are generated from the models into `schemas/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath

from promptyard import __version__
from promptyard.errors import ConfigError
from promptyard.fsutil import atomic_write
from promptyard.repo import git
from promptyard.spec import SCHEMAS, json_schema_text

FILES = resources.files(__package__) / "files"
DEFAULT_BRANCH = "main"


def default_install_command() -> str:
    return f'pip install "promptyard=={__version__}"'


@dataclass
class InitResult:
    """What `init` did: every file written, and which of them replaced an existing file."""

    root: Path
    written: list[str] = field(default_factory=list)
    git_initialized: bool = False
    overwritten: list[str] = field(default_factory=list)  # a subset of `written` (--force)

    @property
    def created(self) -> list[str]:
        """The files that did not exist before."""
        replaced = set(self.overwritten)
        return [rel for rel in self.written if rel not in replaced]

    def to_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "written": self.written,
            "overwritten": self.overwritten,
            "git_initialized": self.git_initialized,
        }


def _target_path(relative: str) -> str:
    parts = PurePosixPath(relative).parts
    return "/".join("." + p[len("dot-") :] if p.startswith("dot-") else p for p in parts)


def scaffold_files(install_command: str | None = None) -> dict[str, str]:
    """Every file `init` writes: repository-relative path -> text."""
    install = install_command or default_install_command()
    out: dict[str, str] = {}
    stack = [(FILES, "")]
    while stack:
        folder, prefix = stack.pop()
        for entry in folder.iterdir():
            rel = f"{prefix}{entry.name}"
            if entry.is_dir():
                if entry.name != "__pycache__":
                    stack.append((entry, rel + "/"))
            else:
                out[_target_path(rel)] = entry.read_text("utf-8").replace("__INSTALL__", install)
    for name in SCHEMAS:
        out[f"schemas/{name}.json"] = json_schema_text(name)
    return dict(sorted(out.items()))


def init_repository(
    target: Path, *, force: bool = False, install_command: str | None = None
) -> InitResult:
    """Write the scaffold into `target`; refuse (writing nothing) if a file would be replaced."""
    root = target.resolve()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{target}: exists and is not a folder")
    files = scaffold_files(install_command)
    clashes = [rel for rel in files if (root / rel).exists() or (root / rel).is_symlink()]
    if clashes and not force:
        shown = ", ".join(clashes[:5]) + (
            f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        )
        raise ConfigError(
            f"{target}: would overwrite {shown}", hint="pass --force to overwrite them"
        )
    result = InitResult(root, overwritten=clashes)
    for rel, text in files.items():
        atomic_write(root / rel, text, inside=root)
        result.written.append(rel)
    # The README, the scaffolded workflows and `serve --branch` all say `main`.
    result.git_initialized = git.init_repo(root, DEFAULT_BRANCH)
    return result
