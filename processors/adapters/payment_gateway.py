"""The payment gateway behind a small interface, and a simulator that behaves deterministically from the data.

Every call carries an idempotency key: a call repeated with the same key returns the recorded result and has
no second effect, so a processor that re-runs after a crash never charges twice. The simulator keeps its
ledger in SQLite, so that it outlives processor crashes and several processes can share it.

Simulated behaviour, by payment method and token prefix (the order generator relies on these):

| method | token | outcome |
|---|---|---|
| CARD | `tok_ok...` | approved, unless above `CARD_LIMIT_MINOR`: declined "amount above card limit" |
| CARD | `tok_declined...` | declined "card declined" |
| CARD | `tok_nofunds...` | declined "insufficient funds" |
| CARD | `tok_flaky...` | `TransientError` on the first 2 attempts of each idempotency key, then approved |
| CARD | `tok_down...` | always `TransientError` |
| CARD | `tok_norefund...` | approved as `tok_ok...`; its refunds are declined "card closed, refund refused" |
| CARD | `tok_refundslow...` | approved; the first 7 refund tries on the charge, any key, fail transiently |
| CARD | `tok_refunddown...` | approved; its refunds always fail transiently |
| GIFT_CARD | `gc_ok...` | approved |
| GIFT_CARD | `gc_empty...` | declined "gift card balance too low" |
| STORE_CREDIT | `sc_...` | approved |
| any | anything else, or a prefix of another method | declined "unknown token" |

A declined charge also says why in a machine-readable code (`ChargeResult.code`), as a real gateway's decline
codes do: `card-declined`, `insufficient-funds`, `over-card-limit`, `gift-card-empty`, `unknown-token`.

Voids and refunds of a `tok_flaky...` charge are flaky the same way, per idempotency key, and those of a
`tok_down...` charge always unavailable. A refund gives back at most what stays charged on its transaction
(approved, not voided, less earlier refunds); asked for more, it is declined. Store credit is always issued.
"""

from __future__ import annotations

import datetime
import hashlib
import sqlite3
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from processors.adapters.sqlite_file import SqliteFile
from processors.runtime.deferred import kept_for
from processors.runtime.retries import TransientError
from schemas.models import Money, PaymentMethod
from topology.settings import Settings, get_settings

ChargeStatus = Literal["approved", "declined"]
RefundStatus = Literal["approved", "declined"]

CARD_LIMIT_MINOR = 5_000_000
ALWAYS = 2**62


@dataclass(frozen=True)
class ChargeResult:
    """What the gateway answered to a charge; a declined charge has a transaction id too."""

    status: ChargeStatus
    transaction_id: str
    reason: str = ""
    code: str = ""  # why it was declined, machine-readable (see the module's doc)

    @property
    def approved(self) -> bool:
        return self.status == "approved"


@dataclass(frozen=True)
class RefundResult:
    """What the gateway answered to a refund; a declined refund has a transaction id too."""

    status: RefundStatus
    transaction_id: str
    reason: str = ""

    @property
    def approved(self) -> bool:
        return self.status == "approved"


class PaymentGateway(Protocol):
    """The calls the payments service makes; each is idempotent under its key.

    Raises `TransientError` when the gateway cannot answer now and the same call may succeed later.
    """

    def charge(
        self, idempotency_key: str, method: PaymentMethod, token: str, amount: Money, *, order_id: str
    ) -> ChargeResult: ...

    def void(self, idempotency_key: str, transaction_id: str) -> None:
        """Cancel an approved charge before it settles, so that nothing stays charged."""

    def refund(self, idempotency_key: str, transaction_id: str, amount: Money) -> RefundResult:
        """Give `amount` of a charge back to the tender it was taken from; never more than stays charged."""

    def credit(self, idempotency_key: str, order_id: str, amount: Money) -> str:
        """Issue store credit to the customer of `order_id`; returns the credit's transaction id."""


class IdempotencyKeyReused(ValueError):
    """A key already recorded for a different request: a bug in the caller, never retried."""


class UnknownTransaction(ValueError):
    """A void or refund of a transaction the gateway never approved."""


