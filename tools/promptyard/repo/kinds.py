"""The repository's named files: environments, clusters and experiments, through one table.

Each kind is a folder (from the config's `paths`) of `<name>.yaml` files, each loaded as
one model; a snapshot lists, loads and finds every kind the same way, so a missing name
reads the same whichever kind it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Generic, TypeVar

from pydantic import BaseModel

from promptyard.errors import ConfigError
from promptyard.names import closest
from promptyard.spec import ClusterSpec, EnvironmentSpec, ExperimentSpec
from promptyard.spec.config import Paths

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Kind(Generic[M]):
    """One kind of named file: what it is called, where it lives, what it loads as."""

    noun: str  # "environment", in messages
    plural: str  # "environments", in the hint listing them
    setting: str  # the field of `paths` naming its folder
    model: type[M]
    by_path: bool = False  # whether a repository path may stand for the name

    def folder(self, paths: Paths) -> str:
        return str(getattr(paths, self.setting))

    def find(self, name: str, present: list[str], paths: Paths, label: str) -> str:
        """The path of the file called `name` among `present`; a ConfigError (exit 2)
        naming the closest other, or all of them, when there is none."""
        folder = self.folder(paths)
        candidates = [name] if self.by_path else []
        candidates.append(f"{folder}/{name}.yaml")
        for path in candidates:
            if path in present:
                return path
        names = [PurePosixPath(p).stem for p in present]
        close = closest(name, names)
        hint = (
            f"did you mean {close!r}?" if close else f"{self.plural}: {', '.join(names) or 'none'}"
        )
        raise ConfigError(f"no {self.noun} {name!r} under {folder}/ in {label}", hint=hint)


ENVIRONMENTS = Kind("environment", "environments", "environments", EnvironmentSpec)
CLUSTERS = Kind("cluster", "clusters", "clusters", ClusterSpec)  # GPU serving deployments
EXPERIMENTS = Kind("experiment", "experiments", "experiments", ExperimentSpec, by_path=True)
KINDS: tuple[Kind[EnvironmentSpec] | Kind[ClusterSpec] | Kind[ExperimentSpec], ...] = (
    ENVIRONMENTS,
    CLUSTERS,
    EXPERIMENTS,
)
