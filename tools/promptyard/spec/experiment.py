"""A/B experiment: `experiments/<name>.yaml` (docs/architecture.md §5)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from promptyard.spec.base import NAME_PARTS, Name, SpecModel, invalid
from promptyard.spec.environment import Duration, duration_seconds

DEFAULT_FLOOR = 5.0  # percent, as `experiment allocate --floor`
DEFAULT_REWEIGHT_EVERY = "5m"
PROMPT_REF_PATTERN = rf"^{NAME_PARTS}@\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$"


class Variant(SpecModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    prompt: str = Field(pattern=PROMPT_REF_PATTERN, description="`<prompt>@<version>`.")
    model: str | None = Field(None, description="Overrides the prompt's model name.")
    weight: float = Field(
        gt=0,
        le=100,
        description="Percent of traffic (with `allocation: thompson`, the starting weight).",
    )
    floor: float | None = Field(
        None,
        ge=0,
        le=100,
        description="`allocation: thompson`: the least percent of traffic this variant keeps "
        "(default: the experiment's `floor`).",
    )

    @property
    def prompt_name(self) -> str:
        return self.prompt.rsplit("@", 1)[0]

    @property
    def prompt_version(self) -> str:
        return self.prompt.rsplit("@", 1)[1]


class Assignment(SpecModel):
    unit: str = Field("user_id", min_length=1, description="The randomisation unit column.")
    salt: str = Field(min_length=1, description="Makes assignment independent across experiments.")


class Metric(SpecModel):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: Literal["binary", "continuous"]
    direction: Literal["increase", "decrease"] = Field(description="Which way is better.")
    baseline: float = Field(description="Control mean (a rate for binary metrics).")
    sd: float | None = Field(None, gt=0, description="Standard deviation (continuous metrics).")
    mde: float = Field(gt=0, description="Minimum detectable effect.")
    relative_mde: bool = Field(False, description="`mde` is relative to the baseline.")

    @property
    def absolute_mde(self) -> float:
        """The minimum detectable effect in the metric's units (always positive)."""
        return self.mde * abs(self.baseline) if self.relative_mde else self.mde

    @model_validator(mode="after")
    def _possible(self) -> Metric:
        if self.relative_mde and self.baseline == 0:
            raise invalid(
                "experiment-metric",
                "metric {name!r}: a relative mde needs a non-zero baseline",
                name=self.name,
            )
        if self.type != "binary":
            return self
        if not 0 < self.baseline < 1:
            raise invalid(
                "experiment-metric",
                "metric {name!r}: the baseline of a binary metric is a rate and must be "
                "between 0 and 1 (exclusive), got {baseline:g}",
                name=self.name,
                baseline=self.baseline,
            )
        step = self.absolute_mde if self.direction == "increase" else -self.absolute_mde
        target = self.baseline + step
        if not 0 < target < 1:
            raise invalid(
                "experiment-metric",
                "metric {name!r}: an mde of {mde:g} moves the rate from {baseline:g} to "
                "{target:g}, outside (0, 1); use a smaller mde",
                name=self.name,
                mde=self.mde,
                baseline=self.baseline,
                target=target,
            )
        return self


class DecisionRule(SpecModel):
    """Structured, never free text.

    `primary-and-guardrails`: ship when the primary metric is significantly better and no
    guardrail is significantly worse. `k-of-n`: ship when at least `k` of `metrics` (every
    metric when empty) are significantly better, none of them is significantly worse, and
    no guardrail is significantly worse. Under both rules guardrails are tested one-sided
    for harm at the unadjusted `alpha`; the other metrics that decide are Holm-adjusted.
    """

    rule: Literal["primary-and-guardrails", "k-of-n"] = "primary-and-guardrails"
    k: int | None = Field(None, ge=1)
    metrics: list[str] = Field(default_factory=list)


