"""The assertion registry and what every type shares.

`assertion_type` registers a type with the shape its value must have and its evaluator.
Here too: the context an evaluator reads, the result it gives, the errors it raises, and
the value shapes and helpers that several families use.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from promptyard.evals import textchecks
from promptyard.evals.providers.base import ToolCall
from promptyard.evals.providers.runtime import RunStopped
from promptyard.limits import TimeLimitExceeded, time_limit
from promptyard.plugins import register_once
from promptyard.spec import Assertion, Case, PromptSpec
from promptyard.spec.assertion import ASSERTION_TYPE_NAMES

Outcome = tuple[bool, float, str]  # passed, score in 0..1, human reason
Evaluator = Callable[[Assertion, "AssertionContext"], Awaitable[Outcome]]
ShapeCheck = Callable[[Assertion], str | None]  # a problem message, or None when fine

NEGATION = "not-"


@dataclass(frozen=True)
class AssertionType:
    name: str
    summary: str
    check_shape: ShapeCheck
    evaluate: Evaluator
    model_graded: bool = False
    # What a model-graded type calls on its provider: a chat judge or an embeddings endpoint
    # (lint checks the provider it names has one).
    grader: Literal["judge", "embeddings"] | None = None
    # True: the evaluator reads `threshold` itself (a distance, a minimum score, a limit).
    uses_threshold: bool = False
    # True: the score can lie between 0 and 1, and `threshold` (when the evaluator does not
    # read it) is the minimum score to pass, e.g. contains-all at 0.5. False: the score is
    # 1 or 0 and a `threshold` could only turn a failure into a pass, so lint refuses it.
    graded: bool = False
    # True: the gateway may run it on live answers (online quality): it needs no reference
    # answer, no model call and no repository code (set by ONLINE_TYPES in `__init__`).
    online: bool = False


ASSERTION_TYPES: dict[str, AssertionType] = {}


def assertion_type(
    name: str,
    summary: str,
    shape: ShapeCheck,
    *,
    grader: Literal["judge", "embeddings"] | None = None,
    uses_threshold: bool = False,
    graded: bool = False,
) -> Callable[[Evaluator], Evaluator]:
    """Register an evaluator under `name` with the shape its `value` must have.

    A model-graded type names its `grader`: it calls a judge model or an embeddings endpoint.
    """

    def register(fn: Evaluator) -> Evaluator:
        if name not in ASSERTION_TYPE_NAMES:  # the schema offers editors only those names
            raise ValueError(
                f"assertion type {name!r} is not in promptyard.spec.assertion.ASSERTION_TYPE_NAMES"
            )
        entry = AssertionType(
            name, summary, shape, fn, grader is not None, grader, uses_threshold, graded
        )
        register_once(ASSERTION_TYPES, name, entry, "assertion type")
        return fn

    return register


def split_type(type_name: str) -> tuple[AssertionType | None, bool]:
    """(registered type, negated) for `type` or `not-type`."""
    negated = type_name.startswith(NEGATION)
    base = type_name[len(NEGATION) :] if negated else type_name
    return ASSERTION_TYPES.get(base), negated


def known_type_names() -> list[str]:
    return sorted(ASSERTION_TYPES)


# --- context and results -----------------------------------------------------------------


@dataclass
class AssertionContext:
    """Everything an evaluator may look at for one output."""

    output: str
    case: Case
    prompt: PromptSpec
    repo_root: Path | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    # (messages, provider name or None) -> the judge model's reply text
    judge: Callable[[list[dict[str, str]], str | None], Awaitable[str]] | None = None
    # (texts, provider name or None) -> one embedding per text
    embed: Callable[[list[str], str | None], Awaitable[list[list[float]]]] | None = None
    # The answer besides its text: the calls the model made, why it stopped, its refusal.
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    refusal: str | None = None
    _json: Any = field(default=None, repr=False)
    _json_error: str | None = field(default=None, repr=False)
    _json_done: bool = field(default=False, repr=False)

    def output_json(self) -> tuple[Any, str | None]:
        """(parsed output, None) or (None, why it is not RFC 8259 JSON). An output that is
        exactly one code fence is read without the fence."""
        if not self._json_done:
            try:
                self._json = textchecks.loads_strict(strip_fence(self.output))
            except ValueError as exc:
                self._json_error = f"output is not JSON ({exc})"
            self._json_done = True
        return self._json, self._json_error


@dataclass(frozen=True)
class AssertionResult:
    type: str
    passed: bool
    score: float
    reason: str
    weight: float = 1.0
    metric: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "pass": self.passed,
            "score": self.score,
            "reason": self.reason,
            "weight": self.weight,
            "metric": self.metric,
        }


_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)


def strip_fence(text: str) -> str:
    """The body of an output that is exactly one Markdown code fence (```json ... ```,
    whitespace around it allowed), else the output unchanged."""
    match = _FENCE.match(text)
    return match.group(1) if match else text


T = TypeVar("T")
CHECK_TIME_LIMIT_S = 2.0  # regex, schema and edit-distance checks of one output


def _bounded(what: str, fn: Callable[..., T], *args: Any, seconds: float = CHECK_TIME_LIMIT_S) -> T:
    """`fn(*args)` under a time limit: a check that runs away on an output fails, it does not
    hang the eval (synchronous code only; never around an `await`)."""
    try:
        with time_limit(seconds, what):
            return fn(*args)
    except TimeLimitExceeded:
        raise AssertionFailure(f"{what} took longer than {seconds:g} s on this output") from None


class AssertionFailure(Exception):
    """An assertion that could not be evaluated (bad judge reply, python error, ...)."""


class GradingUnavailable(Exception):
    """A judge or embeddings call could not be made (provider unreachable, no recording)."""

    def __init__(self, message: str, *, kind: str = "infra") -> None:
        super().__init__(message)
        self.kind = kind


# Raised by a grading hook (`judge`, `embed`) when the whole eval run is stopping, e.g.
# because a provider is down: it passes through `evaluate` untouched.
GradingStopped = RunStopped


# --- value shapes ------------------------------------------------------------------------


def _no_value(a: Assertion) -> str | None:
    return None if a.value is None else "takes no `value`; remove it"


def _is_text(value: Any) -> bool:
    """A non-empty string, or a number standing for its decimal text (never a boolean)."""
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def as_text(value: Any) -> str:
    """The text a string or number value stands for: integers (also 2.0) as integers,
    other numbers in the shortest form that reads back the same (0.25, 1e-05)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, int | float) else json.dumps(value, ensure_ascii=False)


def _string_value(a: Assertion) -> str | None:
    return None if _is_text(a.value) else "`value` must be a non-empty string (or a number)"


def _unit_threshold(a: Assertion) -> str | None:
    if a.threshold is not None and not 0 <= a.threshold <= 1:
        return "`threshold` must be between 0 and 1"
    return None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
