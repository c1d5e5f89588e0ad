"""Prompt spec: `prompts/<name>.yaml` (DESIGN.md §2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from promptyard.spec.assertion import Assertion
from promptyard.spec.base import Name, SemVer, SpecModel


class ModelRef(SpecModel):
    provider: str = Field("default", description="A key of `providers` in promptyard.yaml.")
    name: str = Field(min_length=1, description="The model name the provider serves.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed through to the provider (temperature, max_tokens, ...).",
    )


class Message(SpecModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str = Field(description="A sandboxed Jinja template over the prompt's inputs.")


class OutputSpec(SpecModel):
    format: Literal["text", "json"] = "text"
    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="JSON Schema the output must satisfy."
    )


class EvalSpec(SpecModel):
    dataset: str = Field(min_length=1, description="Path of a golden dataset in the repository.")
    assert_: list[Assertion] = Field(
        default_factory=list,
        alias="assert",
        description="Applied to every case, before the case's own assertions.",
    )
    threshold: float = Field(1.0, ge=0, le=1, description="Minimum pass rate of this eval.")
    repeat: int = Field(1, ge=1, le=1000, description="Runs per case.")
    min_pass: int | None = Field(
        None, ge=1, description="Runs of a case that must pass for it to pass (default: all)."
    )


class PromptSpec(SpecModel):
    """One prompt: its model, typed inputs, message templates, output contract and evals."""

    name: Name = Field(
        description="Must equal the file's path under prompts/ without .yaml.",
    )
    version: SemVer = Field(description="Semver of the fully resolved content.")
    description: str = ""
    owners: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    model: ModelRef
    inputs: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Each value is a JSON Schema; an input is required unless it has a default.",
    )
    messages: list[Message] = Field(min_length=1)
    output: OutputSpec | None = None
    evals: list[EvalSpec] = Field(default_factory=list)

    def required_inputs(self) -> set[str]:
        return {name for name, schema in self.inputs.items() if "default" not in schema}
