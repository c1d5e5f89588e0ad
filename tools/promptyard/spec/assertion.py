"""Assertion: one check applied to a model output (docs/architecture.md §5)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from promptyard.spec.base import SpecModel


def _type_examples(schema: dict[str, Any]) -> None:
    """Editors complete `type` from the assertion registry (imported late: it imports us)."""
    from promptyard.evals.assertions import known_type_names

    schema["examples"] = known_type_names()


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
