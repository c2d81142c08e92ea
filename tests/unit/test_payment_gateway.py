from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from processors.adapters.payment_gateway import (
    CARD_LIMIT_MINOR,
    ChargeResult,
    IdempotencyKeyReused,
    RefundResult,
    SimulatedPaymentGateway,
    UnknownTransaction,
    default_ledger_path,
    judge_refund,
)
from processors.runtime.retries import TransientError
from schemas.models import Money, PaymentMethod
from topology.settings import Settings

CARD = PaymentMethod.CARD
GIFT_CARD = PaymentMethod.GIFT_CARD
STORE_CREDIT = PaymentMethod.STORE_CREDIT


def eur(minor: int) -> Money:
    return Money(amount_minor=minor, currency="EUR")


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "simulators" / "payment-gateway.sqlite"


@pytest.fixture
def gateway(ledger: Path) -> SimulatedPaymentGateway:
    return SimulatedPaymentGateway(ledger)


@pytest.mark.parametrize(
    ("method", "token", "status", "reason", "code"),
    [
        (CARD, "tok_ok_4242", "approved", "", ""),
        (CARD, "tok_declined_1", "declined", "card declined", "card-declined"),
        (CARD, "tok_nofunds_1", "declined", "insufficient funds", "insufficient-funds"),
        (GIFT_CARD, "gc_ok_1", "approved", "", ""),
        (GIFT_CARD, "gc_empty_1", "declined", "gift card balance too low", "gift-card-empty"),
        (STORE_CREDIT, "sc_customer_7", "approved", "", ""),
        (CARD, "visa_4242", "declined", "unknown token", "unknown-token"),
        (CARD, "gc_ok_1", "declined", "unknown token", "unknown-token"),
        (STORE_CREDIT, "tok_ok_1", "declined", "unknown token", "unknown-token"),
    ],
)
def test_the_token_decides_the_answer_and_the_recorded_answer_keeps_its_code(
    gateway: SimulatedPaymentGateway, method: PaymentMethod, token: str, status: str, reason: str, code: str
) -> None:
    result = gateway.charge("key-1", method, token, eur(1000), order_id="o-1")
    again = gateway.charge("key-1", method, token, eur(1000), order_id="o-1")

    assert (result.status, result.reason, result.code) == (status, reason, code)
    assert result.transaction_id
    assert again == result


def test_a_card_charge_above_the_card_limit_is_declined(gateway: SimulatedPaymentGateway) -> None:
    at_limit = gateway.charge("key-1", CARD, "tok_ok", eur(CARD_LIMIT_MINOR), order_id="o-1")
    above = gateway.charge("key-2", CARD, "tok_ok", eur(CARD_LIMIT_MINOR + 1), order_id="o-1")

    assert at_limit.approved
    assert (above.status, above.reason, above.code) == ("declined", "amount above card limit", "over-card-limit")


def test_the_card_limit_does_not_apply_to_gift_cards_or_store_credit(gateway: SimulatedPaymentGateway) -> None:
    assert gateway.charge("key-1", GIFT_CARD, "gc_ok", eur(CARD_LIMIT_MINOR + 1), order_id="o-1").approved
    assert gateway.charge("key-2", STORE_CREDIT, "sc_1", eur(CARD_LIMIT_MINOR + 1), order_id="o-1").approved


def test_a_repeated_key_returns_the_recorded_answer_without_a_second_charge(
    gateway: SimulatedPaymentGateway,
) -> None:
    first = gateway.charge("key-1", CARD, "tok_ok", eur(1000), order_id="o-1")
    again = gateway.charge("key-1", CARD, "tok_ok", eur(1000), order_id="o-1")

    assert again == first
    assert gateway.count_charges("o-1") == 1
    assert gateway.approved_total("o-1") == 1000
    assert [effect.idempotency_key for effect in gateway.effects()] == ["key-1"]


