"""`POST /v1/chat/completions` as a pipeline of named stages.

Every request is parsed first; then a managed prompt (`model: prompt:...`) goes through
`MANAGED` and a plain model through `PLAIN` (its body forwarded byte for byte). A stage reads
and fills the request's `Exchange`; one that refuses the request raises `Refused`, which
becomes the error answer and is observed like any other outcome. The observe stage is the
`Observation` the exchange carries: it is finished where the answer is known (the forward
stage, or the end of a stream) and handed to the gateway's observers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import semver
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from promptyard.errors import ConfigError, InfraError
from promptyard.evals.providers.base import ChatRequest
from promptyard.registry.service import error_response, read_json_body, variant_headers
from promptyard.registry.snapshot import PromptNotFound, ResolvedPrompt
from promptyard.render import RenderError, RenderResult, VariablesError
from promptyard.serving.gateway.config import Upstream
from promptyard.serving.gateway.observe import UNKNOWN, Observation
from promptyard.serving.gateway.runtime import Gateway
from promptyard.serving.gateway.upstream import (
    failure,
    passed_headers,
    relay,
    upstream_url,
    usage_of,
)

PROMPT_PREFIX = "prompt:"


@dataclass
class Exchange:
    """One chat request on its way through the stages, and what they found out."""

    request: Request
    seen: Observation
    raw: bytes = b""
    body: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    ref: PromptRef | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)  # after the prompt's
    resolved: ResolvedPrompt | None = None
    rendered: RenderResult | None = None
    upstream: Upstream | None = None
    payload: bytes = b""  # what goes upstream
    stream: bool = False
    strip_usage: bool = False  # usage was asked upstream for the metrics, not by the client
    headers: dict[str, str] = field(default_factory=dict)  # ours, on the answer
    response: Response | None = None

    @property
    def managed(self) -> bool:
        return self.model.startswith(PROMPT_PREFIX)


class Refused(Exception):
    """A stage's refusal: the error answer, and the error kind the observers see."""

    def __init__(self, response: JSONResponse, kind: str) -> None:
        super().__init__(kind)
        self.response = response
        self.kind = kind


def refuse(status: int, kind: str, message: str, **extra: Any) -> Refused:
    return Refused(error_response(status, kind, message, **extra), kind)


Stage = Callable[[Gateway, Exchange], Awaitable[None]]


# --- parse and validate -----------------------------------------------------------------------------


async def read_chat_request(gateway: Gateway, exchange: Exchange) -> None:
    """The body as a JSON object (400/413) with a `model` (422)."""
    raw, body, problem = await read_json_body(exchange.request, gateway.config.max_body_bytes)
    if problem is not None:
        raise Refused(problem, "invalid_request")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise refuse(422, "invalid_request", "`model` must be a non-empty string")
    exchange.raw, exchange.body, exchange.model = raw, body, model


@dataclass(frozen=True)
class PromptRef:
    name: str
    label: str | None
    version: str | None


def parse_prompt_model(model: str, default_label: str) -> PromptRef:
    """`prompt:<name>[@<label>|@<version>]` -> PromptRef; ValueError when malformed."""
    rest = model[len(PROMPT_PREFIX) :]
    name, sep, selector = rest.partition("@")
    if not name or (sep and not selector):
        raise ValueError(
            f"model {model!r} is not prompt:<name>, prompt:<name>@<label> or "
            "prompt:<name>@<version>"
        )
    if selector and semver.Version.is_valid(selector):
        return PromptRef(name, None, selector)
    return PromptRef(name, selector or default_label, None)


async def read_prompt_request(gateway: Gateway, exchange: Exchange) -> None:
    """The prompt reference in `model`, `variables`, `user` and extra `messages` (422)."""
    try:
        exchange.ref = parse_prompt_model(exchange.model, gateway.config.label)
    except ValueError as exc:
        raise refuse(422, "invalid_request", str(exc)) from None
    body = exchange.body
    variables, user, messages = (
        body.get("variables", {}),
        body.get("user"),
        body.get("messages", []),
    )
    invalid = _prompt_request_problem(variables, user, messages)
    if invalid:
        raise refuse(422, "invalid_request", invalid)
    exchange.variables, exchange.user, exchange.messages = variables, user, messages


