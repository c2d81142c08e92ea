"""Simulators that keep their effects in memory until the runtime flushes them before a commit
(processors/runtime/deferred.py): later calls see what is kept, nothing reaches the file before the flush,
and one key flushed by two processes is one effect."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.adapters.carriers import Parcel
from processors.adapters.fulfillment_simulators import FulfillmentSimulators, UnknownEffect
from processors.adapters.payment_gateway import SimulatedPaymentGateway
from processors.runtime import deferred
from processors.runtime.retries import TransientError
from schemas.models import Money, PaymentMethod

TEE = {"SKU-TEE-01": 1}
EUR_10 = Money(amount_minor=1000, currency="EUR")
PARCEL = Parcel(weight_g=500, longest_cm=30, middle_cm=20, shortest_cm=10)


def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "simulators" / "fulfillment.sqlite"


def test_a_deferred_ledger_writes_nothing_until_flushed_and_answers_from_what_it_keeps(tmp_path: Path) -> None:
    simulators = FulfillmentSimulators.open(ledger_path(tmp_path), deferred=True)

    pick = simulators.warehouse.pick("k-pick", "o-1", TEE)
    box = simulators.warehouse.pack("k-pack", "o-1", "standard", TEE)
    assert simulators.warehouse.pick("k-pick", "o-1", TEE) == pick
    simulators.warehouse.wrap("k-wrap", "o-1", box)  # needs the kept box
    assert simulators.ledger.effects() == []

    simulators.ledger.flush()
    simulators.ledger.flush()
    assert [(e.kind, e.idempotency_key) for e in simulators.ledger.effects()] == [
        ("pick", "k-pick"),
        ("pack", "k-pack"),
        ("wrap", "k-wrap"),
    ]
    restarted = FulfillmentSimulators.open(ledger_path(tmp_path), deferred=True)
    assert restarted.warehouse.pack("k-pack", "o-1", "standard", TEE) == box
    restarted.ledger.flush()
    assert len(restarted.ledger.effects()) == 3


def test_an_effect_kept_and_undone_before_the_flush_is_written_undone(tmp_path: Path) -> None:
    simulators = FulfillmentSimulators.open(ledger_path(tmp_path), deferred=True)
    label = simulators.carriers.create_label("k-label", "parcelpost", PARCEL, "DE", order_id="o-1")

    simulators.carriers.void_label("k-void", "parcelpost", label)
    with pytest.raises(UnknownEffect):
        simulators.carriers.confirm_delivery(
            "k-pod", "parcelpost", label, signature_required=False, recipient="Ada"
        )  # the kept void counts
    simulators.ledger.flush()

    assert [e.kind for e in simulators.ledger.effects("o-1")] == ["label", "void-label"]
    assert simulators.ledger.outstanding("o-1") == []


def test_attempts_kept_count_with_those_written(tmp_path: Path) -> None:
    simulators = FulfillmentSimulators.open(ledger_path(tmp_path), deferred=True)
    value = Money(amount_minor=1000, currency="EUR")

    with pytest.raises(TransientError):
        simulators.customs.declare("k-declare", "o-1", "DE", "CH", value)  # CH fails each key's first attempt
    simulators.ledger.flush()
    assert simulators.ledger.attempts("k-declare") == 1

    restarted = FulfillmentSimulators.open(ledger_path(tmp_path), deferred=True)
    declaration = restarted.customs.declare("k-declare", "o-1", "DE", "CH", value)
    restarted.ledger.flush()
    assert restarted.ledger.attempts("k-declare") == 2
    assert [e.subject for e in restarted.ledger.effects("o-1")] == [declaration]


def test_a_key_another_process_wrote_before_the_flush_stays_one_effect_with_one_subject(tmp_path: Path) -> None:
    kept = FulfillmentSimulators.open(ledger_path(tmp_path), deferred=True)
    other_process = FulfillmentSimulators.open(ledger_path(tmp_path))  # writes as it goes: a flush of its own

    picked = kept.warehouse.pick("k-pick", "o-1", TEE)
    assert other_process.warehouse.pick("k-pick", "o-1", TEE) == picked
    kept.ledger.flush()

    assert [e.subject for e in kept.ledger.effects()] == [picked]


def test_adapters_on_one_file_in_one_process_see_what_the_others_keep(tmp_path: Path) -> None:
    shipping = FulfillmentSimulators.open(ledger_path(tmp_path), deferred=True)
    delivering = FulfillmentSimulators.open(ledger_path(tmp_path), deferred=True)  # another stream's
    label = shipping.carriers.create_label("k-label", "parcelpost", PARCEL, "DE", order_id="o-1")

    assert delivering.carriers.confirm_delivery("k-pod", "parcelpost", label, signature_required=True, recipient="Ada")
    delivering.ledger.flush()

    assert [e.kind for e in shipping.ledger.effects("o-1")] == ["label", "confirm-delivery"]


def test_flush_deferred_flushes_every_deferred_adapter_and_only_those(tmp_path: Path) -> None:
    written_at_once = FulfillmentSimulators.open(tmp_path / "at-once.sqlite")
    kept = FulfillmentSimulators.open(ledger_path(tmp_path), deferred=True)
    kept.warehouse.pick("k-pick", "o-1", TEE)
    written_at_once.warehouse.pick("k-pick", "o-1", TEE)
    assert kept.ledger.effects() == [] and len(written_at_once.ledger.effects()) == 1

    deferred.flush_deferred()

    assert [e.idempotency_key for e in kept.ledger.effects()] == ["k-pick"]


def gateway_path(tmp_path: Path) -> Path:
    return tmp_path / "simulators" / "payment-gateway.sqlite"


def test_deferred_charges_are_answered_from_memory_and_written_when_flushed(tmp_path: Path) -> None:
    gateway = SimulatedPaymentGateway(gateway_path(tmp_path), deferred=True)

    for attempt in (1, 2):
        with pytest.raises(TransientError):
            gateway.charge("k-charge", PaymentMethod.CARD, "tok_flaky_1", EUR_10, order_id="o-1")
        assert gateway.attempts("k-charge") == 0, f"attempt {attempt} is kept, not written"
    charged = gateway.charge("k-charge", PaymentMethod.CARD, "tok_flaky_1", EUR_10, order_id="o-1")
    assert gateway.charge("k-charge", PaymentMethod.CARD, "tok_flaky_1", EUR_10, order_id="o-1") == charged
    assert gateway.charges() == []

    gateway.flush()
    assert [(c.idempotency_key, c.status) for c in gateway.charges()] == [("k-charge", "approved")]
    assert gateway.attempts("k-charge") == 3
    restarted = SimulatedPaymentGateway(gateway_path(tmp_path), deferred=True)
    assert restarted.charge("k-charge", PaymentMethod.CARD, "tok_flaky_1", EUR_10, order_id="o-1") == charged


def test_a_refund_of_a_kept_charge_writes_the_charge_first(tmp_path: Path) -> None:
    gateway = SimulatedPaymentGateway(gateway_path(tmp_path), deferred=True)
    charged = gateway.charge("k-charge", PaymentMethod.CARD, "tok_ok_1", EUR_10, order_id="o-1")

    refunded = gateway.refund("k-refund", charged.transaction_id, EUR_10)

    assert refunded.approved
    assert gateway.out_of_pocket("o-1") == 0


def test_a_charge_another_process_wrote_before_the_flush_is_charged_once(tmp_path: Path) -> None:
    kept = SimulatedPaymentGateway(gateway_path(tmp_path), deferred=True)
    other_process = SimulatedPaymentGateway(gateway_path(tmp_path))

    first = kept.charge("k-charge", PaymentMethod.CARD, "tok_ok_1", EUR_10, order_id="o-1")
    assert other_process.charge("k-charge", PaymentMethod.CARD, "tok_ok_1", EUR_10, order_id="o-1") == first
    kept.flush()

    assert kept.count_charges("o-1") == 1 and kept.approved_total("o-1") == 1000


def test_a_void_finds_the_charge_another_stream_of_its_process_kept(tmp_path: Path) -> None:
    charging = SimulatedPaymentGateway(gateway_path(tmp_path), deferred=True)
    voiding = SimulatedPaymentGateway(gateway_path(tmp_path), deferred=True)
    charged = charging.charge("k-charge", PaymentMethod.CARD, "tok_ok_1", EUR_10, order_id="o-1")

    voiding.void("k-void", charged.transaction_id)

    assert charging.out_of_pocket("o-1") == 0 and charging.count_voids("o-1") == 1
