"""Environment: `serving/environments/<env>.yaml` — which version of each prompt serves."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from promptyard.spec.base import Name, SemVer, SpecModel, invalid


class Canary(SpecModel):
    version: SemVer
    weight: float = Field(
        description="Percent of keys routed to the canary (0..100).",
        json_schema_extra={"minimum": 0, "maximum": 100},
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
