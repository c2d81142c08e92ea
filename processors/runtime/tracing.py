"""W3C trace context through every hop: one order's work is one trace, from its command to its last event.

A message's `traceparent` header names the span that produced it. Handling a message opens a span that is a
child of it (`handling`; a message without one starts a trace), and every record produced while that span is
current carries the span on (`trace_headers`): choreography hops, saga commands, timers and the routing slip's
forwards all go through the one encoder, so the trace follows the order wherever it goes.

Spans are made by the OpenTelemetry SDK only when something receives them: when the standard variables ask
for an exporter (`OTEL_TRACES_EXPORTER=otlp`, `OTEL_EXPORTER_OTLP_ENDPOINT`, ...) or a span processor is
added. Otherwise a span is only its ids, made here in about a microsecond (the SDK takes over twenty, on a
path that spends a few hundred per message); they still reach the records' headers, the logs and the order's
timeline.
"""

from __future__ import annotations

import contextvars
import os
import random
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, NamedTuple

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_PROPAGATOR = TraceContextTextMapPropagator()
# version-trace_id-parent_id-flags: exactly so in version 00; a later version may append fields after a dash.
_VERSION_00 = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_LATER_VERSION = re.compile(rb"[0-9a-e][0-9a-f]-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?", re.DOTALL)
_INVALID_TRACE, _INVALID_SPAN = b"0" * 32, b"0" * 16
# W3C trace context: a `tracestate` of at most 32 entries, of which a vendor passes on at least 512 characters;
# an entry longer than 128 goes first, then entries from the end. Without a bound, whatever a producer puts
# there would be copied onto every record the order leads to.
TRACESTATE_MAX_CHARS = 512
TRACESTATE_MAX_ENTRIES = 32
TRACESTATE_LONG_ENTRY = 128


class SpanIds(NamedTuple):
    """A span as the records it causes name it: its trace, its own id, its flags, and the tracestate."""

    trace_id: str
    span_id: str
    flags: str = "01"
    tracestate: str | None = None

    def headers(self) -> tuple[tuple[str, bytes], ...]:
        traceparent = (TRACEPARENT, f"00-{self.trace_id}-{self.span_id}-{self.flags}".encode())
        if self.tracestate:
            return traceparent, (TRACESTATE, self.tracestate.encode())
        return (traceparent,)


_current: contextvars.ContextVar[SpanIds | None] = contextvars.ContextVar("oms_span", default=None)
_exporting: Tracer | None = None
"""The SDK's tracer, once spans have somewhere to go; None: spans are ids only."""


class _ExportingProvider(TracerProvider):
    """A tracer provider that turns the SDK's spans on once it has a span processor to give them to."""

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        global _exporting
        super().add_span_processor(span_processor)
        _exporting = self.get_tracer("oms")


def configure_tracing(service: str, instance: str, environ: Mapping[str, str] = os.environ) -> TracerProvider:
    """This process's tracer provider: its spans named after `service`, exported over OTLP when
    `OTEL_TRACES_EXPORTER` is `otlp` (the exporter reads the other `OTEL_EXPORTER_OTLP_*` variables itself)."""
    global _exporting
    _exporting = None
    resource = Resource.create({"service.name": f"oms.{service}", "service.instance.id": instance})
    provider = _ExportingProvider(resource=resource)
    if "otlp" in environ.get("OTEL_TRACES_EXPORTER", "none").split(","):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


class handling(AbstractContextManager[SpanIds]):  # used as a function: `with handling(...)`
    """The span of handling one message: a child of the span its headers name, or the root of a new trace.

    A class rather than a generator: entered once per message, where every microsecond is paid again."""

    __slots__ = ("_attributes", "_headers", "_name", "_span", "_token")

    def __init__(self, headers: Sequence[tuple[str, Any]] | None, name: str, **attributes: Any) -> None:
        self._headers, self._name, self._attributes = headers, name, attributes
        self._span: AbstractContextManager[Span] | None = None

    def __enter__(self) -> SpanIds:
        if _exporting is None:
            parent = parent_of(self._headers)
            ids = (
                SpanIds(_new_trace_id(), _new_span_id())
                if parent is None
                else SpanIds(parent.trace_id, _new_span_id(), parent.flags, parent.tracestate)
            )
        else:
            ids = self._sdk_span()
        self._token = _current.set(ids)
        return ids

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        _current.reset(self._token)
        if self._span is not None:
            self._span.__exit__(kind, error, traceback)

    def _sdk_span(self) -> SpanIds:
        assert _exporting is not None
        parent = _PROPAGATOR.extract(_carrier(self._headers)) if self._headers else None
        attributes = {name: value for name, value in self._attributes.items() if value is not None}
        self._span = _exporting.start_as_current_span(
            self._name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        )
        context = self._span.__enter__().get_span_context()
        state = context.trace_state.to_header() if context.trace_state else None
        return SpanIds(
            format(context.trace_id, "032x"), format(context.span_id, "016x"), format(context.trace_flags, "02x"), state
        )


