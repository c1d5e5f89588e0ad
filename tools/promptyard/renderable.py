"""What rendering needs of a loaded prompt: the type `render` and `workspace` share.

`render.render_prompt` takes any `RenderablePrompt`; `workspace.LoadedPrompt` is one (and
the bundle's prompts are `LoadedPrompt`s too). The type lives here, below both modules, so
that `render` does not import `workspace` while `workspace` imports `render`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from promptyard.documents import Position
from promptyard.spec import PromptSpec
from promptyard.spec.config import Paths


class SnapshotPaths(Protocol):
    """The snapshot a prompt was read from, as far as rendering cares: its folders, and its
    files (an image part naming a repository file)."""

    @property
    def paths(self) -> Paths: ...

    def read(self, path: str, limit: int) -> bytes | None:
        """At most `limit + 1` bytes of a repository file (image parts), or None."""

    @property
    def holds(self) -> str:
        """What the files are ("the repository"), for "does not exist in ..." messages."""


@runtime_checkable
class RenderablePrompt(Protocol):
    """A prompt file read, validated and resolved (partials, content hash, templates)."""

    path: str

    @property
    def snapshot(self) -> SnapshotPaths: ...

    @property
    def input_validator(self) -> Any: ...

    def require(self) -> PromptSpec: ...

    def require_hash(self) -> str: ...

    def compiled_templates(self) -> list[Any]: ...

    def message_position(
        self, index: int, template_line: int = 1, loc: tuple[str | int, ...] = ("content",)
    ) -> Position: ...
