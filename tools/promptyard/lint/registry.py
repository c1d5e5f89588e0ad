"""The lint checks: each registered under a code of the catalogue (`promptyard.codes`).

Rules come in kinds; the runner calls each registered check with what its kind needs:

- `prompt`      (ctx, prompt: LoadedPrompt)            a prompt whose spec validated
- `dataset`     (ctx, dataset: LoadedDataset, uses)    a dataset and the prompt evals using it
- `environment` (ctx, env: LoadedFile[EnvironmentSpec])
- `experiment`  (ctx, exp: LoadedFile[ExperimentSpec])
- `recording`   (ctx, path: str)                       a golden/recordings/*.jsonl file
- `cluster`     (ctx, cluster: LoadedFile[ClusterSpec])  a GPU serving cluster file
- `project`     (ctx)                                  once per run
- `change`      (ctx, head: LoadedPrompt, base: LoadedPrompt)  with `--base`, changed prompts

A check yields `(file, position, message)` hits, reported under its own code, or a
`Problem` carrying another catalogued code. Some codes have no check of their own: the
loaders raise them while reading files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from promptyard.codes import RULES, Rule
from promptyard.documents import Position
from promptyard.problems import Problem

Kind = Literal[
    "prompt", "dataset", "environment", "experiment", "recording", "cluster", "project", "change"
]
Hit = tuple[str, Position, str] | Problem
Check = Callable[..., Iterable[Hit]]


@dataclass(frozen=True)
class RegisteredCheck:
    rule: Rule
    kind: Kind
    check: Check


CHECKS: list[RegisteredCheck] = []


def rule(code: str, *, kind: Kind) -> Callable[[Check], Check]:
    """Register a check function under a catalogued code (a code may have checks of several
    kinds, one each)."""
    rule_ = RULES[code]

    def register(fn: Check) -> Check:
        if any(c.rule.code == code and c.kind == kind for c in CHECKS):
            raise ValueError(f"lint rule {code} has two {kind} checks")
        CHECKS.append(RegisteredCheck(rule_, kind, fn))
        return fn

    return register


def checks(kind: Kind) -> list[RegisteredCheck]:
    return [c for c in CHECKS if c.kind == kind]


def as_problem(rule_: Rule, hit: Hit) -> Problem:
    if isinstance(hit, Problem):
        return hit
    file, position, message = hit
    return Problem.at(rule_.code, file, position, message)


def rule_table() -> list[dict[str, Any]]:
    return [
        {"code": r.code, "name": r.name, "severity": r.severity, "summary": r.summary}
        for r in sorted(RULES.values(), key=lambda r: r.code)
    ]
