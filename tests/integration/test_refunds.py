"""RefundPayment through the real payments processor: per tender, newest first, store credit as fallback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.produce import produce_orders, produce_records
from processors.adapters.payment_gateway import SimulatedPaymentGateway, default_ledger_path
from processors.runtime.records import utc_now
from schemas.models import Money, PaymentMethod, PaymentProcessed, PaymentRefunded, RefundPayment
from tests.factories import a_valid_order
from tests.integration.harness import Processes, Watcher
from topology.settings import Settings
from topology.topics import PAYMENTS_COMMANDS, PAYMENTS_EVENTS


@pytest.fixture
def watcher(settings: Settings, registry: SchemaRegistryClient, pipeline: Processes) -> Iterator[Watcher]:
    watching = Watcher(settings, registry, [PAYMENTS_EVENTS.name])
    yield watching
    watching.close()


def test_refund_goes_back_per_tender_with_store_credit_where_a_card_refuses_and_never_twice(
    settings: Settings, watcher: Watcher
) -> None:
    order = a_valid_order(
        order_id=f"refund-{uuid.uuid4().hex[:8]}",
        tenders=[
            {"method": "GIFT_CARD", "token": "gc_ok_1", "amount": {"amount_minor": 1000, "currency": "EUR"}},
            {"method": "CARD", "token": "tok_norefund_9", "amount": {"amount_minor": 2000, "currency": "EUR"}},
        ],
    )
    produce_orders(settings, [order], progress=False)
    watcher.wait_until(
        lambda seen: any(isinstance(s.record, PaymentProcessed) and s.key == order.order_id for s in seen),
        what="the order paid",
    )
    refund = RefundPayment(
        event_id=uuid.uuid4(),
        order_id=order.order_id,
        occurred_at=utc_now(),
        amount=Money(amount_minor=3000, currency="EUR"),
        reason="cancelled by the customer",
    )

    produce_records(settings, PAYMENTS_COMMANDS, [(order.order_id, refund), (order.order_id, refund)], progress=False)

    seen = watcher.wait_until(
        lambda seen: sum(1 for s in seen if isinstance(s.record, PaymentRefunded) and s.key == order.order_id) >= 2,
        what="both tenders refunded",
    )
    refunds = [s.record for s in seen if isinstance(s.record, PaymentRefunded) and s.key == order.order_id]
    assert [(r.method, r.amount.amount_minor) for r in refunds] == [
        (PaymentMethod.STORE_CREDIT, 2000),  # the card refused, newest tender first
        (PaymentMethod.GIFT_CARD, 1000),
    ]
    gateway = SimulatedPaymentGateway(default_ledger_path(settings))
    assert gateway.out_of_pocket(order.order_id) == 0
    assert gateway.credited_total(order.order_id) == 2000 and gateway.refunded_total(order.order_id) == 1000