def trace_headers() -> tuple[tuple[str, bytes], ...]:
    """The current span as headers for a record produced now; none outside a span."""
    ids = _current.get()
    return () if ids is None else ids.headers()


def current_trace_id() -> str | None:
    """The current span's trace id, 32 hex digits; None outside a span."""
    ids = _current.get()
    return None if ids is None else ids.trace_id


def trace_id_of(headers: Sequence[tuple[str, Any]] | None) -> str | None:
    """The trace id a message's `traceparent` header names; None when it has none, or not a valid one."""
    parent = parent_of(headers)
    return None if parent is None else parent.trace_id


def trace_context(headers: Sequence[tuple[str, Any]] | None) -> tuple[tuple[str, bytes], ...]:
    """Only the trace-context headers of a message (`traceparent`, `tracestate` within its bound): what to
    keep of it to continue its trace later."""
    kept: list[tuple[str, bytes]] = []
    for name, value in headers or ():
        if name == TRACEPARENT:
            kept.append((name, value if isinstance(value, bytes) else _text(value).encode()))
        elif name == TRACESTATE and (bounded := bounded_tracestate(_text(value))) is not None:
            kept.append((name, bounded.encode()))
    return tuple(kept)


def bounded_tracestate(tracestate: str) -> str | None:
    """`tracestate` cut to its bound as W3C trace context cuts it: entries over 128 characters first, then
    entries from the end, until at most 32 remain within 512 characters; None when none does."""
    entries = [entry.strip() for entry in tracestate.split(",") if entry.strip()]
    if len(tracestate) <= TRACESTATE_MAX_CHARS and len(entries) <= TRACESTATE_MAX_ENTRIES:
        return tracestate if entries else None
    entries = [entry for entry in entries if len(entry) <= TRACESTATE_LONG_ENTRY][:TRACESTATE_MAX_ENTRIES]
    while entries and len(",".join(entries)) > TRACESTATE_MAX_CHARS:
        entries.pop()
    return ",".join(entries) or None


def parent_of(headers: Sequence[tuple[str, Any]] | None) -> SpanIds | None:
    """The span a message's `traceparent` names (with its `tracestate`); None when it names none validly."""
    traceparent = tracestate = None
    for name, value in headers or ():
        if name == TRACEPARENT:
            traceparent = value
        elif name == TRACESTATE:
            tracestate = value
    if traceparent is None:
        return None
    if isinstance(traceparent, str):
        traceparent = traceparent.encode(errors="replace")
    form = _VERSION_00 if traceparent[:2] == b"00" else _LATER_VERSION
    if form.fullmatch(traceparent) is None:
        return None
    trace_id, span_id = traceparent[3:35], traceparent[36:52]
    if trace_id == _INVALID_TRACE or span_id == _INVALID_SPAN:
        return None
    state = None if tracestate is None else bounded_tracestate(_text(tracestate))
    return SpanIds(trace_id.decode(), span_id.decode(), traceparent[53:55].decode(), state)


def _new_trace_id() -> str:
    return "%032x" % (random.getrandbits(128) or 1)


def _new_span_id() -> str:
    return "%016x" % (random.getrandbits(64) or 1)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _carrier(headers: Sequence[tuple[str, Any]] | None) -> dict[str, str]:
    """The trace-context headers of a message, as text: the only ones the propagator reads."""
    carrier = {}
    for name, value in headers or ():
        if name == TRACEPARENT:
            carrier[name] = _text(value)
        elif name == TRACESTATE and (bounded := bounded_tracestate(_text(value))) is not None:
            carrier[name] = bounded
    return carrier