# The simulator's rules as data.


@dataclass(frozen=True)
class Verdict:
    status: Literal["approved", "declined", "unavailable"]
    reason: str = ""
    code: str = ""


APPROVE = Verdict("approved")
UNAVAILABLE = Verdict("unavailable", "simulated gateway outage")
CARD_DECLINED = Verdict("declined", "card declined", "card-declined")
INSUFFICIENT_FUNDS = Verdict("declined", "insufficient funds", "insufficient-funds")
OVER_CARD_LIMIT = Verdict("declined", "amount above card limit", "over-card-limit")
GIFT_CARD_EMPTY = Verdict("declined", "gift card balance too low", "gift-card-empty")
UNKNOWN_TOKEN = Verdict("declined", "unknown token", "unknown-token")
# The ledger keeps a charge's reason; its code follows from it when the recorded answer is given again.
DECLINE_CODES = {
    v.reason: v.code for v in (CARD_DECLINED, INSUFFICIENT_FUNDS, OVER_CARD_LIMIT, GIFT_CARD_EMPTY, UNKNOWN_TOKEN)
}


@dataclass(frozen=True)
class TokenRule:
    method: PaymentMethod
    prefix: str
    verdict: Verdict
    unavailable_attempts: int = 0  # how many first attempts of each idempotency key fail transiently
    refund: Verdict = APPROVE  # what refunds of its approved charges come to
    refund_unavailable_attempts: int = 0  # how many first refund attempts on one charge, any key, fail transiently


TOKEN_RULES: tuple[TokenRule, ...] = (
    TokenRule(PaymentMethod.CARD, "tok_ok", APPROVE),
    TokenRule(PaymentMethod.CARD, "tok_declined", CARD_DECLINED),
    TokenRule(PaymentMethod.CARD, "tok_nofunds", INSUFFICIENT_FUNDS),
    TokenRule(PaymentMethod.CARD, "tok_flaky", APPROVE, unavailable_attempts=2),
    TokenRule(PaymentMethod.CARD, "tok_down", APPROVE, unavailable_attempts=ALWAYS),
    TokenRule(PaymentMethod.CARD, "tok_norefund", APPROVE, refund=Verdict("declined", "card closed, refund refused")),
    TokenRule(PaymentMethod.CARD, "tok_refundslow", APPROVE, refund_unavailable_attempts=7),
    TokenRule(PaymentMethod.CARD, "tok_refunddown", APPROVE, refund_unavailable_attempts=ALWAYS),
    TokenRule(PaymentMethod.GIFT_CARD, "gc_ok", APPROVE),
    TokenRule(PaymentMethod.GIFT_CARD, "gc_empty", GIFT_CARD_EMPTY),
    TokenRule(PaymentMethod.STORE_CREDIT, "sc_", APPROVE),
)


def token_rule(method: PaymentMethod, token: str) -> TokenRule | None:
    return next((r for r in TOKEN_RULES if r.method == method and token.startswith(r.prefix)), None)


def judge_charge(method: PaymentMethod, token: str, amount_minor: int, attempt: int) -> Verdict:
    """The simulated answer to the `attempt`-th try (from 1) of one charge."""
    rule = token_rule(method, token)
    if rule is None:
        return UNKNOWN_TOKEN
    if attempt <= rule.unavailable_attempts:
        return UNAVAILABLE
    if rule.verdict == APPROVE and method == PaymentMethod.CARD and amount_minor > CARD_LIMIT_MINOR:
        return OVER_CARD_LIMIT
    return rule.verdict


def judge_void(method: PaymentMethod, token: str, attempt: int) -> Verdict:
    rule = token_rule(method, token)
    if rule is not None and attempt <= rule.unavailable_attempts:
        return UNAVAILABLE
    return APPROVE


