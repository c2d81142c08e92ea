"""W3C trace context through every hop, in spans named by OpenTelemetry's messaging conventions: one order's
work is one trace, from its command to its last event.

A message's `traceparent` header names the span that sent it. Handling a message opens a `process <topic>`
span (CONSUMER) that is a child of it (`handling`; a message without one starts a trace); each record produced
meanwhile is sent in a `send <topic>` span (PRODUCER) of its own, a child of the process span, whose
`traceparent` the record carries (`sending`): choreography hops, saga commands, timers and the routing slip's
forwards all go through the one encoder, so the trace follows the order wherever it goes.

Spans are made by the OpenTelemetry SDK only when something receives them: when the standard variables ask
for an exporter (`configure_tracing`) or a span processor is added. Otherwise a span is only its ids, made
here in about a microsecond (the SDK takes over twenty, on a path that spends a few hundred per message): the
process span's ids, which every record produced meanwhile carries (no send span is made for nobody); they
still reach the records' headers, the logs and the order's timeline.
"""

from __future__ import annotations

import contextvars
import logging
import os
import random
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

logger = logging.getLogger(__name__)

Headers = tuple[tuple[str, bytes], ...]
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

ORDER_ID = "oms.order_id"
"""The order a span works for: the project's own attribute, beside the conventions' ones."""
PROCESSOR = "oms.processor"
"""The processor (`ce_source` of what it emits) whose stage handles the message: in an engine of processors
run together, one of several under the engine's consumer group."""
OTLP_PROTOCOLS = ("http/protobuf", "grpc")
"""What `OTEL_EXPORTER_OTLP_PROTOCOL` may name; the first is the default, as the OpenTelemetry spec has it."""


class SpanIds(NamedTuple):
    """A span as the records it causes name it: its trace, its own id, its flags, and the tracestate."""

    trace_id: str
    span_id: str
    flags: str = "01"
    tracestate: str | None = None

    def headers(self) -> Headers:
        traceparent = (TRACEPARENT, f"00-{self.trace_id}-{self.span_id}-{self.flags}".encode())
        if self.tracestate:
            return traceparent, (TRACESTATE, self.tracestate.encode())
        return (traceparent,)


class Operation(NamedTuple):
    """What the spans of one operation share, made once rather than per message: name, kind, attributes."""

    name: str
    kind: SpanKind = SpanKind.INTERNAL
    attributes: Mapping[str, AttributeValue] = {}


def processing(topic: str, group: str, processor: str) -> Operation:
    """The spans of handling messages of `topic` read by consumer group `group`: `process <topic>`, CONSUMER."""
    return Operation(
        f"process {topic}",
        SpanKind.CONSUMER,
        {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            PROCESSOR: processor,
        },
    )


def _sending(topic: str) -> Operation:
    return Operation(
        f"send {topic}",
        SpanKind.PRODUCER,
        {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
        },
    )


_current: contextvars.ContextVar[SpanIds | None] = contextvars.ContextVar("oms_span", default=None)
_exporting: Tracer | None = None
"""The SDK's tracer, once spans have somewhere to go; None: spans are ids only."""
_send_operations: dict[str, Operation] = {}


class _ExportingProvider(TracerProvider):
    """A tracer provider that turns the SDK's spans on once it has a span processor to give them to."""

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        global _exporting
        super().add_span_processor(span_processor)
        _exporting = self.get_tracer("oms")


def configure_tracing(service: str, instance: str) -> TracerProvider:
    """This process's tracer provider, with the exporters OpenTelemetry's standard variables ask for.

    The resource is the SDK's (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`), over defaults of ours: service
    `oms.<service>`, instance `instance`. The exporters are `exporters_asked`; an OTLP one speaks
    `otlp_protocol` and reads the other `OTEL_EXPORTER_OTLP_*` variables (endpoint, headers, certificates,
    timeout, compression) itself, as the batch span processor reads `OTEL_BSP_*` and the provider
    `OTEL_TRACES_SAMPLER`."""
    global _exporting
    _exporting = None
    defaults = Resource.create({"service.name": f"oms.{service}", "service.instance.id": instance})
    provider = _ExportingProvider(resource=defaults.merge(OTELResourceDetector().detect()))
    for exporter in span_exporters(os.environ):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def span_exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    """An exporter for each of `exporters_asked`, OTLP ones over `otlp_protocol`."""
    return [_exporter(name, environ) for name in exporters_asked(environ)]


