"""LiteLLM's Generic Prompt Management API on the registry service.

A LiteLLM proxy configured with `prompt_integration: generic_prompt_management` and
`api_base: <registry URL>` asks `GET /beta/litellm_prompt_management?prompt_id=NAME` plus the
entry's static `provider_specific_query_params` (here `label`, `version`, `key`), and expects

    {"prompt_id": ..., "prompt_template": [{"role", "content"}, ...],
     "prompt_template_model": ..., "prompt_template_optional_params": {...}}

What LiteLLM does with it (litellm 1.108, `integrations/generic_prompt_management`): it sends
no variables and no per-request key, caches the answer per prompt for the life of its
process, substitutes the caller's `prompt_variables` into `{name}` placeholders of each
message's content itself (`str(value)`), appends the caller's messages, calls
`prompt_template_model` with the optional parameters, and turns any non-2xx answer into an
error for the caller.

So promptyard answers with the resolved version's messages rendered with a `{name}`
placeholder where each input goes. That is faithful only when every input is used as a plain
`{{ name }}` (no filter, condition, loop or expression over it): any other use, a tool
description using an input, or message text that already contains a `{name}` LiteLLM would
fill, is refused with 422 saying where, rather than served wrong. Unknown prompt, version or
label: 404 with `{"detail": ...}` (FastAPI's shape, as LiteLLM's reference server answers) and
promptyard's `{"error": {type, message}}`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from promptyard.errors import ConfigError
from promptyard.evals.providers.base import ChatRequest
from promptyard.limits import time_limit
from promptyard.registry.snapshot import (
    DEFAULT_LABEL,
    PromptNotFound,
    ResolvedPrompt,
    ServedSnapshot,
)
from promptyard.render import (
    RENDER_TIME_LIMIT_S,
    make_environment,
    response_format,
)
from promptyard.spec.prompt import Message
from promptyard.templates import partial_name

PATH = "/beta/litellm_prompt_management"
QUERY_PARAMS = ("prompt_id", "label", "version", "key")
ENDPOINT = "litellm"  # the `endpoint` label of the service's request metric

_PARSER = make_environment(lambda name: None)


class NotServableToLiteLLM(ConfigError):
    """A prompt version LiteLLM's placeholder substitution cannot reproduce (HTTP 422)."""