def judge_refund(
    method: PaymentMethod, token: str, amount: Money, refundable: Money, attempt: int, charge_attempt: int
) -> Verdict:
    """The simulated answer to the `attempt`-th try of one refund (the `charge_attempt`-th refund try on its charge)
    of a charge of which `refundable` stays charged."""
    rule = token_rule(method, token)
    if rule is not None and (
        attempt <= rule.unavailable_attempts or charge_attempt <= rule.refund_unavailable_attempts
    ):
        return UNAVAILABLE
    if amount.currency != refundable.currency:
        return Verdict("declined", f"refund in {amount.currency} of a charge in {refundable.currency}")
    if amount.amount_minor <= 0:
        return Verdict("declined", "refund amount not positive")
    if amount.amount_minor > refundable.amount_minor:
        return Verdict("declined", f"refund above the {refundable.amount_minor} that stays charged")
    return rule.refund if rule is not None else APPROVE


def transaction_id_for(idempotency_key: str) -> str:
    """The same on every process, so that the ledger does not depend on who answered first."""
    return "sim_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def default_ledger_path(settings: Settings) -> Path:
    return settings.simulators_path / "payment-gateway.sqlite"


# Read-side views of the ledger, for tests and benchmarks.


@dataclass(frozen=True)
class ChargeRecord:
    idempotency_key: str
    order_id: str
    method: PaymentMethod
    token: str
    amount: Money
    transaction_id: str
    status: ChargeStatus
    reason: str
    voided: bool
    created_at: str


@dataclass(frozen=True)
class Effect:
    """Money the gateway moved: an approved charge, the void of one, a refund made, or store credit issued.

    `transaction_id` is the effect's own, except for a void, which names the charge it cancels.
    """

    kind: Literal["charge", "void", "refund", "credit"]
    idempotency_key: str
    order_id: str
    transaction_id: str
    amount: Money
    created_at: str


SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    idempotency_key TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    method TEXT NOT NULL,
    token TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    transaction_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('approved', 'declined')),
    reason TEXT NOT NULL DEFAULT '',
    voided INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS charges_by_order ON charges (order_id);
CREATE TABLE IF NOT EXISTS voids (
    idempotency_key TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL REFERENCES charges (transaction_id),
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    idempotency_key TEXT PRIMARY KEY,
    charge_transaction_id TEXT NOT NULL REFERENCES charges (transaction_id),
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    transaction_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('approved', 'declined')),
    reason TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_by_charge ON refunds (charge_transaction_id);