def exporters_asked(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the variables ask for: those `OTEL_TRACES_EXPORTER` lists (`otlp`, `console`;
    `none` or an empty list: none); when it is unset, `otlp` if an OTLP endpoint is set, else none. Nothing
    when `OTEL_SDK_DISABLED` is true. A name this process cannot export to is logged and left out."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    listed = environ.get("OTEL_TRACES_EXPORTER")
    if listed is None:
        endpoints = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        return ["otlp"] if any(environ.get(name) for name in endpoints) else []
    names = [name.strip().lower() for name in listed.split(",") if name.strip()]
    unknown = [name for name in names if name not in ("otlp", "console", "none")]
    if unknown:
        logger.warning("OTEL_TRACES_EXPORTER names %s, which this process cannot export to", ", ".join(unknown))
    return [name for name in dict.fromkeys(names) if name in ("otlp", "console")]


def otlp_protocol(environ: Mapping[str, str]) -> str:
    """The OTLP transport: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else
    `http/protobuf`; one this process cannot speak is an error, not a silent fallback."""
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip() or OTLP_PROTOCOLS[0]
    if protocol not in OTLP_PROTOCOLS:
        raise ValueError(f"OTLP protocol {protocol!r} is not one of {', '.join(OTLP_PROTOCOLS)}")
    return protocol


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if otlp_protocol(environ) == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


class handling(AbstractContextManager[SpanIds]):  # used as a function: `with handling(...)`
    """The span of handling one message: a child of the span its headers name, or the root of a new trace.

    The message's partition, offset, key, event id and order become its attributes. A class rather than a
    generator: entered once per message, where every microsecond is paid again; the attributes are only
    looked at when the SDK makes the span."""

    __slots__ = (
        "_headers",
        "_key",
        "_message_id",
        "_offset",
        "_operation",
        "_order_id",
        "_partition",
        "_span",
        "_token",
    )

    def __init__(
        self,
        headers: Sequence[tuple[str, Any]] | None,
        operation: Operation,
        *,
        partition: int | None = None,
        offset: int | None = None,
        key: bytes | str | None = None,
        message_id: str | None = None,
        order_id: str | None = None,
    ) -> None:
        self._headers, self._operation = headers, operation
        self._partition, self._offset, self._key = partition, offset, key
        self._message_id, self._order_id = message_id, order_id
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
        attributes = dict(self._operation.attributes)
        if self._partition is not None:
            attributes["messaging.destination.partition.id"] = str(self._partition)
        if self._offset is not None and self._offset >= 0:  # a record handed over in memory has no offset
            attributes["messaging.kafka.offset"] = self._offset
        _message_attributes(attributes, self._key, self._message_id, self._order_id)
        self._span = _exporting.start_as_current_span(
            self._operation.name, context=parent, kind=self._operation.kind, attributes=attributes
        )
        return _ids_of(self._span.__enter__())


def sending(
    topic: str,
    key: bytes | str | None,
    message_id: object = None,
    order_id: object = None,
    *,
    tombstone: bool = False,
) -> AbstractContextManager[Headers]:
    """The span of sending one record to `topic`: what entering it gives is the trace-context headers the
    record carries. A child of the current span (the process span of the message that led to it), the root of
    a trace outside any; without an exporter no span of its own, only the current span's headers.

    The record's key, event id (`message_id`) and order become its attributes, turned into text only when the
    SDK makes the span; a record without a value is a tombstone."""
    if _exporting is None:
        return _WITHOUT_SPAN  # entered for every record produced: nothing made that nobody receives
    return _Sending(_exporting, topic, key, message_id, order_id, tombstone)


class _CurrentHeaders(AbstractContextManager[Headers]):
    __slots__ = ()

    def __enter__(self) -> Headers:
        ids = _current.get()
        return () if ids is None else ids.headers()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        return None


_WITHOUT_SPAN = _CurrentHeaders()


class _Sending(AbstractContextManager[Headers]):
    __slots__ = ("_key", "_message_id", "_order_id", "_span", "_tombstone", "_topic", "_tracer")

    def __init__(
        self,
        tracer: Tracer,
        topic: str,
        key: bytes | str | None,
        message_id: object,
        order_id: object,
        tombstone: bool,
    ) -> None:
        self._tracer, self._topic, self._key = tracer, topic, key
        self._message_id, self._order_id, self._tombstone = message_id, order_id, tombstone
        self._span: Span | None = None

    def __enter__(self) -> Headers:
        operation = _send_operations.get(self._topic)
        if operation is None:
            operation = _send_operations[self._topic] = _sending(self._topic)
        attributes = dict(operation.attributes)
        _message_attributes(
            attributes,
            self._key,
            None if self._message_id is None else str(self._message_id),
            None if self._order_id is None else str(self._order_id),
        )
        if self._tombstone:
            attributes["messaging.kafka.message.tombstone"] = True
        self._span = self._tracer.start_span(operation.name, kind=operation.kind, attributes=attributes)
        return _ids_of(self._span).headers()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._span is not None:
            if error is not None:
                _failed(self._span, error)
            self._span.end()


def record_failure(error: BaseException) -> None:
    """Mark the current span failed by `error` (its message dead-lettered), when the SDK makes spans: the
    trace shows where an order stopped and why."""
    if _exporting is not None:
        _failed(trace.get_current_span(), error)


def _failed(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_attribute("error.type", type(error).__qualname__)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))


class Resumable(NamedTuple):
    """The current span, kept to go on in it later (`resumed`): its ids, and the SDK's context when exporting."""

    ids: SpanIds | None
    context: Context | None


def current_span() -> Resumable:
    """The current span, to resume: what a record encoded after its span has closed is sent in."""
    return Resumable(_current.get(), None if _exporting is None else otel_context.get_current())


class resumed(AbstractContextManager[None]):  # used as a function: `with resumed(...)`
    """Inside a span kept by `current_span` again: what is sent meanwhile is its child."""

    __slots__ = ("_context_token", "_span", "_token")

    def __init__(self, span: Resumable) -> None:
        self._span = span

    def __enter__(self) -> None:
        self._token = _current.set(self._span.ids)
        self._context_token = None if self._span.context is None else otel_context.attach(self._span.context)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._context_token is not None:
            otel_context.detach(self._context_token)
        _current.reset(self._token)


def _message_attributes(
    attributes: dict[str, AttributeValue], key: bytes | str | None, message_id: str | None, order_id: str | None
) -> None:
    if key is not None:
        attributes["messaging.kafka.message.key"] = _text(key)
    if message_id is not None:
        attributes["messaging.message.id"] = message_id
    if order_id is not None:
        attributes[ORDER_ID] = order_id


def _ids_of(span: Span) -> SpanIds:
    context = span.get_span_context()
    state = context.trace_state.to_header() if context.trace_state else None
    return SpanIds(
        format(context.trace_id, "032x"), format(context.span_id, "016x"), format(context.trace_flags, "02x"), state
    )


def trace_headers() -> Headers:
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


def trace_context(headers: Sequence[tuple[str, Any]] | None) -> Headers:
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
