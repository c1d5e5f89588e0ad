"""Lint rules, one small function each; importing this package registers them all."""

from promptyard.lint.rules import (
    clusters,
    config,
    datasets,
    environments,
    experiments,
    grading,
    project,
    prompts,
    tools,
    versions,
)

__all__ = [
    "clusters",
    "config",
    "datasets",
    "environments",
    "experiments",
    "grading",
    "project",
    "prompts",
    "tools",
    "versions",
]