CREATE TABLE IF NOT EXISTS credits (
    idempotency_key TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    transaction_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS credits_by_order ON credits (order_id);
CREATE TABLE IF NOT EXISTS attempts (
    idempotency_key TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
"""

CHARGE_COLUMNS = (
    "idempotency_key, order_id, method, token, amount_minor, currency, transaction_id, status, reason, "
    "voided, created_at"
)
CHARGE_PLACES = ", ".join("?" * len(CHARGE_COLUMNS.split(",")))
# An approved charge, and the minor units that stay charged on it: its amount unless voided, less refunds made.
REFUNDABLE = """
SELECT c.method, c.token, c.currency,
       CASE WHEN c.voided THEN 0 ELSE c.amount_minor END
       - (SELECT COALESCE(SUM(r.amount_minor), 0) FROM refunds r
          WHERE r.charge_transaction_id = c.transaction_id AND r.status = 'approved')
FROM charges c WHERE c.transaction_id = ? AND c.status = 'approved'
"""


class SimulatedPaymentGateway:
    """A `PaymentGateway` whose ledger is a SQLite file that several processes may share.

    Each call is one short transaction, taken with the write lock from its start (`BEGIN IMMEDIATE`), so that
    two processes calling with one key at once see one effect. `deferred`, charges (nine calls in ten) read
    the file but keep their answers and attempts in memory, where later calls see them, until the runtime
    flushes them before its commit (`processors/runtime/deferred.py`) in one transaction; a charge's
    transaction id follows from its key, so a key another process flushed first is kept as it wrote it, and
    the two agree. A void, refund or credit flushes what is kept first, then writes as it goes.
    """

    def __init__(self, path: Path | None = None, *, deferred: bool = False) -> None:
        self.path = path if path is not None else default_ledger_path(get_settings())
        self._file = SqliteFile(self.path, SCHEMA)
        self._kept = kept_for("payment-gateway", self.path, lambda: _KeptCharges(self._file)) if deferred else None

    def charge(
        self, idempotency_key: str, method: PaymentMethod, token: str, amount: Money, *, order_id: str
    ) -> ChargeResult:
        with self._charging() as db:
            row = self._kept.charges.get(idempotency_key) if self._kept is not None else None
            if row is None:
                row = db.execute(
                    f"SELECT {CHARGE_COLUMNS} FROM charges WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone()
            if row is not None:
                recorded = _to_charge_record(row)
                request = (order_id, method, token, amount)
                if (recorded.order_id, recorded.method, recorded.token, recorded.amount) != request:
                    raise IdempotencyKeyReused(f"{idempotency_key} was recorded for another charge")
                code = DECLINE_CODES.get(recorded.reason, "")
                return ChargeResult(recorded.status, recorded.transaction_id, recorded.reason, code)
            attempt = self._count_attempt(db, idempotency_key)
            verdict = judge_charge(method, token, amount.amount_minor, attempt)
            if verdict.status != "unavailable":
                result = ChargeResult(verdict.status, transaction_id_for(idempotency_key), verdict.reason, verdict.code)
                charge = (idempotency_key, order_id, method.value, token, amount.amount_minor, amount.currency)
                row = (*charge, result.transaction_id, result.status, result.reason, False, _now())
                if self._kept is not None:
                    self._kept.charges[idempotency_key] = row
                else:
                    db.execute(f"INSERT INTO charges ({CHARGE_COLUMNS}) VALUES ({CHARGE_PLACES})", row)
                return result
        # Raised after the commit, so that the attempt is counted.
        raise TransientError(f"{verdict.reason} (attempt {attempt})")

    def void(self, idempotency_key: str, transaction_id: str) -> None:
        self.flush()
        with self._transaction() as db:
            done = db.execute(
                "SELECT transaction_id FROM voids WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if done is not None:
                if done[0] != transaction_id:
                    raise IdempotencyKeyReused(f"{idempotency_key} was recorded for the void of {done[0]}")
                return
            charge = db.execute(
                "SELECT method, token FROM charges WHERE transaction_id = ? AND status = 'approved'",
                (transaction_id,),
            ).fetchone()
            if charge is None:
                raise UnknownTransaction(f"no approved charge has transaction id {transaction_id}")
            attempt = _count_attempt(db, idempotency_key)
            verdict = judge_void(PaymentMethod(charge[0]), charge[1], attempt)
            if verdict.status != "unavailable":
                db.execute("UPDATE charges SET voided = 1 WHERE transaction_id = ?", (transaction_id,))
                db.execute(
                    "INSERT INTO voids (idempotency_key, transaction_id, created_at) VALUES (?, ?, ?)",
                    (idempotency_key, transaction_id, _now()),
                )
                return
        raise TransientError(f"{verdict.reason} (attempt {attempt})")

    def refund(self, idempotency_key: str, transaction_id: str, amount: Money) -> RefundResult:
        self.flush()
        with self._transaction() as db:
            done = db.execute(
                "SELECT charge_transaction_id, amount_minor, currency, transaction_id, status, reason"
                " FROM refunds WHERE idempotency_key = ?",
                (idempotency_key,),
            ).fetchone()
            if done is not None:
                charge_transaction_id, minor, currency, refund_id, status, reason = done
                if (charge_transaction_id, Money(amount_minor=minor, currency=currency)) != (transaction_id, amount):
                    raise IdempotencyKeyReused(f"{idempotency_key} was recorded for another refund")
                return RefundResult(cast(RefundStatus, status), str(refund_id), str(reason))
            charge = db.execute(REFUNDABLE, (transaction_id,)).fetchone()
            if charge is None:
                raise UnknownTransaction(f"no approved charge has transaction id {transaction_id}")
            method, token, currency, refundable_minor = charge
            refundable = Money(amount_minor=int(refundable_minor), currency=str(currency))
            attempt = _count_attempt(db, idempotency_key)
            charge_attempt = _count_attempt(db, f"refunds-of/{transaction_id}")
            verdict = judge_refund(PaymentMethod(method), str(token), amount, refundable, attempt, charge_attempt)
            if verdict.status != "unavailable":
                result = RefundResult(verdict.status, transaction_id_for(idempotency_key), verdict.reason)
                db.execute(
                    "INSERT INTO refunds (idempotency_key, charge_transaction_id, amount_minor, currency,"
                    " transaction_id, status, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        idempotency_key,
                        transaction_id,
                        amount.amount_minor,
                        amount.currency,
                        result.transaction_id,
                        result.status,
                        result.reason,
                        _now(),
                    ),
                )
                return result
        raise TransientError(f"{verdict.reason} (attempt {attempt})")

    def credit(self, idempotency_key: str, order_id: str, amount: Money) -> str:
        self.flush()
        with self._transaction() as db:
            done = db.execute(
                "SELECT order_id, amount_minor, currency, transaction_id FROM credits WHERE idempotency_key = ?",
                (idempotency_key,),
            ).fetchone()
            if done is not None:
                recorded_order, minor, currency, credit_id = done
                if (recorded_order, Money(amount_minor=minor, currency=currency)) != (order_id, amount):
                    raise IdempotencyKeyReused(f"{idempotency_key} was recorded for another credit")
                return str(credit_id)
            credit_id = transaction_id_for(idempotency_key)
            db.execute(
                "INSERT INTO credits (idempotency_key, order_id, amount_minor, currency, transaction_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (idempotency_key, order_id, amount.amount_minor, amount.currency, credit_id, _now()),
            )
            return credit_id

    # Read helpers for tests and benchmarks.

    def charges(self, order_id: str | None = None) -> list[ChargeRecord]:
        """Every recorded charge answer, approved or declined, oldest first."""
        where, params = _by_order(order_id)
        with self._connection() as db:
            cursor = db.execute(f"SELECT {CHARGE_COLUMNS} FROM charges {where} ORDER BY created_at", params)
            return [_to_charge_record(row) for row in cursor.fetchall()]

    def count_charges(self, order_id: str | None = None, status: ChargeStatus | None = None) -> int:
        """Recorded charge answers (approved and declined unless `status` says which); one per key."""
        return sum(1 for c in self.charges(order_id) if status is None or c.status == status)

    def count_voids(self, order_id: str | None = None) -> int:
        return sum(1 for e in self.effects(order_id) if e.kind == "void")

    def approved_total(self, order_id: str) -> int:
        """Minor units that stay charged for the order: approved minus voided."""
        return sum(c.amount.amount_minor for c in self.charges(order_id) if c.status == "approved" and not c.voided)

    def refunded_total(self, order_id: str) -> int:
        """Minor units refunded to the order's tenders (declined refunds give back nothing)."""
        return sum(e.amount.amount_minor for e in self.effects(order_id) if e.kind == "refund")

    def credited_total(self, order_id: str) -> int:
        """Minor units issued as store credit for the order."""
        return sum(e.amount.amount_minor for e in self.effects(order_id) if e.kind == "credit")

    def out_of_pocket(self, order_id: str) -> int:
        """Money charged for the order and not returned, in minor units: approved charges that were not voided,
        less refunds to the tenders, less store credit issued for the order. Store credit counts as returned."""
        return self.approved_total(order_id) - self.refunded_total(order_id) - self.credited_total(order_id)

    def attempts(self, idempotency_key: str) -> int:
        """How many times a call with this key reached the gateway without a recorded answer to return."""
        with self._connection() as db:
            row = db.execute("SELECT count FROM attempts WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        return 0 if row is None else int(row[0])

    def effects(self, order_id: str | None = None) -> list[Effect]:
        """Money moved, oldest first: approved charges, voids, refunds made and credits, one per idempotency key."""
        where, params = _by_order(order_id, column="c.order_id")
        with self._connection() as db:
            rows = db.execute(
                f"""
                SELECT 'charge', c.idempotency_key, c.order_id, c.transaction_id, c.amount_minor, c.currency,
                       c.created_at
                FROM charges c {where} {"AND" if where else "WHERE"} c.status = 'approved'
                UNION ALL
                SELECT 'void', v.idempotency_key, c.order_id, v.transaction_id, c.amount_minor, c.currency,
                       v.created_at
                FROM voids v JOIN charges c ON c.transaction_id = v.transaction_id {where}
                UNION ALL
                SELECT 'refund', r.idempotency_key, c.order_id, r.transaction_id, r.amount_minor, r.currency,
                       r.created_at
                FROM refunds r JOIN charges c ON c.transaction_id = r.charge_transaction_id
                {where} {"AND" if where else "WHERE"} r.status = 'approved'
                UNION ALL
                SELECT 'credit', c.idempotency_key, c.order_id, c.transaction_id, c.amount_minor, c.currency,
                       c.created_at
                FROM credits c {where}
                ORDER BY 7, 1
                """,
                params * 4,
            ).fetchall()
        return [
            Effect(kind, key, order, txn, Money(amount_minor=minor, currency=currency), created_at)
            for kind, key, order, txn, minor, currency, created_at in rows
        ]

    def flush(self) -> None:
        """Write the charges and attempts this process kept since the last flush, in one transaction (`deferred`)."""
        if self._kept is not None:
            self._kept.flush()

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._file.connection()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._file.transaction()

    def _charging(self) -> AbstractContextManager[sqlite3.Connection]:
        """Where a charge reads and writes: deferred, the file without its write lock (writes are kept)."""
        return self._file.connection() if self._kept is not None else self._file.transaction()

    def _count_attempt(self, db: sqlite3.Connection, idempotency_key: str) -> int:
        if self._kept is None:
            return _count_attempt(db, idempotency_key)
        row = db.execute("SELECT count FROM attempts WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        self._kept.attempts[idempotency_key] += 1
        return (0 if row is None else int(row[0])) + self._kept.attempts[idempotency_key]


@dataclass(eq=False)  # registered by identity (deferred.defer)
class _KeptCharges:
    """What deferred charges on one ledger file did in this process since the last flush."""

    file: SqliteFile
    charges: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Rows of `charges`, in `CHARGE_COLUMNS`' order, by idempotency key."""
    attempts: Counter[str] = field(default_factory=Counter)

    def flush(self) -> None:
        if not (self.charges or self.attempts):
            return
        with self.file.transaction() as db:
            db.executemany(
                f"INSERT OR IGNORE INTO charges ({CHARGE_COLUMNS}) VALUES ({CHARGE_PLACES})", self.charges.values()
            )
            db.executemany(
                "INSERT INTO attempts (idempotency_key, count) VALUES (?, ?)"
                " ON CONFLICT (idempotency_key) DO UPDATE SET count = count + excluded.count",
                self.attempts.items(),
            )
        self.charges.clear()
        self.attempts.clear()


def _count_attempt(db: sqlite3.Connection, idempotency_key: str) -> int:
    row = db.execute(
        "INSERT INTO attempts (idempotency_key, count) VALUES (?, 1)"
        " ON CONFLICT (idempotency_key) DO UPDATE SET count = count + 1 RETURNING count",
        (idempotency_key,),
    ).fetchone()
    return int(row[0])


def _to_charge_record(row: tuple[Any, ...]) -> ChargeRecord:
    key, order_id, method, token, minor, currency, txn, status, reason, voided, created_at = row
    return ChargeRecord(
        idempotency_key=str(key),
        order_id=str(order_id),
        method=PaymentMethod(method),
        token=str(token),
        amount=Money(amount_minor=int(minor), currency=str(currency)),
        transaction_id=str(txn),
        status=cast(ChargeStatus, status),
        reason=str(reason),
        voided=bool(voided),
        created_at=str(created_at),
    )


def _by_order(order_id: str | None, column: str = "order_id") -> tuple[str, tuple[str, ...]]:
    return ("", ()) if order_id is None else (f"WHERE {column} = ?", (order_id,))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()
