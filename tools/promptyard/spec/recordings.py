"""A recordings row (`golden/recordings/<prompt>.jsonl`, one per line): one recorded
response, keyed by the request's hash, and the eval slot that first used it.

Rows are written by `eval --record` in the order of the fields below; the answer's optional
fields (`tool_calls`, `finish_reason`, `refusal`) only when present, `latency_ms` rounded to
whole milliseconds. Unknown keys are ignored: the files are machine-written, and older
promptyard versions wrote nothing else. A bad row is reported as D007 with the fix.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from promptyard.spec.base import invalid

KINDS = ("chat", "judge", "embed")
# The answer's fields written only when present (a chat answer's `text` always is).
OPTIONAL_ANSWER_FIELDS = ("tool_calls", "finish_reason", "refusal")
ANSWER_FIELDS = ("text", *OPTIONAL_ANSWER_FIELDS, "vector")


def _bad(why: str) -> Exception:
    return invalid("invalid-recording", why)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _tool_call(call: Any) -> bool:
    return (
        isinstance(call, dict)
        and isinstance(call.get("name"), str)
        and isinstance(call.get("raw_arguments"), str)
    )


class RecordingLine(BaseModel):
    """One line of a recordings file."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    case: str = ""
    repeat: int = Field(0, ge=0)
    kind: Literal["chat", "judge", "embed"]
    dataset: str = ""
    model: str = ""
    key: str = Field(min_length=64, max_length=64, description="The request's sha256.")
    text: str | None = Field(None, description="The response text (chat and judge rows).")
    tool_calls: list[dict[str, Any]] | None = Field(
        None, description="{id, name, arguments, raw_arguments} per call the model made."
    )
    finish_reason: str | None = None
    refusal: str | None = None
    # int | float: a recorded integer stays one when the file is written again.
    vector: list[int | float] | None = Field(None, description="The embedding (embed rows).")
    tokens_in: int | None = Field(None, ge=0)
    tokens_out: int | None = Field(None, ge=0)
    latency_ms: int | float = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _check(cls, value: Any) -> Any:
        """The checks with the fix in their message, in the order a reader meets them; only
        the answer fields of the row's kind are kept."""
        if not isinstance(value, dict):
            raise _bad("each line must be a JSON object")
        key, kind = value.get("key"), value.get("kind")
        if not isinstance(key, str) or len(key) != 64:
            raise _bad("`key` must be the request's sha256 (64 hex digits)")
        if kind not in KINDS:
            raise _bad(f"`kind` must be one of {', '.join(KINDS)}")
        row = {k: v for k, v in value.items() if k not in ANSWER_FIELDS}
        if kind == "embed":
            vector = value.get("vector")
            if not isinstance(vector, list) or not all(
                _number(x) and math.isfinite(x) for x in vector
            ):
                raise _bad("`vector` must be a list of numbers")
            row["vector"] = vector
        else:
            if not isinstance(value.get("text"), str):
                raise _bad("`text` must be the response text")
            row["text"] = value["text"]
            calls = value.get("tool_calls")
            if calls is not None:
                if not isinstance(calls, list) or not all(_tool_call(c) for c in calls):
                    raise _bad(
                        "`tool_calls` must be a list of {id, name, arguments, raw_arguments}"
                    )
                row["tool_calls"] = calls
            for name in ("finish_reason", "refusal"):
                if value.get(name) is not None:
                    if not isinstance(value[name], str):
                        raise _bad(f"`{name}` must be a string or null")
                    row[name] = value[name]
        if not _count(value.get("tokens_in")) or not _count(value.get("tokens_out")):
            raise _bad("`tokens_in`/`tokens_out` must be counts or null")
        latency = value.get("latency_ms", 0)
        if not _number(latency) or not latency >= 0:
            raise _bad("`latency_ms` must be a number >= 0")
        repeat = value.get("repeat", 0)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 0:
            raise _bad("`repeat` must be an integer >= 0")
        # Labels only: whatever was recorded reads as text.
        for name in ("model", "dataset", "case"):
            row[name] = str(value.get(name, ""))
        return row

    @model_serializer(mode="wrap")
    def _written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        row: dict[str, Any] = handler(self)
        for name in (*OPTIONAL_ANSWER_FIELDS, "text", "vector"):
            if row.get(name) is None:
                row.pop(name, None)
        row["latency_ms"] = round(row["latency_ms"])
        return row

    def answer(self) -> dict[str, Any]:
        """The response: {"text", "tool_calls"?, "finish_reason"?, "refusal"?} or {"vector"}."""
        return {
            name: getattr(self, name) for name in ANSWER_FIELDS if getattr(self, name) is not None
        }
