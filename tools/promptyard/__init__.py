"""promptyard: prompts as code, the GitOps way.

The command line is a thin shell over this library; the main entry points are
`promptyard.workspace.Workspace` (read a repository at any ref),
`promptyard.render.render_prompt`, and `promptyard.lint.lint_repository`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("promptyard")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
