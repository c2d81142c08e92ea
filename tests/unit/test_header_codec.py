"""A header is read as the record it was written from when this process wrote it, and as a fresh decoding
would read it."""

from __future__ import annotations

from pathlib import Path

from processors.runtime.inprocess import memory_registry
from schemas import serde
from schemas.serde import RECENT_HEADERS, HeaderCodec
from tests.factories import the_processors_run
from tests.unit.test_activity_host import a_slip
from topology.topics import ROUTING_SLIP_HEADER


def decoded_afresh(codec: HeaderCodec, data: bytes) -> object:
    serde._recently_written.clear()
    return codec.decode(data)


def test_a_header_this_process_wrote_reads_back_as_the_record_it_was_written_from() -> None:
    codec = HeaderCodec(memory_registry(), ROUTING_SLIP_HEADER)
    slip = a_slip()

    encoded = codec.encode(slip)

    assert HeaderCodec(memory_registry(), ROUTING_SLIP_HEADER).decode(bytes(bytearray(encoded))) is slip
    assert decoded_afresh(codec, encoded) == slip
    assert decoded_afresh(codec, encoded) is not slip


def test_every_slip_the_processors_write_reads_back_as_a_fresh_decoding_reads_it(tmp_path: Path) -> None:
    runner = the_processors_run(tmp_path)
    codec = HeaderCodec(memory_registry(), ROUTING_SLIP_HEADER)
    headers = [
        value
        for delivered in runner.log
        for name, value in delivered.outgoing.headers or ()
        if name == ROUTING_SLIP_HEADER.name
    ]
    remembered = {header: serde._recently_written.get(header) for header in headers}

    assert sum(slip is not None for slip in remembered.values()) >= 50
    for header, slip in remembered.items():
        if slip is not None:
            assert decoded_afresh(codec, header) == slip


def test_only_the_latest_headers_are_remembered_and_the_others_are_decoded() -> None:
    codec = HeaderCodec(memory_registry(), ROUTING_SLIP_HEADER)
    first = a_slip()
    encoded = codec.encode(first)

    for number in range(RECENT_HEADERS):
        codec.encode(first.model_copy(update={"order_id": f"order-{number}"}))

    assert len(serde._recently_written) <= RECENT_HEADERS
    assert encoded not in serde._recently_written
    assert codec.decode(encoded) == first


def test_a_remembered_header_of_another_record_type_is_not_taken_for_this_one() -> None:
    codec = HeaderCodec(memory_registry(), ROUTING_SLIP_HEADER)
    slip = a_slip()
    encoded = codec.encode(slip)
    serde._recently_written[encoded] = slip.itinerary[0]

    assert codec.decode(encoded) == slip
