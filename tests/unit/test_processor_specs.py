"""Processors are declared once (`processors/services.py`); what is derived from the declarations holds."""

from __future__ import annotations

from ops.processors import DOCS, table_block
from processors.runtime.inprocess import memory_registry
from processors.runtime.spec import ProcessorSpec, read_by, stage_of
from processors.services import METRICS_PORTS, SERVICES, STREAM_PROCESSORS
from schemas.models import CancelOrder, PlaceOrder
from topology.settings import Settings
from topology.topics import ALL_TOPICS, FULFILLMENT_CONTROL, ORDERS_COMMANDS


def test_the_table_in_the_docs_is_the_declarations_own() -> None:
    assert table_block() in DOCS.read_text(), "run `oms processors --write` to refresh docs/processors.md"


def test_every_declared_processor_is_a_service_with_a_metrics_port() -> None:
    names = [spec.name for spec in STREAM_PROCESSORS]
    assert len(set(names)) == len(names)
    assert set(names) <= set(SERVICES) == set(METRICS_PORTS)
    assert {SERVICES[spec.name].group for spec in STREAM_PROCESSORS} == {spec.group for spec in STREAM_PROCESSORS}


def test_every_topic_a_processor_reads_or_writes_is_declared_and_every_input_has_its_dead_letters() -> None:
    declared = {topic.name for topic in ALL_TOPICS}
    for spec in STREAM_PROCESSORS:
        assert {topic.name for topic in (*spec.inputs, *spec.outputs)} <= declared, spec.name
        assert {topic.name for topic in spec.dead_letter_topics} == {f"{t.name}.dlq" for t in spec.inputs}
        assert {topic.name for topic in spec.dead_letter_topics} <= declared, spec.name


def test_a_topic_read_by_several_streams_of_one_processor_is_listed_once() -> None:
    activities = next(spec for spec in STREAM_PROCESSORS if spec.name == "activities")
    assert [topic.name for topic in activities.inputs].count(FULFILLMENT_CONTROL.name) == 1
    assert len(read_by([activities], FULFILLMENT_CONTROL)) == len(activities.streams) > 1


def test_a_stream_passes_over_the_declared_types_it_does_not_handle() -> None:
    intake = next(spec for spec in STREAM_PROCESSORS if spec.name == "intake")
    stage = stage_of(intake, intake.streams[0], Settings(), memory_registry())
    assert stage.passes_over(CancelOrder.AVRO_NAME)
    assert not stage.passes_over(PlaceOrder.AVRO_NAME)
    assert CancelOrder.AVRO_NAME in ORDERS_COMMANDS.records


def test_intake_is_declared_as_the_docs_show_a_processor() -> None:
    intake = next(spec for spec in STREAM_PROCESSORS if spec.name == "intake")
    assert isinstance(intake, ProcessorSpec)
    assert [topic.name for topic in intake.inputs] == [ORDERS_COMMANDS.name]
