"""Lint rules, one small function each; importing this package registers them all."""

from promptyard.lint.rules import (
    datasets,
    environments,
    experiments,
    project,
    prompts,
    versions,
)

__all__ = ["datasets", "environments", "experiments", "project", "prompts", "versions"]
