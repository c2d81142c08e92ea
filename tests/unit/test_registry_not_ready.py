"""A registry that does not know the contract (still loading its store, or never given the schemas) is an
outage: the processors pause on it and dead-letter nothing. A schema id unknown to a registry that knows the
contract is the record's fault."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from processors.runtime.deadletters import Received
from processors.runtime.errors import is_outage
from processors.runtime.inprocess import memory_registry
from processors.runtime.memory import MemoryState
from schemas.serde import RecordCodec, RegistryNotReady, UndecodableRecord
from tests.factories import a_valid_order
from tests.unit.test_record_stage import FakeTime, Recorder, a_stage
from topology.topics import ORDERS_COMMANDS


def a_registry_that_knows_nothing() -> SchemaRegistryClient:
    return SchemaRegistryClient.new_client({"url": f"mock://empty-{uuid.uuid4().hex}"})


def test_a_schema_id_not_found_while_the_registry_knows_no_contract_is_an_outage() -> None:
    framed = RecordCodec(memory_registry(), ORDERS_COMMANDS.name).encode(a_valid_order("o-1"))

    with pytest.raises(RegistryNotReady) as raised:
        RecordCodec(a_registry_that_knows_nothing(), ORDERS_COMMANDS.name).decode(framed)

    assert is_outage(raised.value)


def test_a_schema_id_unknown_to_a_registry_that_knows_the_contract_is_the_records_fault() -> None:
    with pytest.raises(UndecodableRecord, match="schema id 2147479552 is unknown to the registry"):
        RecordCodec(memory_registry(), ORDERS_COMMANDS.name).decode(b"\x00\x7f\xff\xf0\x00\x02\x00")


def test_writing_a_record_the_registry_does_not_know_is_an_outage() -> None:
    with pytest.raises(RegistryNotReady, match="`oms schemas register`") as raised:
        RecordCodec(a_registry_that_knows_nothing(), ORDERS_COMMANDS.name).encode(a_valid_order("o-1"))

    assert is_outage(raised.value)


def test_a_stage_pauses_on_a_registry_that_knows_no_contract_and_dead_letters_nothing() -> None:
    framed = RecordCodec(memory_registry(), ORDERS_COMMANDS.name).encode(a_valid_order("o-1"))
    handler = Recorder()
    stage = a_stage(a_registry_that_knows_nothing(), handler, time=FakeTime(), outage_retry_s=1.0)

    with pytest.raises(RegistryNotReady):
        stage.process(Received(ORDERS_COMMANDS.name, 0, 0, 0, b"o-1", framed, ()), MemoryState())

    assert handler.records == []
