"""The lint rule table: every code, its name, severity and summary, and its check if it has one.

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
`Problem` carrying another declared code. Some codes have no check of their own: the
loaders raise them while reading files (`declare` lists them here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from promptyard.documents import LOAD_RULES, Position
from promptyard.problems import Problem
from promptyard.spec import SPEC_RULES

Severity = Literal["error", "warning"]
Kind = Literal[
    "prompt", "dataset", "environment", "experiment", "recording", "cluster", "project", "change"
]
Hit = tuple[str, Position, str] | Problem
Check = Callable[..., Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str


@dataclass(frozen=True)
class RegisteredCheck:
    rule: Rule
    kind: Kind
    check: Check


RULES: dict[str, Rule] = {}
CHECKS: list[RegisteredCheck] = []


def declare(code: str, name: str, severity: Severity, summary: str) -> Rule:
    """Declare a rule code (idempotent for the same declaration)."""
    new = Rule(code, name, severity, summary)
    existing = RULES.setdefault(code, new)
    if existing != new:
        raise ValueError(f"lint rule {code} declared twice with different attributes")
    return existing


def rule(
    code: str, name: str, severity: Severity, summary: str, *, kind: Kind
) -> Callable[[Check], Check]:
    """Register a check function under a code (a code may have checks of several kinds)."""

    def register(fn: Check) -> Check:
        CHECKS.append(RegisteredCheck(declare(code, name, severity, summary), kind, fn))
        return fn

    return register


def checks(kind: Kind) -> list[RegisteredCheck]:
    return [c for c in CHECKS if c.kind == kind]


for _code, _name, _summary in (*LOAD_RULES, *SPEC_RULES):
    declare(_code, _name, "error", _summary)

# Raised while resolving a prompt's includes and loading datasets (promptyard.workspace).
declare("P002", "template-syntax", "error", "a message or partial template does not parse")
declare("P005", "missing-partial", "error", "an include names a partial that does not exist")
declare(
    "P006",
    "include-outside-partials",
    "error",
    "an include leaves the partials folder or has a computed name",
)
declare("P012", "include-cycle", "error", "partials that include each other in a cycle")
declare("D003", "duplicate-case-id", "error", "two cases of a dataset share an `id`")
declare("A002", "assertion-value", "error", "an assertion's value has the wrong shape for its type")
declare(
    "A003",
    "assertion-file",
    "error",
    "a `file://` assertion value that is missing, unsafe, too large or unreadable",
)


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
