"""Trace context through a hop, in spans named by OpenTelemetry's messaging conventions: a message's process
span is the child of the send span that produced it, and each record produced while handling it is sent in a
send span of its own, the child of the process span; the OTEL_* variables choose the resource and exporters."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from processors.runtime.logs import JsonFormatter, about_message
from processors.runtime.tracing import (
    configure_tracing,
    current_span,
    current_trace_id,
    exporters_asked,
    handling,
    otlp_protocol,
    parent_of,
    processing,
    record_failure,
    resumed,
    sending,
    span_exporters,
    trace_context,
    trace_headers,
    trace_id_of,
)
from tests.unit.conftest import without_otel_variables

INCOMING = (("ce_type", b"oms.PlaceOrder"), ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
INTAKE = processing("oms.orders.commands", "oms.intake", "oms.intake")


@pytest.fixture(autouse=True)
def no_exporter(untraced: None) -> Iterator[None]:
    yield


def span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.span_id, "016x")


def parent_id(span: ReadableSpan) -> str | None:
    return None if span.parent is None else format(span.parent.span_id, "016x")


def test_handling_continues_the_trace_of_the_message_and_passes_it_on() -> None:
    with handling(INCOMING, INTAKE) as span:
        produced = trace_headers()
        assert current_trace_id() == "0af7651916cd43dd8448eb211c80319c"
    assert trace_id_of(produced) == "0af7651916cd43dd8448eb211c80319c"
    [(name, value)] = produced
    assert name == "traceparent"
    assert value.decode().split("-")[2] == span.span_id != "b7ad6b7169203331"  # this hop's span


def test_a_message_without_trace_context_starts_a_trace() -> None:
    with handling((("ce_type", b"oms.PlaceOrder"),), INTAKE):
        started = current_trace_id()
        produced = trace_headers()
    assert started is not None and trace_id_of(produced) == started
    with handling(None, INTAKE):
        assert current_trace_id() not in (None, started)


def test_outside_a_span_nothing_is_passed_on() -> None:
    assert trace_headers() == ()
    assert current_trace_id() is None
    assert trace_id_of((("traceparent", b"garbage"),)) is None


def test_a_process_span_is_named_and_attributed_by_the_messaging_conventions(spans: InMemorySpanExporter) -> None:
    with handling(INCOMING, INTAKE, partition=2, offset=41, key=b"o-1", message_id="e-1", order_id="o-1"):
        pass

    [span] = spans.get_finished_spans()
    assert (span.name, span.kind) == ("process oms.orders.commands", SpanKind.CONSUMER)
    assert parent_id(span) == "b7ad6b7169203331"
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "oms.orders.commands",
        "messaging.consumer.group.name": "oms.intake",
        "messaging.destination.partition.id": "2",
        "messaging.kafka.offset": 41,
        "messaging.kafka.message.key": "o-1",
        "messaging.message.id": "e-1",
        "oms.order_id": "o-1",
        "oms.processor": "oms.intake",
    }
    assert span.resource.attributes["service.name"] == "oms.intake"
    assert span.resource.attributes["service.instance.id"] == "0"


def test_a_message_handed_over_in_memory_has_no_offset_to_name(spans: InMemorySpanExporter) -> None:
    with handling(INCOMING, INTAKE, partition=2, offset=-1):
        pass

    [span] = spans.get_finished_spans()
    assert "messaging.kafka.offset" not in (span.attributes or {})


def test_each_record_sent_while_handling_is_sent_in_a_producer_span_of_its_own_under_the_process_span(
    spans: InMemorySpanExporter,
) -> None:
    with handling(INCOMING, INTAKE, order_id="o-1") as process:
        with sending("oms.orders.events", "o-1", "e-2", "o-1") as first:
            pass
        with sending("oms.orders.events", "o-1", "e-3", "o-1") as second:
            pass

    sent = [span for span in spans.get_finished_spans() if span.kind is SpanKind.PRODUCER]
    assert [span.name for span in sent] == ["send oms.orders.events", "send oms.orders.events"]
    assert [parent_id(span) for span in sent] == [process.span_id, process.span_id]
    # each record names its own send span
    assert [parent_of(first), parent_of(second)] == [(process.trace_id, span_id(span), "01", None) for span in sent]
    assert dict(sent[0].attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "oms.orders.events",
        "messaging.kafka.message.key": "o-1",
        "messaging.message.id": "e-2",
        "oms.order_id": "o-1",
    }


def test_a_tombstone_is_sent_in_a_span_that_says_so(spans: InMemorySpanExporter) -> None:
    with handling(INCOMING, INTAKE), sending("oms.timers", "t-1", tombstone=True):
        pass

    [sent] = [span for span in spans.get_finished_spans() if span.kind is SpanKind.PRODUCER]
    assert (sent.attributes or {})["messaging.kafka.message.tombstone"] is True
    assert "messaging.message.id" not in (sent.attributes or {})


def test_a_record_sent_outside_any_span_starts_a_trace_at_its_send_span(spans: InMemorySpanExporter) -> None:
    with sending("oms.orders.commands", "o-1", "e-1", "o-1") as headers:
        pass

    [sent] = spans.get_finished_spans()
    assert sent.parent is None and sent.kind is SpanKind.PRODUCER
    parent = parent_of(headers)
    assert parent is not None and parent.span_id == span_id(sent)


def test_without_an_exporter_every_record_carries_the_process_span_and_no_send_span_is_made() -> None:
    with (
        handling(INCOMING, INTAKE) as process,
        sending("oms.orders.events", "o-1", "e-2") as first,
        sending("oms.orders.events", "o-1", "e-3") as second,
    ):
        assert not trace.get_current_span().get_span_context().is_valid
    assert first == second == process.headers()


def test_a_span_resumed_later_is_where_a_record_is_sent_without_an_exporter() -> None:
    with handling(INCOMING, INTAKE) as process:
        kept = current_span()
    with resumed(kept), sending("oms.tracking.orders", "o-1", "e-2") as headers:
        pass

    assert trace_headers() == ()
    assert parent_of(headers) == process


def test_a_span_resumed_later_is_the_parent_of_a_send_span(spans: InMemorySpanExporter) -> None:
    with handling(INCOMING, INTAKE) as process:
        kept = current_span()
    with resumed(kept), sending("oms.tracking.orders", "o-1", "e-2") as headers:
        pass

    assert not trace.get_current_span().get_span_context().is_valid
    [sent] = [span for span in spans.get_finished_spans() if span.kind is SpanKind.PRODUCER]
    assert parent_id(sent) == process.span_id
    assert parent_of(headers) == (process.trace_id, span_id(sent), "01", None)


def test_a_failure_recorded_while_handling_marks_the_process_span_failed(spans: InMemorySpanExporter) -> None:
    with handling(INCOMING, INTAKE):
        record_failure(ValueError("no such warehouse"))

    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ValueError"
    assert [event.name for event in span.events] == ["exception"]


def test_the_resource_is_the_otel_variables_over_the_processors_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    without_otel_variables(monkeypatch)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging,service.namespace=shop")
    assert configure_tracing("intake", "3").resource.attributes["service.name"] == "oms.intake"

    monkeypatch.setenv("OTEL_SERVICE_NAME", "shop-intake")
    resource = configure_tracing("intake", "3").resource.attributes

    assert resource["service.name"] == "shop-intake"
    assert resource["service.instance.id"] == "3"
    assert (resource["deployment.environment.name"], resource["service.namespace"]) == ("staging", "shop")
    assert resource["telemetry.sdk.language"] == "python"


@pytest.mark.parametrize(
    ("environ", "asked"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": " OTLP , console,otlp"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "zipkin,otlp"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_the_otel_variables_choose_the_exporters(environ: dict[str, str], asked: list[str]) -> None:
    assert exporters_asked(environ) == asked


@pytest.mark.parametrize(
    ("environ", "protocol"),
    [
        ({}, "http/protobuf"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc"),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
            "http/protobuf",
        ),
    ],
)
def test_the_otel_variables_choose_the_otlp_protocol(environ: dict[str, str], protocol: str) -> None:
    assert otlp_protocol(environ) == protocol


def test_an_otlp_protocol_no_exporter_here_speaks_is_refused() -> None:
    with pytest.raises(ValueError, match="http/json"):
        otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_otlp_goes_over_grpc_or_http_as_the_protocol_says() -> None:
    [grpc] = span_exporters({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    http, console = span_exporters({"OTEL_TRACES_EXPORTER": "otlp,console"})

    assert isinstance(grpc, GrpcExporter)
    assert isinstance(http, HttpExporter) and isinstance(console, ConsoleSpanExporter)
    for exporter in (grpc, http, console):
        exporter.shutdown()


def test_spans_are_made_once_the_variables_ask_for_an_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    without_otel_variables(monkeypatch)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    provider = configure_tracing("intake", "0")
    try:
        with handling(INCOMING, INTAKE):
            assert trace.get_current_span().get_span_context().is_valid
    finally:
        provider.shutdown()


def test_json_logs_carry_the_message_and_its_trace() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("intake"))
    logger = logging.getLogger("test.json-logs")
    logger.addHandler(handler)
    try:
        with handling(INCOMING, INTAKE), about_message(order_id="o-1", event_id="e-1"):
            logger.warning("dead-lettering %s", "oms.orders.commands[0]@7")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["message"] == "dead-lettering oms.orders.commands[0]@7"
    assert (inside["order_id"], inside["event_id"]) == ("o-1", "e-1")
    assert inside["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert inside["service"] == "intake" and inside["level"] == "WARNING"
    assert "order_id" not in outside and "trace_id" not in outside


def test_without_an_exporter_no_sdk_span_is_made_yet_the_trace_goes_on() -> None:
    with handling(INCOMING, INTAKE):
        assert not trace.get_current_span().get_span_context().is_valid
        assert trace_id_of(trace_headers()) == "0af7651916cd43dd8448eb211c80319c"


def test_an_exported_span_is_the_one_the_logs_and_outputs_name(spans: InMemorySpanExporter) -> None:
    with handling(INCOMING, INTAKE, order_id=None):
        produced = parent_of(trace_headers())
        assert current_trace_id() == "0af7651916cd43dd8448eb211c80319c"
    [span] = spans.get_finished_spans()
    assert produced is not None and produced.span_id == span_id(span)
    assert produced.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert "oms.order_id" not in (span.attributes or {})


@pytest.mark.parametrize(
    "traceparent",
    [
        b"00-00000000000000000000000000000000-b7ad6b7169203331-01",  # no trace
        b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # no parent span
        b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # the one forbidden version
        b"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper case
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # version 00 has no more fields
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
    ],
)
def test_a_traceparent_that_breaks_the_w3c_format_names_no_parent(traceparent: bytes) -> None:
    assert parent_of((("traceparent", traceparent),)) is None


def test_a_later_version_is_read_for_the_fields_version_00_has() -> None:
    parent = parent_of((("traceparent", b"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-later"),))
    assert parent is not None and parent.trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_only_the_trace_context_of_a_message_is_kept_to_continue_it() -> None:
    assert trace_context((*INCOMING, ("tracestate", "a=1"))) == (INCOMING[1], ("tracestate", b"a=1"))


def test_a_tracestate_within_its_bound_is_passed_on_as_it_came() -> None:
    tracestate = ",".join(f"v{index}=value{index}" for index in range(32))

    with handling((*INCOMING, ("tracestate", tracestate.encode())), INTAKE):
        produced = dict(trace_headers())

    assert produced["tracestate"] == tracestate.encode()


def test_an_enormous_tracestate_is_cut_as_w3c_trace_context_cuts_it_not_copied_onto_every_output() -> None:
    kept = [f"v{index}=value{index}" for index in range(40)]
    enormous = ",".join([kept[0], "huge=" + "x" * 100_000, *kept[1:]])

    with handling((*INCOMING, ("tracestate", enormous.encode())), INTAKE):
        produced = dict(trace_headers())
    saved = dict(trace_context((*INCOMING, ("tracestate", enormous))))

    assert produced["tracestate"] == saved["tracestate"] == ",".join(kept[:32]).encode()
    assert len(produced["tracestate"]) <= 512


def test_a_tracestate_with_nothing_worth_keeping_is_dropped() -> None:
    only_huge = "huge=" + "x" * 100_000

    with handling((*INCOMING, ("tracestate", only_huge.encode())), INTAKE):
        produced = dict(trace_headers())

    assert "tracestate" not in produced
    assert trace_context((*INCOMING, ("tracestate", only_huge))) == (INCOMING[1],)
