"""File writing that never leaves a half-written file behind, nor leaves the repository."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from promptyard.errors import ConfigError


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def ensure_inside(path: Path, root: Path) -> None:
    """Refuse (ConfigError, exit 2) a write to `path` that a symbolic link carries out of `root`.

    A pull request can commit a link (`golden/recordings -> /home/ci/.ssh`); reads already
    refuse to follow one out of the repository, and so does every write. Checked before any
    folder is created, so not even an empty folder appears at the link's target.
    """
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
        return
    link = Path(root)
    for part in Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).parts:
        link = link / part
        if link.is_symlink():
            break
    target = os.readlink(link) if link.is_symlink() else real
    raise ConfigError(
        f"{_shown(path)}: refusing to write outside {_shown(root)}: {_shown(link)} is a "
        f"symbolic link to {target}",
        hint=f"replace the link {_shown(link)} with a real folder or file",
    )


def _shown(path: Path) -> str:
    """`path` relative to the current folder when it is below it (as a user typed it)."""
    relative = os.path.relpath(os.path.abspath(path))
    return str(path) if relative.startswith("..") else relative


def atomic_write(path: Path, data: str | bytes, *, inside: Path | None = None) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    A reader sees the old content or the new, never half of it. The file keeps its mode
    (a new file gets the usual one), not mkstemp's private 0600. With `inside`, a path that
    a symbolic link carries out of that folder is refused first (`ensure_inside`).
    """
    if inside is not None:
        ensure_inside(path, inside)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = _default_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