def test_a_repeated_key_returns_a_recorded_decline_too(gateway: SimulatedPaymentGateway) -> None:
    first = gateway.charge("key-1", CARD, "tok_declined", eur(1000), order_id="o-1")
    again = gateway.charge("key-1", CARD, "tok_declined", eur(1000), order_id="o-1")

    assert again == first
    assert gateway.attempts("key-1") == 1
    assert gateway.count_charges("o-1", status="declined") == 1
    assert gateway.effects() == []


def test_a_key_reused_for_another_charge_is_refused(gateway: SimulatedPaymentGateway) -> None:
    gateway.charge("key-1", CARD, "tok_ok", eur(1000), order_id="o-1")

    with pytest.raises(IdempotencyKeyReused):
        gateway.charge("key-1", CARD, "tok_ok", eur(2000), order_id="o-1")
    assert gateway.approved_total("o-1") == 1000


def test_a_flaky_card_fails_twice_per_key_then_approves(gateway: SimulatedPaymentGateway) -> None:
    for _ in range(2):
        with pytest.raises(TransientError):
            gateway.charge("key-1", CARD, "tok_flaky", eur(1000), order_id="o-1")
    result = gateway.charge("key-1", CARD, "tok_flaky", eur(1000), order_id="o-1")

    assert result.approved
    assert gateway.attempts("key-1") == 3
    assert gateway.count_charges("o-1") == 1
    with pytest.raises(TransientError):
        gateway.charge("key-2", CARD, "tok_flaky", eur(1000), order_id="o-2")  # another key starts over


def test_a_card_that_is_down_always_fails_transiently_and_charges_nothing(gateway: SimulatedPaymentGateway) -> None:
    for _ in range(5):
        with pytest.raises(TransientError):
            gateway.charge("key-1", CARD, "tok_down", eur(1000), order_id="o-1")

    assert gateway.attempts("key-1") == 5
    assert gateway.count_charges() == 0


def test_a_void_cancels_an_approved_charge_once(gateway: SimulatedPaymentGateway) -> None:
    charged = gateway.charge("key-1/charge/0", GIFT_CARD, "gc_ok", eur(1000), order_id="o-1")

    gateway.void("key-1/void/0", charged.transaction_id)
    gateway.void("key-1/void/0", charged.transaction_id)

    assert gateway.approved_total("o-1") == 0
    assert gateway.count_voids("o-1") == 1
    assert [(effect.kind, effect.idempotency_key) for effect in gateway.effects("o-1")] == [
        ("charge", "key-1/charge/0"),
        ("void", "key-1/void/0"),
    ]
    assert gateway.charges("o-1")[0].voided


def test_a_void_of_an_unknown_or_declined_transaction_is_refused(gateway: SimulatedPaymentGateway) -> None:
    declined = gateway.charge("key-1", CARD, "tok_declined", eur(1000), order_id="o-1")

    with pytest.raises(UnknownTransaction):
        gateway.void("void-1", "sim_no_such_transaction")
    with pytest.raises(UnknownTransaction):
        gateway.void("void-2", declined.transaction_id)


def test_a_void_of_a_flaky_card_fails_twice_then_succeeds(gateway: SimulatedPaymentGateway) -> None:
    charged = charge_flaky_until_approved(gateway, "key-1", "o-1")

    for _ in range(2):
        with pytest.raises(TransientError):
            gateway.void("void-1", charged.transaction_id)
    gateway.void("void-1", charged.transaction_id)

    assert gateway.approved_total("o-1") == 0


def charge_flaky_until_approved(gateway: SimulatedPaymentGateway, key: str, order_id: str) -> ChargeResult:
    while True:
        try:
            return gateway.charge(key, CARD, "tok_flaky", eur(1000), order_id=order_id)
        except TransientError:
            continue


# Refunds and store credit.


