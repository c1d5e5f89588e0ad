"""What every lint check gets: the snapshots and helpers shared across rules."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from promptyard.repo.snapshot import Snapshot
from promptyard.repo.workspace import Workspace
from promptyard.spec import ProjectConfig


@dataclass(frozen=True)
class DatasetUse:
    """One prompt eval that reads a dataset: what dataset checks need of the prompt."""

    prompt: str
    inputs: dict[str, Any]
    eval_index: int


@dataclass
class LintContext:
    workspace: Workspace
    head: Snapshot
    base: Snapshot | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> ProjectConfig | None:
        return self.head.config_file.model

    def tagged_versions(self) -> dict[str, set[str]]:
        """Prompt name -> every version with a release tag (read once per run; none outside git)."""
        if "tagged_versions" not in self.extra:
            from promptyard.errors import ConfigError
            from promptyard.release.tags import tagged_versions

            try:
                self.extra["tagged_versions"] = tagged_versions(self.workspace.git)
            except ConfigError:  # not a git repository: nothing is tagged
                self.extra["tagged_versions"] = {}
        tagged: dict[str, set[str]] = self.extra["tagged_versions"]
        return tagged

    def current_version(self, prompt: str) -> str | None:
        """The version the prompt has in the working tree (None if it does not load)."""
        spec = self.head.prompt(prompt).model if self.head.has_prompt(prompt) else None
        return spec.version if spec is not None else None

    def is_pinnable(self, prompt: str, version: str) -> bool:
        """A tagged version, the prompt's version at head, or (judging a change) its version
        at the base: that commit is on the base branch, where `release` tags every version
        that lands, so a pin that was valid there stays valid while a branch bumps the prompt.
        The registry still serves only tagged versions."""
        from promptyard.release.tags import is_pinnable

        tagged = self.tagged_versions()
        if is_pinnable(tagged, self.head, prompt, version):
            return True
        return self.base is not None and is_pinnable(tagged, self.base, prompt, version)


@functools.lru_cache(maxsize=8192)
def _schema_error(schema_json: str) -> str | None:
    try:
        Draft202012Validator.check_schema(json.loads(schema_json))
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"{exc.message}" + (f" (at {where})" if where else "")
    return None


def schema_error(schema: Any) -> str | None:
    """Why `schema` is not a valid JSON Schema (draft 2020-12), or None. Cached by content."""
    return _schema_error(json.dumps(schema, sort_keys=True))
