"""Parked routing slips: list them, and resume one after its cause is dealt with.

A slip is parked when a compensation fails; the record sits on `oms.routing-slips.parked` (keyed by
order) with its slip in the header, the failed step on top of its compensation log. Resuming sends it to
that step's compensation address again. When the step was undone by hand, `skip_failed_step` takes it off
the log first and goes on with the step below it; with nothing left to undo, the slip ends faulted.
A tombstone then removes the parked record.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Producer

from ops.tables import read_table
from processors.routingslip import slip as slips
from processors.routingslip.host import SlipCodec
from processors.runtime.cloudevents import cloudevent_headers
from processors.runtime.records import derive_event_id, utc_now
from schemas.models import FulfillmentRequest, RoutingSlip, RoutingSlipActivityCompensated, RoutingSlipFaulted
from schemas.registry import registry_client
from schemas.serde import HeaderCodec, RecordCodec
from topology.settings import Settings
from topology.topics import ROUTING_SLIP_HEADER, ROUTING_SLIPS_EVENTS, ROUTING_SLIPS_PARKED, topic_named

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
    """Send a parked slip on its way again; returns what was done."""
    slip_to_resume = parked(settings).get(order_id)
    if slip_to_resume is None:
        raise NotParked(f"no parked routing slip for order {order_id}")
    registry = registry_client(settings)
    slip_codec = SlipCodec(HeaderCodec(registry, ROUTING_SLIP_HEADER))
    request, slip = slip_to_resume.request, slip_to_resume.slip
    now = utc_now()
    producer = Producer({**settings.kafka_config(), "enable.idempotence": True, "partitioner": "murmur2_random"})
    events = RecordCodec(registry, ROUTING_SLIPS_EVENTS.name)
    done = f"retrying the compensation of {slip_to_resume.failed_step}"
    if skip_failed_step:
        entry = slips.to_compensate(slip)
        assert entry is not None, "a parked slip has the failed step on top of its compensation log"
        undone = RoutingSlipActivityCompensated(
            event_id=derive_event_id(entry.execution_id, "compensated-by-hand"),
            order_id=order_id,
            occurred_at=now,
            tracking_number=slip.tracking_number,
            activity=entry.name,
        )
        producer.produce(
            ROUTING_SLIPS_EVENTS.name,
            key=order_id.encode(),
            value=events.encode(undone),
            headers=list(cloudevent_headers(undone, SOURCE)),
        )
        slip = slips.compensated(slip)
        done = f"{entry.name} marked undone by hand"
    following = slips.to_compensate(slip)
    if following is not None:
        address = following.address
        message = request.model_copy(
            update={"event_id": derive_event_id(slip.tracking_number, f"resumed/{now}"), "occurred_at": now}
        )
        producer.produce(
            address,
            key=order_id.encode(),
            value=RecordCodec(registry, address).encode(message),
            headers=[*cloudevent_headers(message, SOURCE), *slip_codec.header(slip)],
        )
        done += f"; sent to {topic_named(address).name}"
    else:
        faulted = RoutingSlipFaulted(
            event_id=derive_event_id(slip.tracking_number, "faulted"),
            order_id=order_id,
            occurred_at=now,
            tracking_number=slip.tracking_number,
            reason=slips.fault_reason(slip),
        )
        producer.produce(
            ROUTING_SLIPS_EVENTS.name,
            key=order_id.encode(),
            value=events.encode(faulted),
            headers=list(cloudevent_headers(faulted, SOURCE)),
        )
        done += "; nothing left to undo, the slip ends faulted"
    producer.produce(ROUTING_SLIPS_PARKED.name, key=order_id.encode(), value=None)
    producer.flush(30)
    return done
