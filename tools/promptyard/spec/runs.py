"""An eval run's files (`.promptyard/runs/<run-id>/`): `results.jsonl`, one `ResultRow` per
case x repeat, and `summary.json`, a `RunSummary`.

Both are written by promptyard and read back by resumed runs, `runs list`, `load_results`
and the viewer, so keys are written in the order of the fields below and unknown keys are
ignored (a newer promptyard may add some). A results line that does not validate (cut short
by a kill, damaged) is skipped by readers and re-run by a resumed run.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

FORMAT_VERSION = 1

# A number as written: an int stays an int, so a file read and written again is unchanged.
Number = int | float


class ResultRow(BaseModel):
    """One case x repeat of a run: the output, each assertion's verdict, what it cost."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # Fields a row has besides the `load_results` columns: written only when present.
    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = ("tool_calls", "finish_reason", "refusal")
    # Fields that are not `load_results` columns.
    NOT_COLUMNS: ClassVar[tuple[str, ...]] = ("tags", *OPTIONAL_FIELDS)

    run_id: str
    prompt: str
    version: str
    content_hash: str
    dataset: str
    case_id: str = Field(strict=True)
    repeat: int = Field(strict=True)
    model: str = ""
    output: str | None = None
    passed: bool = Field(alias="pass", strict=True)
    score: Number
    latency_ms: Number | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: Number | None = None
    cached: bool = False
    error: str | None = None
    error_kind: str | None = Field(
        None, description="render | request | auth | offline | infra | assertion"
    )
    assertions: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per assertion: type, pass, score, reason, weight, metric.",
    )
    vars: dict[str, Any] | None = Field(None, description="The case's variables.")
    tags: list[str] = Field(default_factory=list, description="The case's tags.")
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    finish_reason: str | None = None
    refusal: str | None = None

    @field_validator("assertions", "tool_calls", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("tags", mode="before")
    @classmethod
    def _only_text_tags(cls, value: Any) -> Any:
        """Tags filter runs; anything but text in them is dropped, not fatal."""
        if value is None:
            return []
        return [t for t in value if isinstance(t, str)] if isinstance(value, list) else value

    @model_serializer(mode="wrap")
    def _written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        row: dict[str, Any] = handler(self)
        if not row.get("tool_calls"):  # no tool call: the key is left out
            row.pop("tool_calls", None)
        for name in ("finish_reason", "refusal"):
            if row.get(name) is None:
                row.pop(name, None)
        return row

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """The columns of `load_results`, in the order rows are written."""
        return tuple(
            info.alias or name
            for name, info in cls.model_fields.items()
            if name not in cls.NOT_COLUMNS
        )


class RunSummary(BaseModel):
    """The outcome of one prompt x dataset eval, written when the run starts (`complete:
    false`) and again when it ends."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    format: int = FORMAT_VERSION
    run_id: str
    prompt: str
    version: str
    content_hash: str
    dataset: str
    model: str
    provider: str
    mode: str = Field(description="live | offline | record")
    cases: int
    passed: int
    failed: int
    errors: int
    infra_errors: int = Field(
        0, description="Errored cases whose error was the provider's (no verdict)."
    )
    pass_rate: Number | None
    mean_score: Number | None
    threshold: Number
    ok: bool = Field(description="The pass rate meets the threshold.")
    repeat: int
    min_pass: int
    rows: int
    cached: int
    latency_ms_p50: Number | None
    latency_ms_p95: Number | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: Number | None
    cost_per_case_usd: Number | None = None
    metrics: dict[str, dict[str, Number]] = Field(
        default_factory=dict, description="Per metric: mean_score, pass_rate, count."
    )
    results_path: str
    complete: bool = True
    duration_s: Number = 0.0
    slice: dict[str, Any] | None = Field(
        None, description="A run on some cases only: {cases, tags, selected, total}."
    )
    started_at: str | None = None
    finished_at: str | None = Field(None, description="None while it runs (or when killed).")
    git: dict[str, Any] | None = Field(None, description="commit, branch, dirty.")
    command: str | None = None
    offline: bool = False
