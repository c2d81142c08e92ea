"""Parked routing slips: list them, and resume one after its cause is dealt with.

A slip is parked when a compensation fails; the record sits on `oms.routing-slips.parked` (keyed by
order) with its slip in the header. What a resume sends is decided in `processors.routingslip.resume`;
it is produced here with a tombstone that removes the parked record, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.tables import read_table
from processors.routingslip import resume as resumptions
from processors.routingslip import slip as slips
from processors.routingslip.host import SlipCodec
from processors.runtime.clients import transactional_producer
from processors.runtime.encoder import Encoder, produce
from processors.runtime.records import Outgoing, utc_now
from schemas.models import FulfillmentRequest, RoutingSlip
from schemas.registry import registry_client
from schemas.serde import HeaderCodec, RecordCodec
from topology.settings import Settings
from topology.topics import ROUTING_SLIP_HEADER, ROUTING_SLIPS_PARKED

SOURCE = "oms.cli"


@dataclass(frozen=True)
class ParkedSlip:
    request: FulfillmentRequest
    slip: RoutingSlip

    @property
    def failed_step(self) -> str:
        entry = slips.to_compensate(self.slip)
        return entry.name if entry else "-"


class NotParked(LookupError):
    pass


def parked(settings: Settings) -> dict[str, ParkedSlip]:
    registry = registry_client(settings)
    codec = RecordCodec(registry, ROUTING_SLIPS_PARKED.name)
    slip_codec = SlipCodec(HeaderCodec(registry, ROUTING_SLIP_HEADER))
    found = {}
    for order_id, row in read_table(settings, ROUTING_SLIPS_PARKED.name).items():
        request = codec.decode(row.value)
        assert isinstance(request, FulfillmentRequest)
        found[order_id] = ParkedSlip(request, slip_codec.read(row.headers))
    return found


def resume(settings: Settings, order_id: str, skip_failed_step: bool = False) -> str:
    """Send a parked slip on its way again, and take it off the parked topic, in one transaction; returns what
    was done."""
    slip_to_resume = parked(settings).get(order_id)
    if slip_to_resume is None:
        raise NotParked(f"no parked routing slip for order {order_id}")
    registry = registry_client(settings)
    slip_codec = SlipCodec(HeaderCodec(registry, ROUTING_SLIP_HEADER))
    resumption = resumptions.resume(
        slip_codec, slip_to_resume.request, slip_to_resume.slip, utc_now(), skip_failed_step
    )
    encode = Encoder(registry, SOURCE)
    producer = transactional_producer(settings, SOURCE)
    producer.init_transactions(30)
    producer.begin_transaction()
    for emit in resumption.emits:
        produce(producer, encode(emit))
    produce(producer, Outgoing(ROUTING_SLIPS_PARKED.name, order_id.encode(), None, ()))
    producer.commit_transaction(30)
    return resumption.done