@pytest.mark.parametrize(
    ("method", "token", "refund"),
    [
        (CARD, "tok_ok_1", RefundResult("approved", "")),
        (GIFT_CARD, "gc_ok_1", RefundResult("approved", "")),
        (STORE_CREDIT, "sc_1", RefundResult("approved", "")),
        (CARD, "tok_norefund_1", RefundResult("declined", "", "card closed, refund refused")),
    ],
)
def test_the_token_decides_the_answer_to_a_refund(
    gateway: SimulatedPaymentGateway, method: PaymentMethod, token: str, refund: RefundResult
) -> None:
    charged = gateway.charge("key-1/charge/0", method, token, eur(1000), order_id="o-1")

    result = gateway.refund("key-1/refund/0", charged.transaction_id, eur(400))

    assert charged.approved
    assert (result.status, result.reason) == (refund.status, refund.reason)
    assert result.transaction_id not in ("", charged.transaction_id)
    assert gateway.refunded_total("o-1") == (400 if result.approved else 0)


@pytest.mark.parametrize(
    ("token", "first_answered_attempt"),
    [("tok_flaky_1", 3), ("tok_down_1", None), ("tok_ok_1", 1), ("tok_norefund_1", 1)],
)
def test_refunds_are_unavailable_as_charges_of_the_same_token_are(
    token: str, first_answered_attempt: int | None
) -> None:
    answered = (
        attempt
        for attempt in range(1, 11)
        if judge_refund(CARD, token, eur(100), eur(1000), attempt, charge_attempt=attempt).status != "unavailable"
    )

    assert next(answered, None) == first_answered_attempt


def test_a_slow_refunding_card_fails_its_first_seven_refund_tries_across_keys(
    gateway: SimulatedPaymentGateway,
) -> None:
    charged = gateway.charge("key-1/charge/0", CARD, "tok_refundslow_1", eur(1000), order_id="o-1")

    for attempt in range(7):
        with pytest.raises(TransientError):
            gateway.refund(f"key-{attempt}/refund/0", charged.transaction_id, eur(1000))
    result = gateway.refund("key-last/refund/0", charged.transaction_id, eur(1000))

    assert result.approved
    assert gateway.out_of_pocket("o-1") == 0


def test_a_card_that_refunds_nothing_is_unavailable_on_every_key(gateway: SimulatedPaymentGateway) -> None:
    charged = gateway.charge("key-1/charge/0", CARD, "tok_refunddown_1", eur(1000), order_id="o-1")

    for attempt in range(20):
        with pytest.raises(TransientError):
            gateway.refund(f"key-{attempt}/refund/0", charged.transaction_id, eur(1000))
    assert gateway.out_of_pocket("o-1") == 1000


def test_a_flaky_card_refund_fails_twice_per_key_then_is_made(gateway: SimulatedPaymentGateway) -> None:
    charged = charge_flaky_until_approved(gateway, "key-1/charge/0", "o-1")

    for _ in range(2):
        with pytest.raises(TransientError):
            gateway.refund("key-1/refund/0", charged.transaction_id, eur(1000))
    result = gateway.refund("key-1/refund/0", charged.transaction_id, eur(1000))

    assert result.approved
    assert gateway.attempts("key-1/refund/0") == 3
    assert gateway.out_of_pocket("o-1") == 0


def test_a_repeated_refund_key_returns_the_recorded_answer_without_a_second_refund(
    gateway: SimulatedPaymentGateway,
) -> None:
    charged = gateway.charge("key-1/charge/0", CARD, "tok_ok", eur(1000), order_id="o-1")

    first = gateway.refund("key-1/refund/0", charged.transaction_id, eur(300))
    again = gateway.refund("key-1/refund/0", charged.transaction_id, eur(300))

    assert again == first
    assert gateway.attempts("key-1/refund/0") == 1
    assert gateway.refunded_total("o-1") == 300
    assert Counter(effect.idempotency_key for effect in gateway.effects("o-1")) == {
        "key-1/charge/0": 1,
        "key-1/refund/0": 1,
    }


