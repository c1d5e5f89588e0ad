"""Scores against reference texts: levenshtein, rouge-n, bleu."""

from __future__ import annotations

from collections.abc import Callable

from promptyard.evals import textchecks
from promptyard.evals.assertions._base import (
    AssertionContext,
    Outcome,
    _bounded,
    _is_text,
    _unit_threshold,
    as_text,
    assertion_type,
)
from promptyard.spec import Assertion


def _levenshtein_value(a: Assertion) -> str | None:
    if not (isinstance(a.value, str) or _is_text(a.value)):
        return "`value` must be the expected string"
    if a.threshold is not None and a.threshold < 0:
        return "`threshold` (the maximum distance) must be >= 0"
    return None


def _references_value(a: Assertion) -> str | None:
    if _is_text(a.value) or (
        isinstance(a.value, list) and a.value and all(_is_text(v) for v in a.value)
    ):
        return _unit_threshold(a)
    return "`value` must be the reference text, or a non-empty list of reference texts"


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), O(len(a) * len(b))."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@assertion_type(
    "levenshtein",
    "edit distance to `value` at most `threshold` (default 5)",
    _levenshtein_value,
    uses_threshold=True,
)
async def _levenshtein(a: Assertion, ctx: AssertionContext) -> Outcome:
    limit = a.threshold if a.threshold is not None else 5
    answer, expected = ctx.output.strip(), as_text(a.value).strip()
    distance = _bounded("levenshtein", levenshtein, answer, expected)
    score = 1 - distance / max(len(answer), len(expected), 1)
    # an answer with nothing in common (score 0) never passes, however short both are
    ok = distance <= limit and score > 0
    return ok, score, f"edit distance {distance} (max {limit:g}), similarity {score:.2f}"


def _reference_metric(
    name: str, summary: str, default: float, label: str, metric: Callable[[str, list[str]], float]
) -> None:
    """A type scoring the answer against reference texts; `threshold` is the minimum score."""

    async def evaluate_metric(a: Assertion, ctx: AssertionContext) -> Outcome:
        limit = a.threshold if a.threshold is not None else default
        references = [as_text(r) for r in (a.value if isinstance(a.value, list) else [a.value])]
        score = metric(ctx.output, references)
        ok = score > 0 and score >= limit
        return ok, score, f"{label} {score:.3f} (min {limit:g})"

    assertion_type(name, summary, _references_value, uses_threshold=True)(evaluate_metric)


_reference_metric(
    "rouge-n",
    "ROUGE-1 recall against the reference(s) in `value` at least `threshold` (default 0.75)",
    0.75,
    "ROUGE-1 recall",
    lambda output, references: max(textchecks.rouge_n(output, r) for r in references),
)
_reference_metric(
    "bleu",
    "BLEU-4 against the reference(s) in `value` at least `threshold` (default 0.5)",
    0.5,
    "BLEU",
    textchecks.bleu,
)