def litellm_prompt(resolved: ResolvedPrompt, prompt_id: str) -> dict[str, Any]:
    """The Generic Prompt Management answer for `resolved`; raises NotServableToLiteLLM."""
    prompt = resolved.prompt
    loaded = prompt.loaded
    spec = loaded.require()
    where = f"{spec.name} {spec.version}"
    if spec.tools:
        raise NotServableToLiteLLM(
            f"{where} declares tools, which promptyard does not pass to LiteLLM's prompt API "
            "yet; serve it through `promptyard gateway`"
        )
    plain_messages: list[tuple[Message, str]] = []  # (message, its text template)
    for message in spec.messages:
        if not isinstance(message, Message) or not isinstance(message.content, str):
            raise NotServableToLiteLLM(
                f"{where} splices a conversation or has image/text parts, which LiteLLM's "
                "prompt API cannot carry; serve it through `promptyard gateway`"
            )
        plain_messages.append((message, message.content))
    inputs = set(spec.inputs)
    for index, (_, text) in enumerate(plain_messages):
        for problem, line in _non_plain_uses(text, inputs, prompt.partials, set()):
            position = loaded.message_position(index, line).line if line else None
            at = f"{loaded.path}:{position}" if position else loaded.path
            raise NotServableToLiteLLM(
                f"{where}: {at}: messages[{index}] {problem}; LiteLLM sends promptyard no "
                "variables and only fills `{name}` placeholders, so each input must appear as "
                "a plain `{{ name }}`; serve this prompt through `promptyard gateway` or "
                "`Registry.render`"
            )
    token = secrets.token_hex(8)
    sentinels = {name: f"\x00{token}:{name}\x00" for name in inputs}
    templates = loaded.compiled_templates()[: len(spec.messages)]
    messages = []
    with time_limit(RENDER_TIME_LIMIT_S, f"rendering {spec.name} for LiteLLM"):
        for index, ((message, _), template) in enumerate(
            zip(plain_messages, templates, strict=True)
        ):
            try:
                content = template.render(sentinels)
            except Exception as exc:  # user code: any failure is the template's
                raise NotServableToLiteLLM(
                    f"{where}: {loaded.path}: messages[{index}] failed to render: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            clash = sorted(name for name in inputs if f"{{{name}}}" in content)
            if clash:
                raise NotServableToLiteLLM(
                    f"{where}: {loaded.path}: messages[{index}] contains the text "
                    f"{{{clash[0]}}}, which LiteLLM would replace with variable {clash[0]!r}"
                )
            for name, sentinel in sentinels.items():
                content = content.replace(sentinel, f"{{{name}}}")
            messages.append({"role": message.role, "content": content})
    model = resolved.model or spec.model.name
    call = ChatRequest(
        model,
        [],
        dict(spec.model.parameters),
        spec.output is not None and spec.output.format == "json",
        response_format=response_format(spec),
    ).body()
    optional = {k: v for k, v in call.items() if k not in ("model", "messages")}
    return {
        "prompt_id": prompt_id,
        "prompt_template": messages,
        "prompt_template_model": model,
        "prompt_template_optional_params": optional,
        "promptyard": {
            "name": resolved.name,
            "version": resolved.version,
            "variant": resolved.variant,
            "label": resolved.label,
            "content_hash": resolved.content_hash,
            "revision": resolved.revision,
            "is_fallback": resolved.is_fallback,
            "variables": sorted(inputs),
        },
    }


def _non_plain_uses(
    source: str, inputs: set[str], partials: Mapping[str, str], seen: set[str]
) -> Iterator[tuple[str, int]]:
    """(what is wrong, template line) for each use of an input other than a plain `{{ x }}`,
    following includes into the partials (reported at the include's line)."""
    try:
        ast = _PARSER.parse(source)
    except TemplateSyntaxError as exc:  # released versions lint clean; say so all the same
        yield f"has a template syntax error: {exc.message}", exc.lineno
        return
    plain = {
        id(node)
        for output in ast.find_all(nodes.Output)
        for node in output.nodes
        if isinstance(node, nodes.Name)
    }
    for name in ast.find_all(nodes.Name):
        if name.ctx == "load" and name.name in inputs and id(name) not in plain:
            yield (
                f"uses input {name.name!r} in an expression or statement (line {name.lineno})",
                name.lineno,
            )
    for node in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        target = getattr(node, "template", None)  # each of these four node types has one
        if not isinstance(target, nodes.Const):
            yield "includes a template by a computed name", node.lineno
            continue
        included = partial_name(str(target.value))
        if included is None or included in seen or included not in partials:
            continue
        seen.add(included)
        for problem, _ in _non_plain_uses(partials[included], inputs, partials, seen):
            yield f"includes {included!r}, which {problem}", node.lineno


def _query_problem(params: Mapping[str, str]) -> str | None:
    unknown = sorted(set(params) - set(QUERY_PARAMS))
    if unknown:
        return (
            f"unknown query parameter {unknown[0]!r}; this endpoint takes "
            + ", ".join(QUERY_PARAMS)
            + " (set them in LiteLLM's provider_specific_query_params)"
        )
    if not params.get("prompt_id"):
        return "`prompt_id` is required (the prompt's name)"
    return None


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"detail": message, "error": {"type": kind, "message": message}}, status_code=status
    )


def litellm_routes(
    on: Callable[..., Any], known: Callable[[ServedSnapshot, str], str]
) -> list[Route]:
    """The routes to add to the registry app: `on` binds a handler to the app's service,
    `known` is the service's metric label of a prompt name (bounded cardinality)."""

    async def handler(service: Any, request: Request) -> Response:
        return await serve_litellm_prompt(service, request, known)

    return [Route(PATH, on(handler), methods=["GET"])]


async def serve_litellm_prompt(
    service: Any, request: Request, known: Callable[[ServedSnapshot, str], str]
) -> Response:
    """`GET /beta/litellm_prompt_management?prompt_id=NAME[&label=L|&version=V][&key=K]`."""
    snapshot = service.reconciler.snapshot
    if snapshot is None:
        return _error(503, "not_ready", "no snapshot is being served yet; see /v1/status")
    params = request.query_params
    problem = _query_problem(params)
    name = params.get("prompt_id") or ""
    if problem is not None:
        service.count(ENDPOINT, known(snapshot, name), "", "", 422)
        return _error(422, "invalid_request", problem)
    started = time.perf_counter()
    try:
        resolved = snapshot.resolve(
            name,
            params.get("version") or None,
            params.get("label") or DEFAULT_LABEL,
            params.get("key") or None,
        )
    except PromptNotFound as exc:
        service.count(ENDPOINT, known(snapshot, name), "", "", 404)
        return _error(404, "not_found", exc.message)
    try:
        answer = await run_in_threadpool(litellm_prompt, resolved, name)
    except NotServableToLiteLLM as exc:
        service.count(ENDPOINT, name, resolved.version, resolved.variant, 422)
        return _error(422, "not_servable_to_litellm", exc.message)
    service.metrics.render_seconds.labels(name).observe(time.perf_counter() - started)
    service.count(ENDPOINT, name, resolved.version, resolved.variant, 200)
    headers = {
        "x-promptyard-prompt": resolved.name,
        "x-promptyard-version": resolved.version,
        "x-promptyard-variant": resolved.variant,
    }
    return JSONResponse(answer, headers=headers)
