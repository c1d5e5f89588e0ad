"""Assertion types: one registry holding each type's value shape and its evaluator.

A type is registered once with `@assertion_type(...)`: lint checks a file's assertions
against the registered shapes, and the eval engine calls the evaluator. Every type can be
negated as `not-<type>`; `weight` and `metric` work the same for all. `threshold` is read
by the types that declare `uses_threshold`, is the minimum score of the `graded` ones, and
is refused on types that only pass or fail. The README's assertion reference states each
type's rule; keep the two in step.

Evaluators are `async def (spec, ctx) -> Outcome`; model-graded types reach the provider
through `ctx.judge` and `ctx.embed`, which the eval engine supplies.

The types live in one module per family; `_base` holds the registry, `_engine` runs them.
"""

from __future__ import annotations

from dataclasses import replace

from promptyard.evals.assertions._base import (
    ASSERTION_TYPES,
    AssertionContext,
    GradingUnavailable,
    assertion_type,
    split_type,
)
from promptyard.evals.assertions._engine import assertion_problem, combine, evaluate

# isort: off
# Each family registers its types when imported: this order is the registry's order.
from promptyard.evals.assertions import text  # noqa: F401  (register)
from promptyard.evals.assertions import structured  # noqa: F401  (register)
from promptyard.evals.assertions import reference  # noqa: F401  (register)
from promptyard.evals.assertions import formats  # noqa: F401  (register)
from promptyard.evals.assertions import graded  # noqa: F401  (register)
from promptyard.evals.assertions import metrics  # noqa: F401  (register)
from promptyard.evals.assertions import code  # noqa: F401  (register)
from promptyard.evals.assertions import tool_calls  # noqa: F401  (register)
from promptyard.evals.assertions.reference import levenshtein
# isort: on

__all__ = [
    "ASSERTION_TYPES",
    "ONLINE_TYPES",
    "AssertionContext",
    "GradingUnavailable",
    "assertion_problem",
    "assertion_type",
    "combine",
    "evaluate",
    "levenshtein",
    "split_type",
]


# Types the gateway may run on sampled live answers: a prompt's evals-level assertions of
# these types need nothing but the answer, its latency and its cost.
ONLINE_TYPES = (
    "equals",
    "contains",
    "contains-any",
    "contains-all",
    "icontains",
    "icontains-any",
    "icontains-all",
    "starts-with",
    "regex",
    "is-json",
    "json-schema",
    "contains-json",
    "json-path",
    "is-xml",
    "is-sql",
    "is-refusal",
    "word-count",
    "latency",
    "cost",
)
for _name in ONLINE_TYPES:
    ASSERTION_TYPES[_name] = replace(ASSERTION_TYPES[_name], online=True)
