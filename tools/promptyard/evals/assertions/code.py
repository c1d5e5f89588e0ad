"""`python`: a function from the repository judges the output, under a time limit."""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from promptyard.evals.assertions._base import (
    AssertionContext,
    AssertionFailure,
    Outcome,
    _bounded,
    assertion_type,
)
from promptyard.spec import Assertion

PYTHON_TIME_LIMIT_S = 30.0  # a `python` check


_PYTHON_REF = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)


def _python_value(a: Assertion) -> str | None:
    if isinstance(a.value, str) and _PYTHON_REF.match(a.value):
        return None
    return "`value` must be `module:function` (a module in the repository)"


def load_python_check(ref: str, repo_root: Path | None) -> Callable[..., Any]:
    """Import `module:function` with the repository root first on sys.path."""
    module_name, _, function_name = ref.partition(":")
    root = str(repo_root) if repo_root else None
    if root and root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, function_name)
    except Exception as exc:  # user code: report any import failure as the assertion's failure
        raise AssertionFailure(f"cannot load {ref}: {type(exc).__name__}: {exc}") from None
    if not callable(function):
        raise AssertionFailure(f"{ref} is not callable")
    checked: Callable[..., Any] = function
    return checked


@assertion_type(
    "python",
    "a `module:function` from the repository returns bool, score or dict",
    _python_value,
    uses_threshold=True,
)
async def _python(a: Assertion, ctx: AssertionContext) -> Outcome:
    function = load_python_check(a.value, ctx.repo_root)
    context = {
        "vars": ctx.case.vars,
        "expected": ctx.case.expected,
        "case_id": ctx.case.id,
        "prompt": ctx.prompt.name,
        "latency_ms": ctx.latency_ms,
        "cost_usd": ctx.cost_usd,
    }
    try:
        result = _bounded(a.value, function, ctx.output, context, seconds=PYTHON_TIME_LIMIT_S)
        if isinstance(result, Awaitable):
            result = await asyncio.wait_for(result, PYTHON_TIME_LIMIT_S)
    except AssertionFailure:
        raise
    except (Exception, SystemExit) as exc:  # user code: even sys.exit() only fails the check
        raise AssertionFailure(f"{a.value} raised {type(exc).__name__}: {exc}") from None
    threshold = a.threshold if a.threshold is not None else 0.5
    if isinstance(result, bool):
        return result, float(result), f"{a.value} returned {result}"
    if isinstance(result, int | float):
        score = float(result)
        return score >= threshold, score, f"{a.value} scored {score:.3f} (min {threshold:g})"
    if isinstance(result, dict) and ("pass" in result or "score" in result):
        score = float(result.get("score", 1.0 if result.get("pass") else 0.0))
        passed = bool(result["pass"]) if "pass" in result else score >= threshold
        return passed, score, str(result.get("reason", f"{a.value} returned {result!r}"))
    raise AssertionFailure(
        f"{a.value} returned {type(result).__name__}; return a bool, a score or "
        "{'pass': bool, 'score': float, 'reason': str}"
    )
