"""Repository-relative paths that cannot escape the repository."""

from __future__ import annotations

from pathlib import PurePosixPath


def safe_relpath(path: str) -> str | None:
    """`path` as a normalised repository-relative POSIX path, or None if it could escape."""
    if not path or "\\" in path or "\x00" in path or path.startswith("/") or ":" in path[:3]:
        return None
    parts = PurePosixPath(path).parts
    if not parts or any(p in ("..", ".", "") for p in parts) or "/".join(parts) != path:
        return None  # also refuses spellings like ./a or a//b: one path, one spelling
    return path
