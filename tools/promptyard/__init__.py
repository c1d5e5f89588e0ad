"""promptyard: prompts as code, the GitOps way.

The command line is a thin shell over this library; the main entry points are
`promptyard.repo.workspace.Workspace` (read a repository at any ref),
`promptyard.render.render_prompt`, `promptyard.lint.lint_repository`, and
`promptyard.Registry` (resolve and render released prompts; imported on first use so that
`import promptyard` stays light).
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptyard.registry.client import Registry as Registry

try:
    __version__ = version("promptyard")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "Registry":
        from promptyard.registry.client import Registry as Registry

        return Registry
    raise AttributeError(f"module 'promptyard' has no attribute {name!r}")
