"""The OpenAI-compatible gateway (`promptyard gateway`): managed prompts in front of vLLM.

`POST /v1/chat/completions` with `model: "prompt:<name>"` (or `prompt:<name>@<label>`,
`prompt:<name>@<version>`) renders the prompt through the registry with the request's
`variables` (the OpenAI SDK sends them with `extra_body={"variables": {...}}`); the canary is
sticky on the request's `user`. The gateway then calls the upstream that serves the prompt's
model with the rendered messages (any `messages` in the request are appended after them) and
the prompt's parameters (they win over the request's; other request fields such as `stream`,
`user` or `seed` pass through), and returns the upstream's answer as it is, with the headers
`X-Promptyard-Prompt`, `X-Promptyard-Version`, `X-Promptyard-Variant` and
`X-Promptyard-Upstream`. Streams (server-sent events) are relayed event by event as they
arrive. Any other `model` goes to the upstream serving that name, else to the default
upstream, untouched; so do other `/v1/*` paths (embeddings, completions). `GET /v1/models`
lists the managed prompts (`prompt:<name>`), the routing table's served names and the
default upstream's models (`models`).

Errors: 400 unreadable body, 404 unknown prompt/version/label (or a model nothing serves),
413 body too large, 422 bad request or variables, 502 upstream unreachable (named), 503 no
registry, 504 upstream timeout; an upstream's own error keeps its status and body.

`/healthz` never waits for a render (a template slower than 10 ms finishes in a worker
thread, `registry.render_workers`); `/readyz` is 503 while the registry cannot answer.
`/metrics` (Prometheus) counts per prompt, version and variant: requests by status, errors
by kind, latency, time to first token of streams, prompt and completion tokens, and cost
from the pricing table.

The modules, top-down: `app` (the routes) over `models` (`GET /v1/models`) and `stages`
(the chat request as a pipeline of named stages: parse and validate, resolve, render, route,
build, forward; observed by `observe`), `upstream` (calls, stream relay, pass-through),
`runtime` (the shared state) and `config` (what routes where).
"""

from __future__ import annotations

from promptyard.serving.gateway.app import create_gateway_app
from promptyard.serving.gateway.config import Upstream, build_gateway_config
from promptyard.serving.gateway.observe import GatewayMetrics, Observation
from promptyard.serving.gateway.runtime import Gateway
from promptyard.serving.gateway.stages import PROMPT_PREFIX, PromptRef, parse_prompt_model

__all__ = [
    "PROMPT_PREFIX",
    "Gateway",
    "GatewayMetrics",
    "Observation",
    "PromptRef",
    "Upstream",
    "build_gateway_config",
    "create_gateway_app",
    "parse_prompt_model",
]
