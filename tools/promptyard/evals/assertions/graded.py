"""Model-graded types: embeddings similarity (`similar`) and an LLM judge (`llm-rubric`)."""

from __future__ import annotations

import json
import math

from promptyard.evals.assertions._base import (
    AssertionContext,
    AssertionFailure,
    Outcome,
    _short,
    _unit_threshold,
    assertion_type,
    strip_fence,
)
from promptyard.spec import Assertion


def _scored_text_value(a: Assertion) -> str | None:
    if not isinstance(a.value, str) or not a.value:
        return "`value` must be a non-empty string"
    return _unit_threshold(a)


def cosine(u: list[float], v: list[float]) -> float:
    dot = sum(x * y for x, y in zip(u, v, strict=True))
    norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
    return dot / norm if norm else 0.0


@assertion_type(
    "similar",
    "cosine similarity of embeddings to `value` at least `threshold` (default 0.8)",
    _scored_text_value,
    grader="embeddings",
    uses_threshold=True,
)
async def _similar(a: Assertion, ctx: AssertionContext) -> Outcome:
    if ctx.embed is None:
        raise AssertionFailure("`similar` needs an embeddings endpoint; none is configured")
    first, second = await ctx.embed([ctx.output, a.value], a.provider)
    similarity = cosine(first, second)
    limit = a.threshold if a.threshold is not None else 0.8
    ok = similarity >= limit
    return ok, max(0.0, similarity), f"similarity {similarity:.3f} (min {limit:g})"


RUBRIC_SYSTEM = (
    "You grade an AI output against a rubric. Reply with JSON only: "
    '{"pass": true|false, "score": <number 0..1>, "reason": "<one sentence>"}.'
)


def rubric_messages(rubric: str, output: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": RUBRIC_SYSTEM},
        {
            "role": "user",
            "content": f"<rubric>\n{rubric}\n</rubric>\n<output>\n{output}\n</output>",
        },
    ]


@assertion_type(
    "llm-rubric",
    "an LLM judge grades the output against the rubric in `value`",
    _scored_text_value,
    grader="judge",
    uses_threshold=True,
)
async def _llm_rubric(a: Assertion, ctx: AssertionContext) -> Outcome:
    if ctx.judge is None:
        raise AssertionFailure("`llm-rubric` needs a judge provider; none is configured")
    reply = await ctx.judge(rubric_messages(a.value, ctx.output), a.provider)
    try:
        verdict = json.loads(strip_fence(reply))
        passed = verdict["pass"]
        score = float(verdict.get("score", 1.0 if passed else 0.0))
        reason = str(verdict.get("reason", ""))
        if not isinstance(passed, bool) or not 0 <= score <= 1:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AssertionFailure(
            f"judge reply is not {{pass, score, reason}} JSON: {_short(reply)!r}"
        ) from None
    if a.threshold is not None:
        passed = passed and score >= a.threshold
    return passed, score, f"judge: {reason}" if reason else "judge verdict"
