"""W3C trace context through every hop: one order's work is one trace, from its command to its last event.

A message's `traceparent` header names the span that produced it. Handling a message opens a span that is a
child of it (`handling`; a message without one starts a trace), and every record produced while that span is
current carries the span on (`trace_headers`): choreography hops, saga commands, timers and the routing slip's
forwards all go through the one encoder, so the trace follows the order wherever it goes.

Spans are made by the OpenTelemetry SDK and exported only when the standard variables ask for it
(`OTEL_TRACES_EXPORTER=otlp`, `OTEL_EXPORTER_OTLP_ENDPOINT`, ...); otherwise they cost a few microseconds and
leave only their ids: on the records' headers, in the logs, and on the order's timeline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_PROPAGATOR = TraceContextTextMapPropagator()
# Until `configure_tracing` names the process: spans with ids, exported nowhere (in-process runs, tools).
_tracer = TracerProvider().get_tracer("oms")


def configure_tracing(service: str, instance: str, environ: Mapping[str, str] = os.environ) -> TracerProvider:
    """This process's tracer provider: its spans named after `service`, exported over OTLP when
    `OTEL_TRACES_EXPORTER` is `otlp` (the exporter reads the other `OTEL_EXPORTER_OTLP_*` variables itself)."""
    global _tracer
    resource = Resource.create({"service.name": f"oms.{service}", "service.instance.id": instance})
    provider = TracerProvider(resource=resource)
    if "otlp" in environ.get("OTEL_TRACES_EXPORTER", "none").split(","):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _tracer = provider.get_tracer("oms")
    return provider


@contextmanager
def handling(headers: Sequence[tuple[str, Any]] | None, name: str, **attributes: Any) -> Iterator[Span]:
    """The span of handling one message: a child of the span its headers name, or the root of a new trace."""
    parent = _PROPAGATOR.extract(_carrier(headers)) if headers else None
    with _tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes) as span:
        yield span


def trace_headers() -> tuple[tuple[str, bytes], ...]:
    """The current span as headers for a record produced now; none outside a span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return tuple((name, value.encode()) for name, value in carrier.items())


def current_trace_id() -> str | None:
    """The current span's trace id, 32 hex digits; None outside a span."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def trace_id_of(headers: Sequence[tuple[str, Any]] | None) -> str | None:
    """The trace id a message's `traceparent` header names; None when it has none, or not a valid one."""
    context = trace.get_current_span(_PROPAGATOR.extract(_carrier(headers))).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def _carrier(headers: Sequence[tuple[str, Any]] | None) -> dict[str, str]:
    """The trace-context headers of a message, as text: the only ones the propagator reads."""
    carrier = {}
    for name, value in headers or ():
        if name in (TRACEPARENT, TRACESTATE):
            carrier[name] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return carrier