class ExperimentSpec(SpecModel):
    name: Name = Field(description="Must equal the file's name.")
    description: str = ""
    hypothesis: str = ""
    owners: list[str] = Field(default_factory=list)
    variants: list[Variant] = Field(min_length=2)
    control: str | None = Field(None, description="The control variant (default: the first).")
    assignment: Assignment
    metrics: list[Metric] = Field(min_length=1)
    primary: str
    guardrails: list[str] = Field(default_factory=list)
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)
    min_samples: int = Field(
        0,
        ge=0,
        description="Minimum units per variant before deciding; 0: the plan's units per "
        "variant (a sequential experiment: its 30-unit burn-in).",
    )
    daily_traffic: int | None = Field(None, gt=0, description="Expected units per day, in all.")
    sequential: bool = Field(False, description="Use always-valid (mSPRT) p-values.")
    decision: DecisionRule = Field(default_factory=DecisionRule)
    allocation: Literal["fixed", "thompson"] = Field(
        "fixed",
        description="`fixed`: the variants' weights; `thompson`: the serving process re-weights "
        "the variants every `reweight_every` by the probability each is best on the primary "
        "metric (Thompson sampling), each keeping at least its floor.",
    )
    reweight_every: Duration | None = Field(
        None, description="`allocation: thompson`: how often to re-weight (e.g. 5m; default 5m)."
    )
    floor: float | None = Field(
        None,
        ge=0,
        le=100,
        description="`allocation: thompson`: the least percent of traffic every variant keeps "
        "(default 5; a variant's own `floor` wins). The floors must sum to at most 100.",
    )

    @model_validator(mode="after")
    def _allocation(self) -> ExperimentSpec:
        if self.allocation != "thompson":
            given = [f for f in ("reweight_every", "floor") if getattr(self, f) is not None]
            given += [f"variant {v.name!r} floor" for v in self.variants if v.floor is not None]
            if given:
                raise invalid(
                    "experiment-allocation",
                    "{given} only apply with `allocation: thompson`; add it or remove them",
                    given=", ".join(given),
                )
            return self
        floors = self.floors()
        starved = [name for name, floor in floors.items() if floor < 0.01]
        if starved:
            raise invalid(
                "experiment-allocation",
                "variant(s) {names} have a floor below 0.01%: a variant must keep some "
                "traffic to stay measured; raise it",
                names=", ".join(starved),
            )
        total = sum(floors.values())
        if total > 100 + 1e-9:
            raise invalid(
                "experiment-allocation",
                "the variants' floors sum to {total:g}%, above 100%; lower them",
                total=total,
            )
        return self

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        total = sum(v.weight for v in self.variants)
        if not math.isclose(total, 100, abs_tol=1e-6):
            raise invalid(
                "traffic-weights",
                "variant weights sum to {total}, not 100; adjust them",
                total=f"{total:g}",
            )
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise invalid("experiment-reference", "variant names must be unique")
        if self.control is not None and self.control not in names:
            raise invalid(
                "experiment-reference",
                "control {control} is not a variant; use one of {names}",
                control=repr(self.control),
                names=", ".join(names),
            )
        metrics = {m.name for m in self.metrics}
        referenced = [self.primary, *self.guardrails, *self.decision.metrics]
        for name in referenced:
            if name not in metrics:
                raise invalid(
                    "experiment-reference",
                    "metric {name} is not defined under `metrics`; define it or fix the name",
                    name=repr(name),
                )
        if self.decision.rule == "k-of-n" and (
            self.decision.k is None or self.decision.k > len(self.decision.metrics or metrics)
        ):
            raise invalid(
                "experiment-reference",
                "a k-of-n decision needs `k` between 1 and the number of its metrics",
            )
        return self

    def floors(self) -> dict[str, float]:
        """Each variant's floor in percent (`allocation: thompson`)."""
        default = DEFAULT_FLOOR if self.floor is None else self.floor
        return {v.name: default if v.floor is None else v.floor for v in self.variants}

    @property
    def reweight_seconds(self) -> int:
        """Seconds between two re-weightings (`allocation: thompson`)."""
        return duration_seconds(self.reweight_every or DEFAULT_REWEIGHT_EVERY)

    @property
    def control_variant(self) -> Variant:
        return self.variant(self.control or self.variants[0].name)

    def variant(self, name: str) -> Variant:
        """The variant called `name` (KeyError when there is none)."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(name)
