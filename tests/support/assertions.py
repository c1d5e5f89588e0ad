"""Evaluate one assertion on one answer, the way the eval engine does, for assertion tests."""

from __future__ import annotations

import asyncio
from typing import Any

from promptyard.evals.assertions import AssertionContext, evaluate
from promptyard.spec import Assertion, Case, PromptSpec

# A JSON prompt with an output schema, for `json-schema` without a value.
PROMPT = PromptSpec.model_validate(
    {
        "name": "p",
        "version": "1.0.0",
        "model": {"name": "m"},
        "messages": [{"role": "user", "content": "x"}],
        "output": {"format": "json", "schema": {"type": "object", "required": ["reply"]}},
    }
)


def check(
    spec: dict[str, Any],
    output: str,
    *,
    case: dict[str, Any] | None = None,
    prompt: PromptSpec = PROMPT,
    **ctx: Any,
) -> tuple[bool, float, str]:
    """(passed, score, reason) of the assertion `spec` on `output`."""
    context = AssertionContext(
        output=output,
        case=Case.model_validate(case or {"id": "c"}),
        prompt=prompt,
        **ctx,
    )
    result = asyncio.run(evaluate(Assertion.model_validate(spec), context))
    return result.passed, result.score, result.reason
