"""Every topic's contract holds on the real broker: a record of another topic, a value outside its domain or a
lying `ce_type` header is dead-lettered with its reason, nothing acts on it, and orders go on finishing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.produce import produce_orders
from ops.stock import read_stock
from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.intake import PROCESSOR as INTAKE
from processors.runtime.encoder import Encoder
from processors.runtime.records import Emit, Outgoing, utc_now
from processors.sagas.processor import PROCESSOR as SAGAS
from processors.stock import PROCESSOR as STOCK
from processors.tracking.processor import PROCESSOR as TRACKER
from schemas.models import (
    Money,
    OrderCancelled,
    OrderDelivered,
    OrderRejected,
    PaymentProcessed,
    PaymentRefunded,
    StockRequest,
    StockRequestKind,
)
from tests.integration.harness import Processes, Seen, Watcher
from tests.integration.test_cancellation import (
    SKU,
    activities_held_back,
    outcome,
    path,
    stopping,
    tee_order,
    wait_for_outcomes,
)
from tests.integration.test_cancellation import cancel as cancel_orders
from tests.integration.test_choreography import set_stock_and_wait
from topology.settings import Settings
from topology.topics import (
    INVENTORY_EVENTS,
    INVENTORY_STOCK,
    NOTIFICATIONS_EVENTS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    PAYMENTS_EVENTS,
    ROUTING_SLIPS_EVENTS,
    SAGAS_EVENTS,
    STOCK_REQUESTS,
)

COMMANDS_DLQ = ORDERS_COMMANDS.dead_letter_topic.name
STOCK_REQUESTS_DLQ = STOCK_REQUESTS.dead_letter_topic.name
FAKE_CHARGE_MINOR = 999_999


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    topics = [ORDERS_EVENTS, PAYMENTS_EVENTS, INVENTORY_EVENTS, ROUTING_SLIPS_EVENTS, SAGAS_EVENTS]
    watching = Watcher(
        settings,
        registry,
        [t.name for t in (*topics, NOTIFICATIONS_EVENTS, INVENTORY_STOCK)],
        raw=[COMMANDS_DLQ, STOCK_REQUESTS_DLQ],
    )
    yield watching
    watching.close()


def send(settings: Settings, outgoing: Outgoing, topic: str) -> None:
    """`outgoing`, bytes and headers as its encoder made them, produced to `topic` (maybe not its own)."""
    producer = Producer(settings.producer_config())
    producer.produce(topic, key=outgoing.key, value=outgoing.value, headers=list(outgoing.headers))
    assert producer.flush(30) == 0


def letters(seen: list[Seen], dlq: str, key: str) -> dict[str, str]:
    """The reason of each dead letter of `key` on `dlq`, by the processor that wrote it."""
    return {
        s.headers["dlq.processor"].decode(): s.headers["dlq.error.message"].decode()
        for s in seen
        if s.topic == dlq and s.key == key
    }


def test_a_payment_produced_to_the_commands_topic_is_dead_lettered_and_the_saga_learns_nothing_from_it(
    settings: Settings, registry: SchemaRegistryClient, pipeline: Processes, admin: AdminClient, watcher: Watcher
) -> None:
    placed = tee_order("contract-fake-payment")
    set_stock_and_wait(settings, watcher, {SKU: 5})
    with activities_held_back(pipeline, admin):
        produce_orders(settings, [placed], progress=False)
        watcher.wait_until(
            lambda seen: any(s.key == placed.order_id and s.record_type == "RoutingSlipCreated" for s in seen),
            what="the order paid and its slip created",
        )
        # A third party's charge, for far more than the order, where commands go: were the saga to believe
        # it, the cancellation would refund what was never charged.
        fake = PaymentProcessed(
            event_id=uuid.uuid4(),
            order_id=placed.order_id,
            occurred_at=utc_now(),
            amount=Money(amount_minor=FAKE_CHARGE_MINOR, currency="EUR"),
            charges=[],
        )
        send(
            settings,
            Encoder(registry, "oms.payments")(Emit(PAYMENTS_EVENTS, placed.order_id, fake)),
            ORDERS_COMMANDS.name,
        )
        watcher.wait_until(
            lambda seen: set(letters(seen, COMMANDS_DLQ, placed.order_id)) == {INTAKE, SAGAS, TRACKER},
            what="the fake payment dead-lettered by every reader of the commands",
        )
        cancel_orders(settings, placed.order_id)
        stopping(watcher, [placed.order_id])
    wait_for_outcomes(watcher, [placed.order_id])

    for reason in letters(watcher.seen, COMMANDS_DLQ, placed.order_id).values():
        assert reason == f"oms.payments.PaymentProcessed is not a record type of {ORDERS_COMMANDS.name}"
    cancelled = outcome(watcher.seen, placed.order_id)
    assert isinstance(cancelled, OrderCancelled)
    charged = SimulatedPaymentGateway(default_ledger_path(settings)).approved_total(placed.order_id)
    refunds = [s.record for s in watcher.for_order(placed.order_id) if isinstance(s.record, PaymentRefunded)]
    assert 0 < charged < FAKE_CHARGE_MINOR
    assert sum(refund.amount.amount_minor for refund in refunds) == charged
    assert cancelled.refunded is not None and cancelled.refunded.amount_minor == charged
    assert path(watcher, placed.order_id) == [
        "Idle",
        "StoppingFulfillment",
        "Refunding",
        "ReleasingInventory",
        "Cancelled",
    ]


def test_a_negative_stock_request_and_a_lying_ce_type_are_dead_lettered_and_orders_still_finish(
    settings: Settings, registry: SchemaRegistryClient, watcher: Watcher
) -> None:
    set_stock_and_wait(settings, watcher, {SKU: 5})
    run = uuid.uuid4().hex[:8]
    # A reservation of -5 units: before, it added five units to the shelf.
    negative = StockRequest(
        event_id=uuid.uuid4(),
        order_id=f"contract-negative-{run}",
        occurred_at=utc_now(),
        request_id=str(uuid.uuid4()),
        kind=StockRequestKind.RESERVE,
        sku=SKU,
        quantity=-5,
        line_count=1,
    )
    encode = Encoder(registry, "oms.inventory")
    send(settings, encode(Emit(STOCK_REQUESTS, SKU, negative)), STOCK_REQUESTS.name)
    # An order dressed as a cancellation, which intake passes over: before, it vanished without a trace.
    disguised = tee_order("contract-disguised")
    dressed = encode(Emit(ORDERS_COMMANDS, disguised.order_id, disguised))
    headers = tuple((name, b"oms.CancelOrder" if name == "ce_type" else value) for name, value in dressed.headers)
    send(settings, Outgoing(dressed.topic, dressed.key, dressed.value, headers), ORDERS_COMMANDS.name)

    seen = watcher.wait_until(
        lambda seen: (
            STOCK in letters(seen, STOCK_REQUESTS_DLQ, SKU)
            and INTAKE in letters(seen, COMMANDS_DLQ, disguised.order_id)
            and any(isinstance(s.record, OrderRejected) and s.key == disguised.order_id for s in seen)
        ),
        what="the negative request and the disguised order dead-lettered, the order answered",
    )

    assert "quantity is -5, must be at least 1" in letters(seen, STOCK_REQUESTS_DLQ, SKU)[STOCK]
    assert "the ce_type header says oms.CancelOrder" in letters(seen, COMMANDS_DLQ, disguised.order_id)[INTAKE]
    assert read_stock(settings)[SKU] == 5, "no units appeared"
    answers = [s.record for s in seen if s.key == disguised.order_id and s.topic == ORDERS_EVENTS.name]
    [rejected] = answers  # never taken: rejected, in words, and nothing else
    assert isinstance(rejected, OrderRejected) and rejected.codes == ["invalid-field"]
    assert "the ce_type header says oms.CancelOrder" in rejected.reasons[0]

    orders = [tee_order(f"contract-after-{n}") for n in range(5)]
    produce_orders(settings, orders, progress=False)
    watcher.wait_until(
        lambda seen: {s.key for s in seen if isinstance(s.record, OrderDelivered)} >= {o.order_id for o in orders},
        timeout_s=120,
        what="every order after the breaches delivered",
    )
    assert read_stock(settings)[SKU] == 0