def _prompt_request_problem(variables: Any, user: Any, messages: Any) -> str | None:
    if not isinstance(variables, dict):
        return "`variables` must be a JSON object of variable names to values"
    if user is not None and not isinstance(user, str):
        return "`user` must be a string"
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
    ):
        return "`messages` must be a list of {role, content} objects (appended after the prompt's)"
    return None


# --- resolve and render -----------------------------------------------------------------------------


async def resolve_prompt(gateway: Gateway, exchange: Exchange) -> None:
    """The version serving the request: registry, label or version, canary sticky on `user`;
    a running experiment's variant for unit `user`."""
    ref = exchange.ref
    assert ref is not None
    # Metric labels carry a prompt name only once the registry knows it: names from
    # requests must not grow the label set.
    exchange.seen.prompt = UNKNOWN
    try:
        exchange.resolved = await gateway.resolve(ref.name, ref.label, ref.version, exchange.user)
    except PromptNotFound as exc:
        raise refuse(404, "not_found", exc.message) from None
    except (InfraError, ConfigError) as exc:
        raise _registry_unavailable(exc) from None


async def render_prompt(gateway: Gateway, exchange: Exchange) -> None:
    """The resolved version rendered with the request's variables (422)."""
    resolved = exchange.resolved
    assert resolved is not None
    try:
        rendered = await gateway.renders.render(resolved, exchange.variables)
    except VariablesError as exc:
        exchange.seen.prompt = resolved.name
        raise refuse(422, "invalid_variables", exc.message, problems=exc.problems) from None
    except RenderError as exc:
        exchange.seen.prompt = resolved.name
        raise refuse(422, "render_error", exc.message) from None
    except (InfraError, ConfigError) as exc:
        raise _registry_unavailable(exc) from None
    seen = exchange.seen
    seen.prompt, seen.version, seen.variant = rendered.name, rendered.version, rendered.variant
    seen.model = rendered.model
    seen.variables = exchange.variables
    if rendered.experiment is not None:
        seen.experiment, seen.unit = rendered.experiment, exchange.user
    exchange.rendered = rendered
    exchange.headers = variant_headers(rendered)


def _registry_unavailable(exc: InfraError | ConfigError) -> Refused:
    message = f"the registry cannot answer: {exc.message}"
    return refuse(503, "registry_unavailable", message)


async def sample_answer(gateway: Gateway, exchange: Exchange) -> None:
    """Pick the request for online checks (`online`), per its prompt's `sample`, and for
    capture (`captures`), per the gateway's `capture:` percentages."""
    resolved = exchange.resolved
    assert resolved is not None
    exchange.seen.sample = gateway.online.pick(
        resolved.name, resolved.version, resolved.prompt.loaded.require()
    )
    exchange.seen.capture = gateway.capture is not None and gateway.capture.pick(resolved.name)


# --- route and build the upstream request ------------------------------------------------------------


async def route_prompt_model(gateway: Gateway, exchange: Exchange) -> None:
    """The upstream serving the rendered prompt's model (502 when none does)."""
    rendered = exchange.rendered
    assert rendered is not None
    exchange.upstream = gateway.route(rendered.model)
    if exchange.upstream is None:
        raise refuse(
            502,
            "no_upstream",
            f"{rendered.name} {rendered.version} uses model {rendered.model!r}, which no "
            "upstream serves, and there is no default upstream",
        )


