"""Rules about prompt specs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from promptyard.conversation import as_json_schema, messages_inputs
from promptyard.errors import ConfigError
from promptyard.evals.assertions import assertion_problem
from promptyard.evals.other_models import resolve_model
from promptyard.evals.providers import PROVIDERS, SET_BY_PROMPTYARD
from promptyard.lint.context import LintContext, schema_error
from promptyard.lint.registry import Hit, rule
from promptyard.names import closest
from promptyard.problems import Problem
from promptyard.render import template_label
from promptyard.repo.snapshot import LoadedPrompt
from promptyard.spec.prompt import HistoryEntry
from promptyard.templates import TemplateInfo, analyze_template, partial_name


@rule("P001", kind="prompt")
def name_matches_path(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    if prompt.model.name != prompt.name:
        yield (
            prompt.path,
            prompt.document.locate(("name",)),
            f"name {prompt.model.name!r} does not match the file path; set `name: {prompt.name}` "
            "or move the file",
        )


def _variables_per_message(prompt: LoadedPrompt) -> list[dict[str, int | None]]:
    """Free variables of each message: name -> line in the message (None when the variable
    is used only by a partial the message includes, directly or not)."""
    _, partial_infos, _ = prompt.resolution
    per_message = []
    for info in prompt.message_templates:
        used: dict[str, int | None] = dict(info.variables)
        seen: set[str] = set()
        stack: list[TemplateInfo] = [info]
        while stack:
            for include, _ in stack.pop().includes:
                name = partial_name(include or "")
                if name is None or name in seen or name not in partial_infos:
                    continue
                seen.add(name)
                for variable in partial_infos[name].variables:
                    used.setdefault(variable, None)
                stack.append(partial_infos[name])
        per_message.append(used)
    return per_message


@rule("P003", kind="prompt")
def undeclared_variable(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model
    declared = set(prompt.model.inputs)
    reported: set[str] = set()
    sources = prompt.template_sources
    for (index, loc, _), used in zip(sources, _variables_per_message(prompt), strict=True):
        for name in sorted(set(used) - declared - reported):
            reported.add(name)
            typo = closest(name, declared)
            fix = (
                f"did you mean {{{{ {typo} }}}}?"
                if typo
                else f"add `{name}: {{type: string}}` under inputs"
            )
            yield (
                prompt.path,
                prompt.message_position(index, used[name] or 1, loc),
                f"{template_label(index, loc)} uses {{{{ {name} }}}} but `inputs` does not declare it; {fix}",
            )


@rule("P004", kind="prompt")
def unused_input(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    if any(info.error for info in prompt.message_templates):
        return
    used = set().union(*_variables_per_message(prompt))
    used |= {v for tool in prompt.model.tools for v in analyze_template(tool.description).variables}
    used |= {m.history for m in prompt.model.messages if isinstance(m, HistoryEntry)}
    for name in prompt.model.inputs:
        if name not in used:
            yield (
                prompt.path,
                prompt.document.locate(("inputs", name), key=True),
                f"input {name!r} is declared but never used; use it in a message or remove it",
            )


@rule("P007", kind="prompt")
def unknown_provider(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    if ctx.config is None:
        return  # the config's own problems are reported on promptyard.yaml
    known = sorted(ctx.config.providers)
    if prompt.model.model.provider not in ctx.config.providers:
        yield (
            prompt.path,
            prompt.document.locate(("model", "provider")),
            f"provider {prompt.model.model.provider!r} is not defined in promptyard.yaml "
            f"(defined: {', '.join(known) or 'none'})",
        )
    for e, spec in enumerate(prompt.model.evals):
        for a, assertion in enumerate(spec.assert_):
            if assertion.provider is not None and assertion.provider not in ctx.config.providers:
                yield (
                    prompt.path,
                    prompt.document.locate(("evals", e, "assert", a, "provider")),
                    f"provider {assertion.provider!r} is not defined in promptyard.yaml",
                )


@rule("P008", kind="prompt")
def invalid_output_schema(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    output = prompt.model.output
    if output is not None and output.schema_ is not None:
        error = schema_error(output.schema_)
        if error:
            yield (
                prompt.path,
                prompt.document.locate(("output", "schema")),
                f"output.schema is not a valid JSON Schema: {error}",
            )


@rule("P009", kind="prompt")
def invalid_input_schema(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    from jsonschema import Draft202012Validator

    for name, declared in prompt.model.inputs.items():
        schema = as_json_schema(declared)  # `{type: messages}` is promptyard's extension
        error = schema_error(schema)
        if error is None and "default" in schema:
            if not Draft202012Validator(schema).is_valid(schema["default"]):
                error = f"default {schema['default']!r} does not match its schema"
        elif error is not None:
            error = f"not a valid JSON Schema: {error}"
        if error is not None:  # locating needs a second parse: only for findings
            yield (
                prompt.path,
                prompt.document.locate(("inputs", name)),
                f"input {name!r}: {error}",
            )


@rule("A001", kind="prompt")  # also reports A002 (value shape) and A003 (file:// values)
def eval_assertions(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    """Eval-level assertions; case-level ones are checked with their dataset."""
    assert prompt.model and prompt.document
    for e, spec in enumerate(prompt.model.evals):
        for a, assertion in enumerate(spec.assert_):
            problem = assertion_problem(assertion, ctx.head.read)
            if problem:
                code, message = problem
                where = prompt.document.locate(("evals", e, "assert", a))
                yield Problem.at(code, prompt.path, where, message)


@rule("D001", kind="prompt")
def dataset_missing(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    for e, spec in enumerate(prompt.model.evals):
        dataset = prompt.snapshot.dataset(spec.dataset)
        if dataset.missing:
            golden = ctx.head.paths.golden
            yield (
                prompt.path,
                prompt.document.locate(("evals", e, "dataset")),
                f"dataset {spec.dataset!r} does not exist; paths are relative to the "
                f"repository root, e.g. {golden}/{PurePosixPath(spec.dataset).name}",
            )


@rule("D002", kind="prompt")
def dataset_path_unsafe(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    for e, spec in enumerate(prompt.model.evals):
        dataset = prompt.snapshot.dataset(spec.dataset)
        if dataset.unsafe:
            yield (
                prompt.path,
                prompt.document.locate(("evals", e, "dataset")),
                f"dataset {spec.dataset!r}: {dataset.unsafe}",
            )


@rule("P010", kind="prompt")
def json_output_mentioned(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    output = prompt.model.output
    if output is None or output.format != "json" or output.strict:
        return  # structured output (json_schema) needs no instruction, JSON mode does
    partials, _, _ = prompt.resolution
    texts = [source for _, _, source in prompt.template_sources] + list(partials.values())
    if not any("json" in text.lower() for text in texts):
        yield (
            prompt.path,
            prompt.document.locate(("output", "format")),
            "output.format is json but no message asks for JSON (OpenAI-compatible servers "
            "reject JSON mode without it); say 'Reply in JSON' in a message",
        )


@rule("P013", kind="prompt")
def eval_without_assertions(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    for e, spec in enumerate(prompt.model.evals):
        if spec.assert_:
            continue
        dataset = prompt.snapshot.dataset(spec.dataset)
        if dataset.cases and not any(case.assert_ for case in dataset.cases):
            yield (
                prompt.path,
                prompt.document.locate(("evals", e)),
                f"eval on {spec.dataset} has no assertions (here or in its cases), so every "
                "case passes; add `assert:` entries",
            )


@rule("P014", kind="prompt")
def unknown_model_parameter(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    config = ctx.config
    model = prompt.model.model
    provider = config.providers.get(model.provider) if config else None
    provider_type = PROVIDERS.get(provider.type) if provider else None
    if provider is None or provider_type is None:
        return  # P008 / C001 report an unknown provider or type
    # What promptyard sets itself (messages, tools from the spec) is never a prompt parameter.
    known = (provider_type.request_parameters | set(provider.extra_parameters)) - SET_BY_PROMPTYARD
    for name in model.parameters:
        if name in known or name.startswith("x-"):
            continue
        if name in SET_BY_PROMPTYARD:
            fix = "promptyard sets it; remove it from parameters"
        else:
            typo = closest(name, known)
            fix = (f"did you mean {typo!r}? " if typo else "") + (
                f"if the endpoint accepts it, list it under `providers.{model.provider}"
                ".extra_parameters` in promptyard.yaml"
            )
        yield (
            prompt.path,
            prompt.document.locate(("model", "parameters", name), key=True),
            f"{name!r} is not a request parameter of provider type {provider.type!r}; {fix}",
        )


@rule("P015", kind="prompt")
def sandbox_violation(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    # Caught here, before `release` tags a version that can never render.
    _, partial_infos, _ = prompt.resolution
    for (index, loc, _), info in zip(
        prompt.template_sources, prompt.message_templates, strict=True
    ):
        for expression, line in info.forbidden:
            yield (
                prompt.path,
                prompt.message_position(index, line, loc),
                f"{template_label(index, loc)} uses `{expression}`, which the sandbox always refuses "
                "(SecurityError); remove it",
            )
    folder = prompt.snapshot.paths.partials
    for name, info in sorted(partial_infos.items()):
        for expression, line in info.forbidden:
            yield Problem(
                f"{folder}/{name}",
                line,
                1,
                "P015",
                f"uses `{expression}`, which the sandbox always refuses (SecurityError); remove it",
            )


@rule("P016", kind="prompt")
def unknown_compare_model(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    if ctx.config is None:
        return  # the config's own problems are reported on promptyard.yaml
    for e, spec in enumerate(prompt.model.evals):
        seen: set[tuple[str, str]] = set()
        for m, choice in enumerate(spec.compare_models):
            loc: tuple[str | int, ...] = ("evals", e, "compare_models", m)
            try:
                target = resolve_model(choice, prompt.model.model, ctx.config)
            except ConfigError as exc:
                fix = f"; {exc.hint}" if exc.hint else ""
                yield (prompt.path, prompt.document.locate(loc), exc.message + fix)
                continue
            if (target.provider, target.name) in seen:
                yield (
                    prompt.path,
                    prompt.document.locate(loc),
                    f"evals[{e}].compare_models repeats {target.label(prompt.model.model.provider)}; "
                    "remove one",
                )
            seen.add((target.provider, target.name))


@rule("P017", kind="prompt")
def history_input(ctx: LintContext, prompt: LoadedPrompt) -> Iterator[Hit]:
    assert prompt.model and prompt.document
    conversations = messages_inputs(prompt.model.inputs)
    for index, entry in enumerate(prompt.model.messages):
        if isinstance(entry, HistoryEntry) and entry.history not in conversations:
            known = ", ".join(sorted(conversations)) or "none"
            yield (
                prompt.path,
                prompt.document.locate(("messages", index, "history")),
                f"messages[{index}] splices {entry.history!r}, which is not a declared input "
                f"of type messages (those: {known}); declare `{entry.history}: "
                "{type: messages}` under inputs",
            )