def test_a_repeated_refund_key_returns_a_recorded_decline_too(gateway: SimulatedPaymentGateway) -> None:
    charged = gateway.charge("key-1/charge/0", CARD, "tok_norefund", eur(1000), order_id="o-1")

    first = gateway.refund("key-1/refund/0", charged.transaction_id, eur(300))
    again = gateway.refund("key-1/refund/0", charged.transaction_id, eur(300))

    assert again == first
    assert not first.approved
    assert gateway.attempts("key-1/refund/0") == 1
    assert [effect.kind for effect in gateway.effects("o-1")] == ["charge"]


def test_a_refund_key_reused_for_another_refund_is_refused(gateway: SimulatedPaymentGateway) -> None:
    charged = gateway.charge("key-1/charge/0", CARD, "tok_ok", eur(1000), order_id="o-1")
    gateway.refund("key-1/refund/0", charged.transaction_id, eur(300))

    with pytest.raises(IdempotencyKeyReused):
        gateway.refund("key-1/refund/0", charged.transaction_id, eur(400))
    assert gateway.refunded_total("o-1") == 300


def test_refunds_never_give_back_more_than_stays_charged(gateway: SimulatedPaymentGateway) -> None:
    charged = gateway.charge("key-1/charge/0", CARD, "tok_ok", eur(1000), order_id="o-1")
    gateway.refund("key-1/refund/0", charged.transaction_id, eur(700))

    above = gateway.refund("key-2/refund/0", charged.transaction_id, eur(301))
    rest = gateway.refund("key-3/refund/0", charged.transaction_id, eur(300))
    beyond = gateway.refund("key-4/refund/0", charged.transaction_id, eur(1))

    assert (above.status, above.reason) == ("declined", "refund above the 300 that stays charged")
    assert rest.approved
    assert (beyond.status, beyond.reason) == ("declined", "refund above the 0 that stays charged")
    assert gateway.refunded_total("o-1") == 1000
    assert gateway.out_of_pocket("o-1") == 0


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (Money(amount_minor=100, currency="USD"), "refund in USD of a charge in EUR"),
        (eur(0), "refund amount not positive"),
    ],
)
def test_a_refund_in_another_currency_or_of_nothing_is_declined(
    gateway: SimulatedPaymentGateway, amount: Money, reason: str
) -> None:
    charged = gateway.charge("key-1/charge/0", CARD, "tok_ok", eur(1000), order_id="o-1")

    result = gateway.refund("key-1/refund/0", charged.transaction_id, amount)

    assert (result.status, result.reason) == ("declined", reason)


def test_a_voided_charge_has_nothing_left_to_refund(gateway: SimulatedPaymentGateway) -> None:
    charged = gateway.charge("key-1/charge/0", GIFT_CARD, "gc_ok", eur(1000), order_id="o-1")
    gateway.void("key-1/void/0", charged.transaction_id)

    result = gateway.refund("key-1/refund/0", charged.transaction_id, eur(1000))

    assert (result.status, result.reason) == ("declined", "refund above the 0 that stays charged")
    assert gateway.out_of_pocket("o-1") == 0


def test_a_refund_of_an_unknown_or_declined_transaction_is_refused(gateway: SimulatedPaymentGateway) -> None:
    declined = gateway.charge("key-1/charge/0", CARD, "tok_declined", eur(1000), order_id="o-1")

    with pytest.raises(UnknownTransaction):
        gateway.refund("refund-1", "sim_no_such_transaction", eur(100))
    with pytest.raises(UnknownTransaction):
        gateway.refund("refund-2", declined.transaction_id, eur(100))
    assert gateway.attempts("refund-1") == gateway.attempts("refund-2") == 0