async def build_prompt_body(gateway: Gateway, exchange: Exchange) -> None:
    """The rendered messages (then the request's), the prompt's parameters (they win), and
    the request's other fields; a stream asks for usage, for the observers."""
    rendered = exchange.rendered
    assert rendered is not None
    out = ChatRequest(
        rendered.model,
        [*rendered.messages, *exchange.messages],
        rendered.parameters,
        rendered.output_format == "json",
        rendered.tools,
        rendered.tool_choice,
        rendered.response_format,
    ).body()
    client_tools = exchange.body.get("tools")
    if client_tools is not None:
        if not rendered.allow_client_tools:
            raise refuse(
                422,
                "client_tools_refused",
                f"{rendered.name} is a managed prompt: a request may not add its own `tools` "
                "(set `allow_client_tools: true` in the prompt to allow it)",
            )
        if isinstance(client_tools, list):
            out["tools"] = [*out.get("tools", []), *client_tools]
    for key, value in exchange.body.items():
        if key not in ("model", "messages", "variables"):
            out.setdefault(key, value)  # the prompt's parameters win
    exchange.stream = out.get("stream") is True
    if exchange.stream:
        options = out.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage")):
            # Ask for usage (for the token and cost metrics) and keep the extra chunk from
            # a client that did not ask for it.
            out["stream_options"] = {**(options or {}), "include_usage": True}
            exchange.strip_usage = True
    exchange.payload = json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()


async def route_plain_model(gateway: Gateway, exchange: Exchange) -> None:
    """The upstream serving a plain model, which gets the body as it came (404 when none)."""
    exchange.seen.model = exchange.model
    exchange.upstream = gateway.route(exchange.model)
    if exchange.upstream is None:
        known = ", ".join(sorted(gateway.config.models)) or "none"
        response = error_response(
            404,
            "model_not_found",
            f"no upstream serves model {exchange.model!r} and there is no default upstream; "
            f"served models: {known}; managed prompts are prompt:<name>",
        )
        raise Refused(response, "no_upstream")
    exchange.payload = exchange.raw  # byte for byte
    exchange.stream = exchange.body.get("stream") is True


# --- forward -------------------------------------------------------------------------------------


async def forward_upstream(gateway: Gateway, exchange: Exchange) -> None:
    """Call the upstream; answer with its body and status, or relay its stream."""
    upstream, seen = exchange.upstream, exchange.seen
    assert upstream is not None and gateway.client is not None, "the lifespan did not run"
    exchange.headers["x-promptyard-upstream"] = upstream.name
    headers = gateway.headers_for(upstream, exchange.request)
    url = upstream_url(upstream, exchange.request)
    try:
        response = await gateway.client.post(url, data=exchange.payload, headers=headers)
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, kind, message = failure(upstream, exc)
        raise refuse(status, kind, message, upstream=upstream.name) from None
    answer_headers = {**passed_headers(response), **exchange.headers}
    if exchange.stream and response.status == 200:
        if seen.capture:
            seen.stream_body = bytearray()
        events = relay(response, upstream, exchange.strip_usage, seen)  # finishes `seen`
        exchange.response = StreamingResponse(events, 200, headers=answer_headers)
        return
    try:
        content = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, kind, message = failure(upstream, exc, "broke off its answer")
        raise refuse(status, kind, message, upstream=upstream.name) from None
    finally:
        response.release()
    status = response.status
    if status == 200:
        seen.usage(usage_of(content))
        if seen.sample is not None:
            seen.sample.add(content)
        seen.answer_body = content
    seen.finish(status, None if status < 400 else f"upstream_{status}")
    exchange.response = Response(content, status, headers=answer_headers)


# --- the pipeline ------------------------------------------------------------------------------------

PARSE: tuple[Stage, ...] = (read_chat_request,)
MANAGED: tuple[Stage, ...] = (
    read_prompt_request,
    resolve_prompt,
    render_prompt,
    sample_answer,
    route_prompt_model,
    build_prompt_body,
    forward_upstream,
)
PLAIN: tuple[Stage, ...] = (route_plain_model, forward_upstream)


async def chat_completions(gateway: Gateway, request: Request) -> Response:
    """`POST /v1/chat/completions`: PARSE, then MANAGED or PLAIN; observed however it ends."""
    exchange = Exchange(request, Observation.start(gateway.config.pricing, gateway.observers))
    try:
        for stage in PARSE:
            await stage(gateway, exchange)
        for stage in MANAGED if exchange.managed else PLAIN:
            await stage(gateway, exchange)
    except Refused as refused:
        exchange.seen.finish(refused.response.status_code, refused.kind)
        return refused.response
    assert exchange.response is not None, "the pipeline ended without an answer"
    return exchange.response
