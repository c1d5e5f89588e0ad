"""Rules about the providers that model-graded assertions (`llm-rubric`, `similar`) call."""

from __future__ import annotations

from collections.abc import Iterator

from promptyard.documents import Position
from promptyard.evals.assertions import split_type
from promptyard.evals.providers import PROVIDERS
from promptyard.lint.context import LintContext
from promptyard.lint.registry import Hit, rule
from promptyard.repo.snapshot import LoadedPrompt
from promptyard.spec import Assertion


def _graded_assertions(prompt: LoadedPrompt) -> Iterator[tuple[str, Position, Assertion]]:
    """(file, position, assertion) of every assertion a prompt's evals run: the eval's own
    and its dataset's cases'."""
    assert prompt.model and prompt.document
    for e, spec in enumerate(prompt.model.evals):
        for a, assertion in enumerate(spec.assert_):
            field = "provider" if assertion.provider else "type"
            yield prompt.path, prompt.document.locate(("evals", e, "assert", a, field)), assertion
        dataset = prompt.snapshot.dataset(spec.dataset)
        for index, case in enumerate(dataset.cases):
            for a, assertion in enumerate(case.assert_):
                field = "provider" if assertion.provider else "type"
                yield dataset.path, dataset.locate(index, ("assert", a, field)), assertion


@rule("P019", kind="prompt")
def grading_provider(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model
    config = ctx.config
    if config is None:
        return
    own = prompt.model.model.provider
    own_entry = config.providers.get(own)
    for path, where, assertion in _graded_assertions(prompt):
        kind, _ = split_type(assertion.type)
        if kind is None or kind.grader is None:
            continue
        name = assertion.provider or own
        entry = config.providers.get(name)
        provider_type = PROVIDERS.get(entry.type) if entry else None
        if entry is None or provider_type is None:
            continue  # P007 / C001 report an unknown provider or type
        named = f"provider {name!r} (type {entry.type})"
        if kind.grader == "embeddings":
            if not provider_type.has_embeddings:
                fix = "name one that has, e.g. `provider: <an openai entry>`"
                yield path, where, f"`{assertion.type}` needs embeddings; {named} has none: {fix}"
            elif not (entry.embedding_model or provider_type.default_embedding_model):
                yield (
                    path,
                    where,
                    f"`{assertion.type}` needs an embeddings model; {named} has no default: set "
                    f"`providers.{name}.embedding_model` in promptyard.yaml",
                )
        elif not entry.judge_model and own_entry is not None and entry.type != own_entry.type:
            # Without a judge_model the judge is the prompt's own model, named for another API.
            yield (
                path,
                where,
                f"`{assertion.type}` asks {named} to judge with the prompt's model "
                f"{prompt.model.model.name!r}, a model of type {own_entry.type}: set "
                f"`providers.{name}.judge_model` in promptyard.yaml",
            )
