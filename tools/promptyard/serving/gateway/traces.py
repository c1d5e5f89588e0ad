"""The traces observer: one OpenTelemetry span per chat request, exported over OTLP/HTTP.

Enabled when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.
Spans follow the GenAI semantic conventions (`gen_ai.operation.name`, `gen_ai.request.model`,
`gen_ai.usage.input_tokens`, ...) and carry the prompt name, version, variant and experiment,
so Langfuse, Phoenix, Jaeger or Tempo show which prompt version produced each call. The span
is built when the request has finished (with its real start and end times) and handed to a
batch processor: exporting happens on the processor's thread, never on the request path.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from promptyard.serving.gateway.observe import UNMANAGED, Observation

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
DEFAULT_SERVICE = "promptyard-gateway"


def traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """Where spans go (the OTLP/HTTP traces URL), or None when tracing is off."""
    if environ.get(TRACES_ENDPOINT):
        return environ[TRACES_ENDPOINT]
    base = environ.get(ENDPOINT)
    return f"{base.rstrip('/')}/v1/traces" if base else None


def span_attributes(seen: Observation) -> dict[str, Any]:
    """GenAI semantic-convention attributes, plus promptyard's prompt attributes."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "http.response.status_code": seen.status,
    }
    if seen.model:
        attributes["gen_ai.request.model"] = seen.model
    if seen.tokens_in is not None:
        attributes["gen_ai.usage.input_tokens"] = seen.tokens_in
    if seen.tokens_out is not None:
        attributes["gen_ai.usage.output_tokens"] = seen.tokens_out
    if seen.error is not None:
        attributes["error.type"] = seen.error
    if seen.prompt != UNMANAGED:
        attributes["promptyard.prompt.name"] = seen.prompt
        if seen.version:
            attributes["promptyard.prompt.version"] = seen.version
            attributes["promptyard.prompt.variant"] = seen.variant
    if seen.experiment is not None:
        attributes["promptyard.experiment"] = seen.experiment
    if seen.cost_usd:
        attributes["promptyard.cost_usd"] = seen.cost_usd
    return attributes


class TraceObserver:
    """Turns each finished request into a span; `shutdown` flushes what is pending."""

    def __init__(self, endpoint: str, service_name: str = DEFAULT_SERVICE) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self.tracer = self.provider.get_tracer("promptyard.gateway")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> TraceObserver | None:
        endpoint = traces_endpoint(environ)
        if endpoint is None:
            return None
        return cls(endpoint, environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE)

    def __call__(self, seen: Observation) -> None:
        end = time.time_ns()
        start = end - int(seen.seconds * 1e9)
        name = f"chat {seen.model}" if seen.model else "chat"
        span = self.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=span_attributes(seen), start_time=start
        )
        if seen.status >= 400 or seen.error is not None:
            span.set_status(Status(StatusCode.ERROR, seen.error))
        span.end(end_time=end)

    def shutdown(self) -> None:
        self.provider.shutdown()
