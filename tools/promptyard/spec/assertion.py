"""Assertion: one check applied to a model output (docs/architecture.md §5)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from promptyard.spec.base import SpecModel

# Every assertion type's name, sorted. The evaluators register under these names
# (`promptyard.evals.assertions` refuses any other); the name list lives here, with the format,
# so the generated schema offers them to editors without the format importing the evals.
ASSERTION_TYPE_NAMES: tuple[str, ...] = (
    "bleu",
    "contains",
    "contains-all",
    "contains-any",
    "contains-json",
    "cost",
    "equals",
    "finish-reason",
    "icontains",
    "icontains-all",
    "icontains-any",
    "is-json",
    "is-refusal",
    "is-sql",
    "is-xml",
    "json-path",
    "json-schema",
    "latency",
    "levenshtein",
    "llm-rubric",
    "python",
    "refusal",
    "regex",
    "rouge-n",
    "similar",
    "starts-with",
    "tool-args-valid",
    "tool-call",
    "tool-calls-f1",
    "word-count",
)


def _type_examples(schema: dict[str, Any]) -> None:
    """Editors complete `type` from the names of the assertion types."""
    schema["examples"] = list(ASSERTION_TYPE_NAMES)


class Assertion(SpecModel):
    """`{type, value?, threshold?, weight?, metric?, provider?}`; `not-<type>` negates any type.

    Which types exist and what shape each one's `value` takes is defined by the assertion
    registry (`promptyard.evals.assertions`), checked by `lint`.
    """

    type: str = Field(
        min_length=1,
        description="An assertion type such as `contains` or `llm-rubric`; `not-<type>` negates it.",
        json_schema_extra=_type_examples,
    )
    value: Any = Field(
        None,
        description="The expected value; may refer to the case as `{{ expected }}` or `{{ vars.x }}`.",
    )
    threshold: float | None = Field(
        None, description="Type-specific limit, e.g. the minimum score or the maximum distance."
    )
    weight: float = Field(1.0, ge=0, description="Weight of this assertion in the case score.")
    metric: str | None = Field(None, description="A name under which scores are aggregated.")
    provider: str | None = Field(
        None, description="Provider for model-graded assertions (default: the prompt's)."
    )
