"""Trace context through a hop: a message's span is the child of the one that produced it, and what is
produced while handling it carries that span on."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from processors.runtime.logs import JsonFormatter, about_message
from processors.runtime.tracing import (
    configure_tracing,
    current_trace_id,
    handling,
    parent_of,
    trace_context,
    trace_headers,
    trace_id_of,
)

INCOMING = (("ce_type", b"oms.PlaceOrder"), ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))


@pytest.fixture(autouse=True)
def no_exporter_after() -> Iterator[None]:
    yield
    configure_tracing("test", "0", environ={})


def test_handling_continues_the_trace_of_the_message_and_passes_it_on() -> None:
    with handling(INCOMING, "oms.intake process") as span:
        produced = trace_headers()
        assert current_trace_id() == "0af7651916cd43dd8448eb211c80319c"
    assert trace_id_of(produced) == "0af7651916cd43dd8448eb211c80319c"
    [(name, value)] = produced
    assert name == "traceparent"
    assert value.decode().split("-")[2] == span.span_id != "b7ad6b7169203331"  # this hop's span


def test_a_message_without_trace_context_starts_a_trace() -> None:
    with handling((("ce_type", b"oms.PlaceOrder"),), "oms.intake process"):
        started = current_trace_id()
        produced = trace_headers()
    assert started is not None and trace_id_of(produced) == started
    with handling(None, "oms.intake process"):
        assert current_trace_id() not in (None, started)


def test_outside_a_span_nothing_is_passed_on() -> None:
    assert trace_headers() == ()
    assert current_trace_id() is None
    assert trace_id_of((("traceparent", b"garbage"),)) is None


def test_spans_are_exported_when_a_processor_is_configured() -> None:
    provider = configure_tracing("intake", "0", environ={})
    exported = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    with handling(INCOMING, "oms.intake process", order_id="o-1"):
        pass
    [span] = exported.get_finished_spans()
    assert span.name == "oms.intake process"
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert span.resource.attributes["service.name"] == "oms.intake"
    assert isinstance(provider, TracerProvider)


def test_json_logs_carry_the_message_and_its_trace() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("intake"))
    logger = logging.getLogger("test.json-logs")
    logger.addHandler(handler)
    try:
        with handling(INCOMING, "oms.intake process"), about_message(order_id="o-1", event_id="e-1"):
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
    configure_tracing("intake", "0", environ={})
    with handling(INCOMING, "oms.intake process"):
        assert not trace.get_current_span().get_span_context().is_valid
        assert trace_id_of(trace_headers()) == "0af7651916cd43dd8448eb211c80319c"


def test_an_exported_span_is_the_one_the_outputs_name() -> None:
    provider = configure_tracing("intake", "0", environ={})
    exported = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    with handling(INCOMING, "oms.intake process", order_id=None):
        produced = parent_of(trace_headers())
    [span] = exported.get_finished_spans()
    assert produced is not None and produced.span_id == format(span.context.span_id, "016x")
    assert produced.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert "order_id" not in (span.attributes or {})


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

    with handling((*INCOMING, ("tracestate", tracestate.encode())), "oms.intake process"):
        produced = dict(trace_headers())

    assert produced["tracestate"] == tracestate.encode()


def test_an_enormous_tracestate_is_cut_as_w3c_trace_context_cuts_it_not_copied_onto_every_output() -> None:
    kept = [f"v{index}=value{index}" for index in range(40)]
    enormous = ",".join([kept[0], "huge=" + "x" * 100_000, *kept[1:]])

    with handling((*INCOMING, ("tracestate", enormous.encode())), "oms.intake process"):
        produced = dict(trace_headers())
    saved = dict(trace_context((*INCOMING, ("tracestate", enormous))))

    assert produced["tracestate"] == saved["tracestate"] == ",".join(kept[:32]).encode()
    assert len(produced["tracestate"]) <= 512


def test_a_tracestate_with_nothing_worth_keeping_is_dropped() -> None:
    only_huge = "huge=" + "x" * 100_000

    with handling((*INCOMING, ("tracestate", only_huge.encode())), "oms.intake process"):
        produced = dict(trace_headers())

    assert "tracestate" not in produced
    assert trace_context((*INCOMING, ("tracestate", only_huge))) == (INCOMING[1],)
