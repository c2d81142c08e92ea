"""Trace context through a processor's stage (no broker): a message is handled in a child span of the one its
`traceparent` names, or in a new trace; every output carries that span on; a dead letter keeps the headers it
came with; log lines written meanwhile name the message's order, event and trace."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from processors.runtime.cloudevents import header
from processors.runtime.deadletters import Received
from processors.runtime.inprocess import memory_registry
from processors.runtime.logs import JsonFormatter
from processors.runtime.memory import MemoryState
from processors.runtime.records import Emit, Outgoing
from processors.runtime.stage import Outcome
from processors.runtime.tracing import TRACEPARENT, configure_tracing, parent_of, trace_id_of
from tests.factories import a_valid_order, order_created_from
from tests.unit.test_record_stage import Failing, Recorder, a_stage, message, place
from topology.topics import ORDERS_EVENTS

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"
TRACED = ((TRACEPARENT, f"00-{TRACE_ID}-{PARENT_SPAN}-01".encode()), ("tracestate", b"vendor=1"))


@pytest.fixture(scope="module")
def registry() -> SchemaRegistryClient:
    return memory_registry()


@pytest.fixture(autouse=True)
def no_exporter() -> Iterator[None]:
    configure_tracing("test", "0", environ={})
    yield


def traced(received: Received, headers: tuple[tuple[str, bytes], ...] = TRACED) -> Received:
    return Received(
        received.topic,
        received.partition,
        received.offset,
        received.timestamp,
        received.key,
        received.value,
        received.headers + headers,
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
