"""Environment: `serving/environments/<env>.yaml` — which version of each prompt serves.

A canary may carry a rollout strategy: `steps` (weights, each held for a `pause`) and an
`analysis` (per metric the threshold the canary must not exceed against the stable version,
the minimum requests per side, the significance level). `promptyard rollout run` executes it.
`experiments` lists the A/B experiments running in the environment.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from promptyard.spec.base import Name, SemVer, SpecModel, invalid

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
DURATION_PATTERN = r"^(?:\d+h)?(?:\d+m)?(?:\d+s)?$"


def duration_seconds(text: str) -> int:
    """Seconds of a duration written `1h`, `15m`, `90s` or `1h30m`; ValueError otherwise."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _check_duration(value: str) -> str:
    try:
        seconds = duration_seconds(value)
    except ValueError:
        raise invalid(
            "duration",
            "{value} is not a duration; write hours, minutes and seconds like 15m, 1h or 1h30m",
            value=repr(value),
        ) from None
    if seconds <= 0:
        raise invalid("duration", "{value} is not a positive duration", value=repr(value))
    return value


Duration = Annotated[
    str, AfterValidator(_check_duration), Field(json_schema_extra={"pattern": DURATION_PATTERN})
]


class RolloutStep(SpecModel):
    weight: float = Field(
        description="Percent of keys routed to the canary during this step (0 < weight <= "
        "100); the last step is 100: reaching it pins the canary as the stable version.",
        gt=0,
        le=100,
    )
    pause: Duration | None = Field(
        None,
        description="How long the step lasts at least (e.g. 15m, 1h) before the next; none: "
        "advance as soon as the analysis has enough requests and finds nothing worse.",
    )


class RatioThreshold(SpecModel):
    max_ratio: float = Field(
        description="Abort when canary / stable is significantly above this ratio.", gt=1
    )


class DropThreshold(SpecModel):
    max_drop: float = Field(
        description="Abort when stable - canary is significantly above this drop.", ge=0, lt=1
    )


class AnalysisMetrics(SpecModel):
    error_rate: RatioThreshold | None = Field(
        None, description="Share of failed requests (gateway errors and upstream failures)."
    )
    latency_p95: RatioThreshold | None = Field(
        None, description="95th percentile of the request latency."
    )
    cost_per_request: RatioThreshold | None = Field(
        None, description="Mean cost in USD per request (needs pricing of the model)."
    )
    quality: DropThreshold | None = Field(
        None,
        description="Online quality: the pass rate of the prompt's reference-free checks "
        "on sampled live answers (needs the prompt opted in to online quality).",
    )

    def configured(self) -> dict[str, RatioThreshold | DropThreshold]:
        """The metrics that have a threshold, by name."""
        return {
            name: threshold
            for name in type(self).model_fields
            if (threshold := getattr(self, name)) is not None
        }


class Analysis(SpecModel):
    metrics: AnalysisMetrics = Field(description="What is compared, each with its threshold.")
    min_requests: int = Field(
        100, ge=1, description="Requests per side (canary and stable) in a step before judging."
    )
    alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Chance of aborting a healthy canary over the whole rollout, however often "
        "it is looked at (split evenly over the metrics).",
    )
    interval: Duration = Field("1m", description="How often the controller looks.")


class Canary(SpecModel):
    version: SemVer
    weight: float = Field(
        description="Percent of keys routed to the canary (0..100).",
        json_schema_extra={"minimum": 0, "maximum": 100},
    )
    steps: list[RolloutStep] | None = Field(
        None, description="The rollout strategy `promptyard rollout run` executes."
    )
    analysis: Analysis | None = Field(
        None, description="When the controller advances or aborts (with `steps`)."
    )

    @field_validator("weight")
    @classmethod
    def _weight_in_range(cls, weight: float) -> float:
        if not 0 <= weight <= 100:
            raise invalid(
                "canary-weight",
                "canary weight {weight} is outside 0..100; it is a percentage of keys",
                weight=weight,
            )
        return weight

    @property
    def has_strategy(self) -> bool:
        return self.steps is not None


# The seed design's strategy: 5% for 15 minutes, 25% for an hour, 50%, then stable; abort when
# errors grow 1.5x, online quality drops 0.03, cost per request grows 1.2x or p95 latency 1.5x.
STRATEGIES: dict[str, dict[str, Any]] = {
    "standard": {
        "steps": [
            {"weight": 5, "pause": "15m"},
            {"weight": 25, "pause": "1h"},
            {"weight": 50},
            {"weight": 100},
        ],
        "analysis": {
            "metrics": {
                "error_rate": {"max_ratio": 1.5},
                "quality": {"max_drop": 0.03},
                "cost_per_request": {"max_ratio": 1.2},
                "latency_p95": {"max_ratio": 1.5},
            },
            "min_requests": 100,
            "alpha": 0.05,
            "interval": "1m",
        },
    }
}


def strategy_problems(canary: Canary) -> list[tuple[tuple[str | int, ...], str]]:
    """What makes a canary's strategy impossible to execute: (location under the canary,
    message with the fix). Lint reports them; the controller refuses such a strategy."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if canary.steps is None:
        if canary.analysis is not None:
            problems.append((("analysis",), "`analysis` without `steps`; add the steps it judges"))
        return problems
    if not canary.steps:
        return [(("steps",), "`steps` is empty; list the weights, the last one 100")]
    for index, (before, step) in enumerate(zip(canary.steps, canary.steps[1:], strict=False)):
        if step.weight <= before.weight:
            problems.append(
                (
                    ("steps", index + 1, "weight"),
                    f"step weights must rise: {step.weight:g} follows {before.weight:g}",
                )
            )
    last = canary.steps[-1]
    if last.weight != 100:
        problems.append(
            (
                ("steps", len(canary.steps) - 1, "weight"),
                f"the last step is {last.weight:g}; end with weight 100 (the canary becomes "
                "stable)",
            )
        )
    elif last.pause is not None:
        problems.append(
            (
                ("steps", len(canary.steps) - 1, "pause"),
                "the last step (100) pins the canary as stable at once; remove its pause",
            )
        )
    if len(canary.steps) < 2:
        problems.append((("steps",), "a strategy needs a canary step before the final 100"))
    if canary.analysis is None:
        problems.append((("steps",), "`steps` without `analysis`; say which metrics decide"))
    elif not canary.analysis.metrics.configured():
        problems.append((("analysis", "metrics"), "no metric has a threshold; add at least one"))
    return problems


class PromptPin(SpecModel):
    version: SemVer = Field(description="The stable version; must exist as a tag.")
    canary: Canary | None = None

    @model_validator(mode="after")
    def _canary_differs(self) -> PromptPin:
        if self.canary is not None and self.canary.version == self.version:
            raise invalid(
                "canary-same-version",
                "canary version {version} is the stable version; pin a different version "
                "or drop the canary",
                version=self.version,
            )
        return self


class EnvironmentSpec(SpecModel):
    environment: Name = Field(description="Must equal the file's name.")
    cluster: str | None = Field(None, description="The serving cluster of this environment.")
    prompts: dict[str, PromptPin] = Field(default_factory=dict)
    experiments: list[Name] = Field(
        default_factory=list,
        description="Running experiments (`experiments/<name>.yaml`): requests for a prompt "
        "one of them tests get the variant `assign` gives their unit.",
    )
