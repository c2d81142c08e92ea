"""Trace context through a processor's stage and the engine of processors run together (no broker): a message
is handled in a process span, the child of the one its `traceparent` names, or in a new trace; each output is
sent in a send span of its own under it (without an exporter, carries the process span on); a dead letter
keeps the headers it came with and marks the span failed; log lines written meanwhile name the message's
order, event and trace."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from processors.runtime.cloudevents import header
from processors.runtime.colocated import CHAIN_PROCESSOR
from processors.runtime.deadletters import Received
from processors.runtime.inprocess import InProcessRunner, memory_registry
from processors.runtime.logs import JsonFormatter
from processors.runtime.memory import MemoryState
from processors.runtime.records import Emit, Outgoing
from processors.runtime.stage import Outcome
from processors.runtime.tracing import TRACEPARENT, parent_of, trace_id_of
from processors.services import CHAIN, STREAM_PROCESSORS
from tests.factories import a_valid_order, order_created_from, order_of
from tests.unit.test_flows import place as place_in
from tests.unit.test_flows import stock
from tests.unit.test_record_stage import Failing, Recorder, a_stage, message, place
from topology.settings import Settings
from topology.topics import ORDERS_EVENTS, TRACKING_ORDERS

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"
TRACED = ((TRACEPARENT, f"00-{TRACE_ID}-{PARENT_SPAN}-01".encode()), ("tracestate", b"vendor=1"))


@pytest.fixture(scope="module")
def registry() -> SchemaRegistryClient:
    return memory_registry()


@pytest.fixture(autouse=True)
def no_exporter(untraced: None) -> Iterator[None]:
    yield


def traced(received: Received, headers: tuple[tuple[str, bytes], ...] = TRACED) -> Received:
    return Received(
        received.topic,
        received.partition,
        received.offset,
        received.timestamp,
        received.key,
        received.value,
        tuple((name, value) for name, value in received.headers if name not in (TRACEPARENT, "tracestate")) + headers,
    )


def two_events() -> list[Emit]:
    created = order_created_from(a_valid_order("o-1"))
    return [Emit(ORDERS_EVENTS, "o-1", created), Emit(ORDERS_EVENTS, "o-1", created)]


def traceparents(outgoing: Outgoing) -> list[str]:
    return [value.decode() for name, value in outgoing.headers if name == TRACEPARENT]


def test_every_output_continues_the_inputs_trace_in_a_span_of_its_own(registry: SchemaRegistryClient) -> None:
    stage = a_stage(registry, Recorder(two_events()))

    outputs, outcome = stage.process(traced(message(registry, place())), MemoryState())

    assert outcome is Outcome.OK and len(outputs) == 2
    assert all(len(traceparents(output)) == 1 for output in outputs)
    spans = [parent_of(output.headers) for output in outputs]
    assert all(span is not None and span.trace_id == TRACE_ID for span in spans)
    assert spans[0] == spans[1]  # one span for the handling of one message
    assert spans[0] is not None and spans[0].span_id != PARENT_SPAN
    assert (spans[0].flags, spans[0].tracestate) == ("01", "vendor=1")


def test_an_input_without_trace_context_starts_a_trace_its_outputs_carry(registry: SchemaRegistryClient) -> None:
    stage = a_stage(registry, Recorder(two_events()))
    untraced = message(registry, place())
    assert trace_id_of(untraced.headers) is None

    first, _ = stage.process(untraced, MemoryState())
    second, _ = stage.process(untraced, MemoryState())

    started = trace_id_of(first[0].headers)
    assert started is not None and trace_id_of(first[1].headers) == started
    assert trace_id_of(second[0].headers) not in (None, started)


def test_an_input_with_a_malformed_traceparent_starts_a_trace(registry: SchemaRegistryClient) -> None:
    stage = a_stage(registry, Recorder(two_events()))
    zeros = ((TRACEPARENT, f"00-{'0' * 32}-{PARENT_SPAN}-01".encode()),)

    outputs, _ = stage.process(traced(message(registry, place()), zeros), MemoryState())

    assert trace_id_of(outputs[0].headers) not in (None, "0" * 32)


def test_a_dead_letter_keeps_the_trace_context_it_came_with(registry: SchemaRegistryClient) -> None:
    stage = a_stage(registry, Failing(ValueError("no such warehouse")))
    received = traced(message(registry, place()))

    [letter], outcome = stage.process(received, MemoryState())

    assert outcome is Outcome.DEAD_LETTERED
    assert traceparents(letter) == [f"00-{TRACE_ID}-{PARENT_SPAN}-01"]


def test_log_lines_while_a_message_is_handled_name_its_order_event_and_trace(registry: SchemaRegistryClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    stage_logger = logging.getLogger("processors.runtime.stage")
    stage_logger.addHandler(handler)
    received = traced(message(registry, place()))
    try:
        a_stage(registry, Failing(ValueError("no such warehouse"))).process(received, MemoryState())
    finally:
        stage_logger.removeHandler(handler)

    [line] = (json.loads(text) for text in stream.getvalue().splitlines())
    assert line["message"].startswith("dead-lettering oms.orders.commands")
    assert line["order_id"] == "o-1"
    assert line["event_id"] == header(received.headers, "ce_id")
    assert line["trace_id"] == TRACE_ID


def span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.span_id, "016x")


def parent_id(span: ReadableSpan) -> str | None:
    return None if span.parent is None else format(span.parent.span_id, "016x")


def test_a_stage_sends_each_output_in_a_span_of_its_own_under_the_messages_process_span(
    registry: SchemaRegistryClient, spans: InMemorySpanExporter
) -> None:
    stage = a_stage(registry, Recorder(two_events()))
    received = traced(message(registry, place()))
    spans.clear()

    outputs, _ = stage.process(received, MemoryState())

    [process] = [span for span in spans.get_finished_spans() if span.kind is SpanKind.CONSUMER]
    sent = [span for span in spans.get_finished_spans() if span.kind is SpanKind.PRODUCER]
    assert process.name == "process oms.orders.commands" and parent_id(process) == PARENT_SPAN
    attributes = process.attributes or {}
    assert (attributes["messaging.destination.partition.id"], attributes["messaging.kafka.offset"]) == ("2", 41)
    assert attributes["messaging.consumer.group.name"] == attributes["oms.processor"] == "oms.test"
    assert attributes["oms.order_id"] == attributes["messaging.kafka.message.key"] == "o-1"
    assert attributes["messaging.message.id"] == header(received.headers, "ce_id")
    assert [span.name for span in sent] == ["send oms.orders.events", "send oms.orders.events"]
    assert all(parent_id(span) == span_id(process) for span in sent)
    named = [parent_of(output.headers) for output in outputs]
    assert [ids.span_id if ids else None for ids in named] == [span_id(span) for span in sent]
    assert all(ids is not None and (ids.trace_id, ids.tracestate) == (TRACE_ID, "vendor=1") for ids in named)


def test_a_dead_lettered_message_marks_its_process_span_failed_and_its_letter_keeps_the_trace_it_came_with(
    registry: SchemaRegistryClient, spans: InMemorySpanExporter
) -> None:
    stage = a_stage(registry, Failing(ValueError("no such warehouse")))
    received = traced(message(registry, place()))
    spans.clear()

    [letter], _ = stage.process(received, MemoryState())

    [process] = spans.get_finished_spans()
    assert process.status.status_code is StatusCode.ERROR
    assert (process.attributes or {})["error.type"] == "ValueError"
    assert traceparents(letter) == [f"00-{TRACE_ID}-{PARENT_SPAN}-01"]


@pytest.mark.parametrize("colocated", [False, True])
def test_one_orders_spans_are_one_tree_of_process_and_send_spans_whether_processors_run_alone_or_together(
    tmp_path: Path, spans: InMemorySpanExporter, colocated: bool
) -> None:
    runner = InProcessRunner(STREAM_PROCESSORS, Settings(run_dir=tmp_path), colocated=colocated)
    stock(runner, {"SKU-MUG-01": 5})
    spans.clear()
    order = order_of("traced", {"SKU-MUG-01": 1})
    before = len(runner.log)

    place_in(runner, order)
    runner.run()

    finished = spans.get_finished_spans()
    by_id = {span_id(span): span for span in finished}
    [root] = [span for span in finished if span.parent is None]
    assert (root.name, root.kind) == ("send oms.orders.commands", SpanKind.PRODUCER)
    assert {span.context.trace_id for span in finished if span.context} == {root.context.trace_id}
    for span in finished:
        if span is not root:
            parent = by_id[str(parent_id(span))]
            expected = SpanKind.PRODUCER if span.kind is SpanKind.CONSUMER else SpanKind.CONSUMER
            assert parent.kind is expected, f"{span.name} under {parent.name}"
    # Every record names a send span of its own, the tracker's view (encoded after its span closed) included.
    published = [delivered.outgoing for delivered in runner.log[before:]]
    assert runner.dead_letters() == [] and TRACKING_ORDERS.name in {outgoing.topic for outgoing in published}
    named = [parent_of(outgoing.headers) for outgoing in published]
    assert [by_id[ids.span_id].name if ids else None for ids in named] == [f"send {o.topic}" for o in published]
    assert len({ids.span_id for ids in named if ids}) == len(published)
    members = {spec.group for spec in CHAIN.members}
    groups = {
        (span.attributes or {})["oms.processor"]: (span.attributes or {})["messaging.consumer.group.name"]
        for span in finished
        if span.kind is SpanKind.CONSUMER
    }
    assert members <= groups.keys()
    assert all(groups[member] == (CHAIN_PROCESSOR if colocated else member) for member in members)
