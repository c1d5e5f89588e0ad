"""Another model for a prompt: which provider and model a `--model` or `compare_models`
item names, and the prompt as if its spec named that model.

The model comparison (`promptyard.compare.models`) runs these variants beside the prompt,
`recordings prune` replays them (an eval's `compare_models` keep their recorded rows in
use), and lint rule P016 checks the items with `resolve_model`.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptyard.documents import Document
from promptyard.errors import ConfigError
from promptyard.evals.providers import PROVIDERS
from promptyard.names import closest
from promptyard.repo.snapshot import LoadedPrompt
from promptyard.spec import ModelRef, ProjectConfig
from promptyard.spec.prompt import OtherModel

ModelChoice = str | OtherModel


@dataclass(frozen=True)
class ModelTarget:
    """A model to run a prompt on: a provider of promptyard.yaml and a model name."""

    provider: str
    name: str

    def label(self, own_provider: str) -> str:
        """`name` on the prompt's own provider, else `provider:name`."""
        return self.name if self.provider == own_provider else f"{self.provider}:{self.name}"


def parse_model_option(text: str, config: ProjectConfig, own_provider: str) -> ModelChoice:
    """`--model NAME` (on the prompt's provider) or `--model PROVIDER:NAME`.

    `PROVIDER:NAME` applies when the text before the first `:` is a provider of
    promptyard.yaml, so a model name holding `:` (Ollama's `llama3:8b`) still works as is.
    A prefix that is a likely typo of a provider is refused (ConfigError, exit 2)."""
    if not text.strip():
        raise ConfigError("--model needs a model name", hint="e.g. --model gpt-4o")
    prefix, colon, rest = text.partition(":")
    if colon and rest and prefix in config.providers:
        return OtherModel(provider=prefix, name=rest)
    typo = closest(prefix, config.providers) if colon and rest else None
    if typo is not None:
        raise ConfigError(
            f"--model {text}: no provider {prefix!r} in promptyard.yaml (did you mean "
            f"{typo}:{rest}?)",
            hint=f"for a model name holding ':' on the prompt's provider: "
            f"--model {own_provider}:{text}",
        )
    return text.strip()


def resolve_model(choice: ModelChoice, own: ModelRef, config: ProjectConfig) -> ModelTarget:
    """The provider and model `choice` names for a prompt whose model is `own`.

    Raises ConfigError (exit 2) for an unknown provider or provider type, for the prompt's
    own model, and for a model whose requests would be identical to the prompt's own (same
    provider type and model name: the cache and recordings could not tell them apart)."""
    if isinstance(choice, str):
        target = ModelTarget(own.provider, choice)
    else:
        target = ModelTarget(choice.provider, choice.name)
    where = target.label(own.provider)
    known = sorted(config.providers)
    provider = config.providers.get(target.provider)
    if provider is None:
        raise ConfigError(
            f"model {where}: provider {target.provider!r} is not defined in promptyard.yaml "
            f"(defined: {', '.join(known) or 'none'})",
            hint="add it under `providers:` or name a defined one",
        )
    if provider.type not in PROVIDERS:
        raise ConfigError(
            f"model {where}: provider {target.provider!r} has unknown type {provider.type!r}",
            hint=f"known types: {', '.join(sorted(PROVIDERS))}",
        )
    own_config = config.providers.get(own.provider)
    if target.name == own.name and (
        target.provider == own.provider
        or (own_config is not None and own_config.type == provider.type)
    ):
        same = (
            "is the prompt's own model"
            if target.provider == own.provider
            else (
                f"sends the same requests as the prompt's own ({own.provider}:{own.name}, the "
                f"same provider type {provider.type!r}), so their answers cannot be told apart"
            )
        )
        raise ConfigError(f"model {where} {same}", hint="name a different model")
    return target


def with_model(prompt: LoadedPrompt, target: ModelTarget) -> LoadedPrompt:
    """`prompt` as if its spec named `target` as its model (parameters kept).

    Its content hash differs from the prompt's (the spec's `model` is part of it), and
    names the prompt's own model too (the grader of its model-graded assertions), so its
    runs have their own directory; its name is the prompt's, so its recordings are too."""
    spec = prompt.require()
    prompt.require_hash()
    assert prompt.document is not None
    model = spec.model.model_copy(update={"provider": target.provider, "name": target.name})
    variant = LoadedPrompt(prompt.snapshot, prompt.name, prompt.path)
    data = dict(prompt.document.data)
    data["model"] = {**data.get("model", {}), "provider": target.provider, "name": target.name}
    data["x-compared-with"] = {"provider": spec.model.provider, "name": spec.model.name}
    variant.document = Document(prompt.path, data)
    variant.model = spec.model_copy(update={"model": model})
    return variant
