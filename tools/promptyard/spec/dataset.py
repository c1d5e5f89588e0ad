"""Golden dataset case (docs/architecture.md §5): one line of a JSONL file, a CSV row or a YAML list item."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from promptyard.spec.assertion import Assertion
from promptyard.spec.base import SpecModel


class ExpectedToolCall(SpecModel):
    name: str = Field(min_length=1, description="The tool the model should call.")
    arguments: dict[str, Any] | None = Field(
        None, description="The arguments it should pass (omitted: any arguments)."
    )


class Case(SpecModel):
    """A golden case. `id` is how base and head results are paired, so it must stay stable."""

    id: str = Field(min_length=1, description="Unique in the file and stable across edits.")
    vars: dict[str, Any] = Field(
        default_factory=dict, description="Values of the prompt's inputs (data, never templates)."
    )
    expected: Any = Field(None, description="The expected output, for `{{ expected }}` in asserts.")
    assert_: list[Assertion] = Field(
        default_factory=list, alias="assert", description="Assertions for this case only."
    )
    threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="When set, the case passes when its score (the weighted mean of its "
        "assertion scores) reaches this, even if some assertions fail.",
    )
    expected_tool_calls: list[ExpectedToolCall] | None = Field(
        None, description="The calls the model should make, for `tool-calls-f1`."
    )
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