def test_store_credit_is_issued_once_per_key(gateway: SimulatedPaymentGateway) -> None:
    first = gateway.credit("key-1/credit/0", "o-1", eur(400))
    again = gateway.credit("key-1/credit/0", "o-1", eur(400))
    other = gateway.credit("key-2/credit/0", "o-1", eur(100))

    assert again == first != other
    assert gateway.credited_total("o-1") == 500
    assert [(effect.kind, effect.transaction_id) for effect in gateway.effects("o-1")] == [
        ("credit", first),
        ("credit", other),
    ]


def test_a_credit_key_reused_for_another_credit_is_refused(gateway: SimulatedPaymentGateway) -> None:
    gateway.credit("key-1/credit/0", "o-1", eur(400))

    with pytest.raises(IdempotencyKeyReused):
        gateway.credit("key-1/credit/0", "o-2", eur(400))
    assert gateway.credited_total("o-2") == 0


def test_out_of_pocket_is_what_was_charged_less_voids_refunds_and_credits(gateway: SimulatedPaymentGateway) -> None:
    kept = gateway.charge("key-1/charge/0", CARD, "tok_ok", eur(1000), order_id="o-1")
    voided = gateway.charge("key-1/charge/1", GIFT_CARD, "gc_ok", eur(500), order_id="o-1")
    gateway.void("key-1/void/1", voided.transaction_id)
    gateway.refund("key-2/refund/0", kept.transaction_id, eur(300))
    gateway.credit("key-2/credit/0", "o-1", eur(200))
    gateway.credit("key-3/credit/0", "o-2", eur(50))

    assert (gateway.approved_total("o-1"), gateway.refunded_total("o-1"), gateway.credited_total("o-1")) == (
        1000,
        300,
        200,
    )
    assert gateway.out_of_pocket("o-1") == 500
    assert Counter(effect.kind for effect in gateway.effects("o-1")) == {
        "charge": 2,
        "void": 1,
        "refund": 1,
        "credit": 1,
    }
    assert len(gateway.effects()) == 6


def test_two_instances_on_one_file_share_the_ledger(ledger: Path) -> None:
    first = SimulatedPaymentGateway(ledger)
    second = SimulatedPaymentGateway(ledger)

    charged = first.charge("key-1", CARD, "tok_ok", eur(1000), order_id="o-1")
    assert second.charge("key-1", CARD, "tok_ok", eur(1000), order_id="o-1") == charged
    second.void("void-1", charged.transaction_id)

    assert first.count_charges("o-1") == 1
    assert first.approved_total("o-1") == 0


def test_the_ledger_survives_a_new_instance_after_a_crash(ledger: Path) -> None:
    with pytest.raises(TransientError):
        SimulatedPaymentGateway(ledger).charge("key-1", CARD, "tok_flaky", eur(1000), order_id="o-1")
    with pytest.raises(TransientError):
        SimulatedPaymentGateway(ledger).charge("key-1", CARD, "tok_flaky", eur(1000), order_id="o-1")

    restarted = SimulatedPaymentGateway(ledger)
    assert restarted.charge("key-1", CARD, "tok_flaky", eur(1000), order_id="o-1").approved
    assert restarted.attempts("key-1") == 3


def test_concurrent_instances_charge_each_key_once(ledger: Path) -> None:
    instances = [SimulatedPaymentGateway(ledger) for _ in range(2)]
    keys = [f"key-{n}" for n in range(20)]

    def charge(job: int) -> ChargeResult:
        return instances[job % 2].charge(keys[job % 20], CARD, "tok_ok", eur(100), order_id="o-1")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(charge, range(80)))

    assert len({result.transaction_id for result in results}) == 20
    assert instances[0].count_charges("o-1", status="approved") == 20
    assert instances[1].approved_total("o-1") == 20 * 100


def test_the_default_ledger_lives_in_the_run_dir(tmp_path: Path) -> None:
    path = default_ledger_path(Settings(run_dir=tmp_path))

    SimulatedPaymentGateway(path)

    assert path == tmp_path / "simulators" / "payment-gateway.sqlite"
    assert path.exists()
