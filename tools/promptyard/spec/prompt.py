"""Prompt spec: `prompts/<name>.yaml` (docs/architecture.md §5)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, ValidationInfo, field_validator

from promptyard.spec.assertion import Assertion
from promptyard.spec.base import Name, SemVer, SpecModel, invalid

MESSAGES_TYPE = "messages"  # the input type of a conversation (see promptyard.conversation)

# What OpenAI-compatible APIs accept as a function name (and most others a subset of it).
FUNCTION_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
_FUNCTION_NAME_RE = re.compile(FUNCTION_NAME_PATTERN)


def _check_function_name(value: str) -> str:
    if not _FUNCTION_NAME_RE.match(value):
        raise invalid(
            "invalid-tool-name",
            "{value} is not a valid function name: use letters, digits, '_' and '-' "
            "(at most 64, not starting with a digit), e.g. lookup_order",
            value=repr(value),
        )
    return value


FunctionName = Annotated[
    str,
    AfterValidator(_check_function_name),
    Field(json_schema_extra={"pattern": FUNCTION_NAME_PATTERN}),
]


class ModelRef(SpecModel):
    provider: str = Field("default", description="A key of `providers` in promptyard.yaml.")
    name: str = Field(min_length=1, description="The model name the provider serves.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed through to the provider (temperature, max_tokens, ...).",
    )


class OtherModel(SpecModel):
    """A model on another provider, for `compare_models`."""

    provider: str = Field(description="A key of `providers` in promptyard.yaml.")
    name: str = Field(min_length=1, description="The model name that provider serves.")


class TextPart(SpecModel):
    """Text in a message of several parts."""

    type: Literal["text"]
    text: str = Field(description="A sandboxed Jinja template over the prompt's inputs.")


class ImagePart(SpecModel):
    """An image in a message: sent to the model as an `image_url` part."""

    type: Literal["image"]
    image: str = Field(
        min_length=1,
        description="A sandboxed Jinja template (usually `{{ input }}`) giving an http(s) URL, "
        "a data:image URL, or a repository-relative file path (PNG, JPEG, GIF or WebP, "
        "at most 5 MiB), which is sent as a data: URL.",
    )
    detail: Literal["auto", "low", "high"] | None = Field(
        None, description="The image detail level, passed to the provider."
    )


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(SpecModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | Annotated[list[ContentPart], Field(min_length=1)] = Field(
        description="A sandboxed Jinja template over the prompt's inputs, or a list of "
        "parts: `{type: text, text}` and `{type: image, image}`."
    )

    def templates(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(where in the message, template source) of every template the message holds."""
        if isinstance(self.content, str):
            return [(("content",), self.content)]
        return [
            (("content", index, part.type), part.text if part.type == "text" else part.image)
            for index, part in enumerate(self.content)
        ]


class HistoryEntry(SpecModel):
    """Where a conversation input's turns go: `{history: NAME}` splices input NAME here."""

    history: str = Field(
        min_length=1, description="A declared input of `type: messages`, spliced in as-is."
    )

    def templates(self) -> list[tuple[tuple[str | int, ...], str]]:
        return []  # the turns are data, never rendered


def _message_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "history" if "history" in value else "message"
    return "history" if isinstance(value, HistoryEntry) else "message"


MessageEntry = Annotated[
    Annotated[Message, Tag("message")] | Annotated[HistoryEntry, Tag("history")],
    Discriminator(_message_kind),
]


class Tool(SpecModel):
    """A function the model may call; the model answers with a call instead of text."""

    name: FunctionName = Field(
        description="A function name: letters, digits, `_` and `-`, at most 64, not a digit first.",
    )
    description: str = Field(
        "", description="What the tool does; a sandboxed Jinja template over the inputs."
    )
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the call's arguments (an object schema).",
    )
    strict: bool = Field(
        False, description="Ask the provider to make arguments match `parameters` exactly."
    )


class OutputSpec(SpecModel):
    format: Literal["text", "json"] = "text"
    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="JSON Schema the output must satisfy."
    )
    strict: bool = Field(
        False,
        description="Ask the provider for structured output against `schema` "
        "(response_format json_schema) instead of free JSON.",
    )

    @field_validator("strict")
    @classmethod
    def _strict_needs_schema(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("schema_") is None:
            raise invalid("invalid-value", "output.strict needs output.schema; add a schema")
        return value


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
    compare_models: list[Annotated[str, Field(min_length=1)] | OtherModel] = Field(
        default_factory=list,
        description="Models `promptyard diff NAME` (without --base) runs this eval on besides "
        "the prompt's own, on the same cases, and compares with it: a model name on the "
        "prompt's provider, or {provider, name}. The prompt's parameters are sent to each.",
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
        description="Each value is a JSON Schema, or `{type: messages}` for chat turns (see "
        "`history`); an input is required unless it has a default.",
    )
    messages: list[MessageEntry] = Field(
        min_length=1,
        description="Chat messages (templates), and `{history: NAME}` entries where the turns "
        "of a `type: messages` input go.",
    )
    tools: list[Tool] = Field(default_factory=list, description="Functions the model may call.")
    tool_choice: str = Field(
        "auto",
        description="`auto` (the model decides), `none`, `required` (some tool), "
        "or a tool's name (that tool).",
    )
    allow_client_tools: bool = Field(
        False,
        description="Let gateway clients add their own `tools` to this managed prompt's "
        "(refused with 422 otherwise).",
    )
    output: OutputSpec | None = None
    evals: list[EvalSpec] = Field(default_factory=list)

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[Tool]) -> list[Tool]:
        seen: dict[str, int] = {}
        for index, tool in enumerate(tools):
            if tool.name in seen:
                raise invalid(
                    "duplicate-tool",
                    "tools[{index}] repeats the tool name {name!r} of tools[{first}]; "
                    "rename or remove one",
                    index=index,
                    name=tool.name,
                    first=seen[tool.name],
                )
            seen[tool.name] = index
        return tools

    @field_validator("tool_choice")
    @classmethod
    def _known_tool_choice(cls, value: str, info: ValidationInfo) -> str:
        names = [tool.name for tool in info.data.get("tools") or []]
        if value in ("auto", "none"):
            return value
        if not names:
            raise invalid(
                "unknown-tool-choice",
                "tool_choice {value!r} needs tools; declare `tools` or use auto",
                value=value,
            )
        if value != "required" and value not in names:
            raise invalid(
                "unknown-tool-choice",
                "tool_choice {value!r} is neither auto, none, required nor a declared tool "
                "({names})",
                value=value,
                names=", ".join(names),
            )
        return value
