"""The immutable snapshot a registry serves, and how a request resolves against it.

A `ServedSnapshot` wraps a verified `LoadedBundle` (every tagged version, templates compiled,
every environment pin checked). It is built off the request path and never changes once
built; the reconciler swaps a new one in with a single reference assignment, so a request
that read `reconciler.snapshot` once sees one consistent state from start to end.

Resolution (docs/architecture.md §9): `name` + `version` gives that tagged version ("explicit");
`name` + `label` (an environment) gives the pinned stable version, or its canary when a
`key` is given and `in_canary(label, name, key, weight)` says so. No key, no canary.
An experiment running in the label on `name` takes precedence over its pin when a key is
given: the key is the experiment's unit, and `assign(key, experiment)` picks the variant whose
prompt@version (and model) serves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from promptyard.assignment import assign, in_canary
from promptyard.errors import ConfigError
from promptyard.release.bundle import BundledPrompt, LoadedBundle
from promptyard.render import RenderResult, render_prompt
from promptyard.spec.experiment import ExperimentSpec

STABLE, CANARY, EXPLICIT = "stable", "canary", "explicit"
DEFAULT_LABEL = "production"


class LiveAllocations(Protocol):
    """Live weights of running experiments (`promptyard.allocation.LiveAllocations`)."""

    def assign(self, unit: str, experiment: ExperimentSpec) -> str: ...

    def weights(self, experiment: ExperimentSpec) -> list[tuple[str, float]]: ...


class PromptNotFound(ConfigError):
    """An unknown prompt, version or label (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class Pin:
    """A label's pin of one prompt: the stable version and the optional canary."""

    stable: BundledPrompt
    canary: BundledPrompt | None
    weight: float

    def canary_dict(self) -> dict[str, Any] | None:
        if self.canary is None:
            return None
        return {"version": self.canary.version, "weight": self.weight}


def running_dict(
    experiment: ExperimentSpec, weights: list[tuple[str, float]] | None = None
) -> dict[str, Any]:
    """What a client needs to assign an experiment's units itself (`assign`'s inputs);
    `weights`: a Thompson allocation's current ones."""
    current = dict(weights) if weights is not None else {}
    return {
        "name": experiment.name,
        "salt": experiment.assignment.salt,
        "variants": [
            {
                "name": v.name,
                "prompt": v.prompt_name,
                "version": v.prompt_version,
                "model": v.model,
                "weight": current.get(v.name, v.weight),
            }
            for v in experiment.variants
        ],
    }


@dataclass(frozen=True, slots=True)
class ResolvedPrompt:
    """A prompt version chosen for a request, and why (its variant and label)."""

    prompt: BundledPrompt
    variant: str  # stable | canary | explicit (a version was asked for)
    label: str | None
    canary: dict[str, Any] | None  # the label's canary {version, weight}, if it has one
    revision: str | None
    is_fallback: bool = False
    experiment: str | None = None  # the running experiment that chose `variant`
    model: str | None = None  # the experiment variant's model, replacing the prompt's
    # Without a unit: the experiment running on this prompt in the label, for clients that
    # assign themselves ({name, salt, variants: [{name, prompt, version, model, weight}]}).
    running: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.prompt.name

    @property
    def version(self) -> str:
        return self.prompt.version

    @property
    def content_hash(self) -> str:
        return self.prompt.content_hash

    def render(self, variables: Mapping[str, Any] | None = None) -> RenderResult:
        """Render this version; raises VariablesError or RenderError (HTTP 422)."""
        rendered = render_prompt(self.prompt.loaded, variables or {})
        return RenderResult(
            name=rendered.name,
            version=rendered.version,
            variant=self.variant,
            label=self.label,
            content_hash=rendered.content_hash,
            provider=rendered.provider,
            model=self.model or rendered.model,
            parameters=rendered.parameters,
            messages=rendered.messages,
            output_format=rendered.output_format,
            revision=self.revision,
            is_fallback=self.is_fallback,
            tools=rendered.tools,
            tool_choice=rendered.tool_choice,
            response_format=rendered.response_format,
            allow_client_tools=self.prompt.loaded.require().allow_client_tools,
            experiment=self.experiment,
        )

    def to_dict(self) -> dict[str, Any]:
        """The HTTP form of `GET /v1/prompts/{name}`: the resolution and the full definition."""
        return {
            "variant": self.variant,
            "label": self.label,
            "canary": self.canary,
            "revision": self.revision,
            "is_fallback": self.is_fallback,
            "experiment": self.experiment,
            "running_experiment": self.running,
            **self.prompt.definition(),
            **({"model": self.model} if self.model else {}),
        }


@dataclass(frozen=True, eq=False)
class ServedSnapshot:
    """One verified, immutable state of the registry."""

    bundle: LoadedBundle
    source: str
    is_fallback: bool = False
    built_at: float = field(default_factory=time.time)
    pins: dict[tuple[str, str], Pin] = field(init=False)
    # (label, prompt name) -> the experiment running on that prompt there
    experiments: dict[tuple[str, str], ExperimentSpec] = field(init=False)

    def __post_init__(self) -> None:
        pins: dict[tuple[str, str], Pin] = {}
        for label, env in self.bundle.environments.items():
            for name, pin in env.prompts.items():
                # load_bundle has checked that every pinned version is bundled.
                versions = self.bundle.prompts[name]
                canary = versions[pin.canary.version] if pin.canary else None
                weight = pin.canary.weight if pin.canary else 0.0
                pins[(label, name)] = Pin(versions[pin.version], canary, weight)
        object.__setattr__(self, "pins", pins)
        experiments: dict[tuple[str, str], ExperimentSpec] = {}
        for label, running in self.bundle.experiments.items():
            for experiment in running.values():
                for variant in experiment.variants:
                    experiments[(label, variant.prompt_name)] = experiment
        object.__setattr__(self, "experiments", experiments)

    @property
    def revision(self) -> str:
        return self.bundle.hash

    def running_experiments(self) -> list[ExperimentSpec]:
        """Every experiment running in some label, once."""
        return list({e.name: e for e in self.experiments.values()}.values())

    @property
    def commit(self) -> str:
        return self.bundle.commit

    def labels(self) -> list[str]:
        return sorted(self.bundle.environments)

    def resolve(
        self,
        name: str,
        version: str | None = None,
        label: str | None = DEFAULT_LABEL,
        key: str | None = None,
        allocations: LiveAllocations | None = None,
    ) -> ResolvedPrompt:
        """The version serving `name` for this request; PromptNotFound when there is none.

        `allocations`: the live weights (and sticky units) of `allocation: thompson`
        experiments; without, every experiment assigns with its file's weights.
        """
        versions = self.bundle.prompts.get(name)
        if versions is None:
            raise PromptNotFound(f"no prompt {name!r} has a tagged version in this registry")
        if version is not None:
            prompt = versions.get(version)
            if prompt is None:
                raise PromptNotFound(
                    f"{name} has no version {version}; tagged versions: "
                    + ", ".join(self.bundle.versions(name))
                )
            return ResolvedPrompt(prompt, EXPLICIT, None, None, self.revision, self.is_fallback)
        label = label or DEFAULT_LABEL
        experiment = self.experiments.get((label, name)) if key is not None else None
        if experiment is not None:
            return self._experiment_variant(experiment, label, str(key), allocations)
        pin = self.pins.get((label, name))
        if pin is None:
            if label not in self.bundle.environments:
                raise PromptNotFound(
                    f"no label {label!r}; labels (environments): {', '.join(self.labels()) or 'none'}"
                )
            raise PromptNotFound(f"{name} is not pinned in {label}")
        if pin.canary is not None and key is not None and in_canary(label, name, key, pin.weight):
            return ResolvedPrompt(
                pin.canary, CANARY, label, pin.canary_dict(), self.revision, self.is_fallback
            )
        running = self.experiments.get((label, name))
        return ResolvedPrompt(
            pin.stable,
            STABLE,
            label,
            pin.canary_dict(),
            self.revision,
            self.is_fallback,
            running=None
            if running is None
            else running_dict(running, allocations.weights(running) if allocations else None),
        )

    def _experiment_variant(
        self,
        experiment: ExperimentSpec,
        label: str,
        unit: str,
        allocations: LiveAllocations | None,
    ) -> ResolvedPrompt:
        chosen = allocations.assign(unit, experiment) if allocations else assign(unit, experiment)
        variant = experiment.variant(chosen)
        prompt = self.bundle.prompts[variant.prompt_name][variant.prompt_version]
        return ResolvedPrompt(
            prompt,
            variant.name,
            label,
            None,
            self.revision,
            self.is_fallback,
            experiment=experiment.name,
            model=variant.model,
        )

    def catalog(self) -> list[dict[str, Any]]:
        """Every prompt, its tagged versions and what each label pins (`GET /v1/prompts`)."""
        out = []
        for name in sorted(self.bundle.prompts):
            labels = {}
            for label in self.labels():
                pin = self.pins.get((label, name))
                if pin is not None:
                    labels[label] = {"version": pin.stable.version, "canary": pin.canary_dict()}
            out.append({"name": name, "versions": self.bundle.versions(name), "labels": labels})
        return out
