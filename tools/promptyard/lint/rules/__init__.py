"""Lint rules, one small function each; importing this package registers them all."""

from promptyard.lint.rules import (
    config,
    datasets,
    environments,
    experiments,
    project,
    prompts,
    versions,
)

__all__ = ["config", "datasets", "environments", "experiments", "project", "prompts", "versions"]
