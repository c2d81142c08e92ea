"""The warehouse, customs and the carriers behind small interfaces, and simulators of them on one ledger.

Every call carries an idempotency key: repeated with the same key, it returns the recorded result and has
no second effect, so an activity that re-runs after a crash never picks, packs or ships twice. Undoing
something already undone (under another key) is harmless too. The simulators share one SQLite ledger of
effects, which outlives processor crashes, can be shared by processes, and is what tests read.

Simulated behaviour, deterministic from the data (the special SKUs are in `processors.adapters.catalog`):

- `create_label` raises `CarrierRefused` when the carrier cannot take the packed parcel (the rules are in
  `processors.adapters.carriers`): `SKU-SKI-01` packed is 123 cm long, over parcelpost's 120 cm, and no
  carrier takes `SKU-ANVIL-01` (1.2 t);
- `unpack` raises `CannotUndo` for a box holding `SKU-CRATE-01`, which is sealed;
- `declare` raises `TransientError` on the first attempt of each idempotency key for a destination in
  `CH`, then declares;
- `wrap` needs a packed box, `confirm_delivery` a label that is not voided, and every undo something done.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from processors.adapters.carriers import CARRIERS_BY_NAME, CarrierRefused, PackingKind, Parcel
from processors.adapters.sqlite_file import SqliteFile
from processors.runtime.deferred import kept_for
from processors.runtime.retries import TransientError
from schemas.models import FulfillmentRequest, Money
from topology.settings import Settings, get_settings

Items = Mapping[str, int]
"""SKU -> units."""


def items_of(request: FulfillmentRequest) -> dict[str, int]:
    """The request's units per SKU (a SKU may be on several lines)."""
    units: Counter[str] = Counter()
    for line in request.lines:
        units[line.sku] += line.quantity
    return dict(units)


def items_text(items: Items) -> str:
    """`SKU-A:2,SKU-B:1`, sorted: how items travel in flat string maps (slip logs, ledger details)."""
    return ",".join(f"{sku}:{units}" for sku, units in sorted(items.items()))


def items_from_text(text: str) -> dict[str, int]:
    return {sku: int(units) for sku, units in (pair.rsplit(":", 1) for pair in text.split(",") if pair)}


# --- the interfaces -----------------------------------------------------------------------------------


class Warehouse(Protocol):
    """Picking, packing and wrapping; each call is idempotent under its key."""

    def pick(self, idempotency_key: str, order_id: str, items: Items) -> str:
        """Take the items off the shelves: the pick's id."""
        ...

    def return_to_shelf(self, idempotency_key: str, pick_id: str, items: Items) -> None: ...

    def pack(self, idempotency_key: str, order_id: str, kind: PackingKind, items: Items) -> str:
        """Put the items in a box of the kind: the box's id."""
        ...

    def unpack(self, idempotency_key: str, box_id: str) -> None:
        """Take the box apart. Raises `CannotUndo` when it cannot be opened."""
        ...

    def wrap(self, idempotency_key: str, order_id: str, box_id: str) -> str:
        """Gift-wrap the box: the wrap's id."""
        ...

    def unwrap(self, idempotency_key: str, wrap_id: str) -> None: ...


class Customs(Protocol):
    """Export declarations; each call is idempotent under its key. Raises `TransientError` when the
    service cannot answer now."""

    def declare(self, idempotency_key: str, order_id: str, origin: str, destination: str, value: Money) -> str:
        """Declare goods of the value for export: the declaration's id."""
        ...

    def cancel_declaration(self, idempotency_key: str, declaration_id: str) -> None: ...


class IdempotencyKeyReused(ValueError):
    """A key already recorded for a different call: a bug in the caller, never retried."""


class UnknownEffect(ValueError):
    """An undo, wrap or delivery of something the ledger never recorded."""


class CannotUndo(Exception):
    """The effect cannot be undone (a sealed box cannot be unpacked)."""


# --- the simulators' rules as data --------------------------------------------------------------------

SEALED_SKUS: frozenset[str] = frozenset({"SKU-CRATE-01"})

# Destination -> how many first attempts of each idempotency key the customs service fails.
CUSTOMS_UNAVAILABLE_ATTEMPTS: Mapping[str, int] = {"CH": 1}

# --- the ledger ---------------------------------------------------------------------------------------

DoKind = Literal["pick", "pack", "wrap", "declare", "label", "confirm-delivery"]
UndoKind = Literal["return-to-shelf", "unpack", "unwrap", "cancel-declaration", "void-label"]
EffectKind = DoKind | UndoKind

UNDOES: Mapping[UndoKind, DoKind] = {
    "return-to-shelf": "pick",
    "unpack": "pack",
    "unwrap": "wrap",
    "cancel-declaration": "declare",
    "void-label": "label",
}
UNDONE_BY: Mapping[EffectKind, UndoKind] = {done: undo for undo, done in UNDOES.items()}


@dataclass(frozen=True)
class Effect:
    """One thing done in the outside world, or undone: one per idempotency key."""

    kind: EffectKind
    idempotency_key: str
    order_id: str
    subject: str
    """What the effect made or undid: a pick, box, wrap, declaration or label id."""
    detail: dict[str, str]
    """The call's arguments."""
    created_at: str


def default_fulfillment_ledger(settings: Settings) -> Path:
    return settings.simulators_path / "fulfillment.sqlite"


SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    seq INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    order_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS effects_by_order ON effects (order_id);
CREATE INDEX IF NOT EXISTS effects_by_subject ON effects (subject);
CREATE TABLE IF NOT EXISTS attempts (
    idempotency_key TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
"""

EFFECT_COLUMNS = "kind, idempotency_key, order_id, subject, detail, created_at"


class FulfillmentLedger:
    """The effects of every fulfillment simulator, in a SQLite file that several processes may share.

    Each call is one short transaction, taken with the write lock from its start (`BEGIN IMMEDIATE`), so
    that two processes calling with one key at once see one effect. `deferred`, calls read the file but keep
    what they do in memory, where later calls see it, until the runtime flushes it before its commit
    (`processors/runtime/deferred.py`) in one transaction; an effect's subject follows from its key, so a key
    another process flushed first is kept as it wrote it, and the two agree.
    """

    def __init__(self, path: Path, *, deferred: bool = False) -> None:
        self.path = path
        self._file = SqliteFile(path, SCHEMA)
        self._kept = kept_for("fulfillment", path, lambda: _KeptEffects(self._file)) if deferred else None

    def do(
        self,
        db: sqlite3.Connection,
        kind: DoKind,
        idempotency_key: str,
        order_id: str,
        detail: dict[str, str],
        *,
        id_prefix: str,
    ) -> Effect:
        """Record a new effect, its subject's id derived from the key. Call in `transaction`, after `recorded`."""
        subject = f"{id_prefix}-{_digest(idempotency_key)}"
        return self._insert(db, kind, idempotency_key, order_id, subject, detail)

    def undo(self, db: sqlite3.Connection, done: Effect, idempotency_key: str, detail: dict[str, str]) -> None:
        """Record the undoing of `done`, unless it was undone already. Call in `transaction`, after `recorded`."""
        if not self.is_undone(db, done):
            self._insert(db, UNDONE_BY[done.kind], idempotency_key, done.order_id, done.subject, detail)

    def recorded(
        self, db: sqlite3.Connection, kind: EffectKind, idempotency_key: str, detail: dict[str, str]
    ) -> Effect | None:
        """The effect already recorded under the key, if any; raises when it was for another call."""
        effect = self._find(db, "idempotency_key = ?", (idempotency_key,))
        if effect is None and self._kept is not None:
            effect = self._kept.effects.get(idempotency_key)
        if effect is not None and (effect.kind, effect.detail) != (kind, detail):
            raise IdempotencyKeyReused(f"{idempotency_key} was recorded for {effect.kind} {effect.detail}")
        return effect

    def original(self, db: sqlite3.Connection, kind: DoKind, subject: str) -> Effect:
        effect = self._by_subject(db, kind, subject)
        if effect is None:
            raise UnknownEffect(f"no {kind} {subject} is recorded")
        return effect

    def is_undone(self, db: sqlite3.Connection, effect: Effect) -> bool:
        return self._by_subject(db, UNDONE_BY[effect.kind], effect.subject) is not None

    def count_attempt(self, db: sqlite3.Connection, idempotency_key: str) -> int:
        if self._kept is not None:
            row = db.execute("SELECT count FROM attempts WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
            self._kept.attempts[idempotency_key] += 1
            return (0 if row is None else int(row[0])) + self._kept.attempts[idempotency_key]
        row = db.execute(
            "INSERT INTO attempts (idempotency_key, count) VALUES (?, 1)"
            " ON CONFLICT (idempotency_key) DO UPDATE SET count = count + 1 RETURNING count",
            (idempotency_key,),
        ).fetchone()
        return int(row[0])

    # Read helpers for tests.

    def effects(self, order_id: str | None = None) -> list[Effect]:
        """Everything done and undone, oldest first, one per idempotency key."""
        where, params = ("", ()) if order_id is None else ("WHERE order_id = ?", (order_id,))
        with self._connection() as db:
            rows = db.execute(f"SELECT {EFFECT_COLUMNS} FROM effects {where} ORDER BY seq", params).fetchall()
        return [_to_effect(row) for row in rows]

    def count(self, kind: EffectKind, order_id: str | None = None) -> int:
        return sum(1 for effect in self.effects(order_id) if effect.kind == kind)

    def outstanding(self, order_id: str | None = None) -> list[Effect]:
        """Effects that could be undone and are not: a fully compensated order leaves none."""
        with self._connection() as db:
            return [
                effect
                for effect in self.effects(order_id)
                if effect.kind in UNDONE_BY and not self.is_undone(db, effect)
            ]

    def attempts(self, idempotency_key: str) -> int:
        """How many times a call with this key reached a simulator without a recorded answer to return."""
        with self._connection() as db:
            row = db.execute("SELECT count FROM attempts WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        return 0 if row is None else int(row[0])

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """Where a call reads and writes: deferred, the file without its write lock (writes are kept)."""
        return self._file.connection() if self._kept is not None else self._file.transaction()

    def flush(self) -> None:
        """Write what this process's calls kept since the last flush, in one transaction (`deferred`)."""
        if self._kept is not None:
            self._kept.flush()

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._file.connection()

    def _find(self, db: sqlite3.Connection, where: str, params: tuple[str, ...]) -> Effect | None:
        row = db.execute(f"SELECT {EFFECT_COLUMNS} FROM effects WHERE {where} ORDER BY seq LIMIT 1", params).fetchone()
        return None if row is None else _to_effect(row)

    def _insert(
        self,
        db: sqlite3.Connection,
        kind: EffectKind,
        idempotency_key: str,
        order_id: str,
        subject: str,
        detail: dict[str, str],
    ) -> Effect:
        effect = Effect(kind, idempotency_key, order_id, subject, detail, _now())
        if self._kept is not None:
            self._kept.effects[idempotency_key] = effect
            self._kept.by_subject.setdefault((kind, subject), effect)
        else:
            db.execute(f"INSERT INTO effects ({EFFECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", _row(effect))
        return effect

    def _by_subject(self, db: sqlite3.Connection, kind: EffectKind, subject: str) -> Effect | None:
        """The first effect of `kind` on `subject`: written ones are older than kept ones."""
        effect = self._find(db, "kind = ? AND subject = ?", (kind, subject))
        if effect is None and self._kept is not None:
            effect = self._kept.by_subject.get((kind, subject))
        return effect


@dataclass(eq=False)  # registered by identity (deferred.defer)
class _KeptEffects:
    """What deferred calls on one ledger file did in this process since the last flush."""

    file: SqliteFile
    effects: dict[str, Effect] = field(default_factory=dict)
    by_subject: dict[tuple[str, str], Effect] = field(default_factory=dict)
    attempts: Counter[str] = field(default_factory=Counter)

    def flush(self) -> None:
        if not (self.effects or self.attempts):
            return
        with self.file.transaction() as db:
            db.executemany(
                f"INSERT OR IGNORE INTO effects ({EFFECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                [_row(effect) for effect in self.effects.values()],
            )
            db.executemany(
                "INSERT INTO attempts (idempotency_key, count) VALUES (?, ?)"
                " ON CONFLICT (idempotency_key) DO UPDATE SET count = count + excluded.count",
                self.attempts.items(),
            )
        self.effects.clear()
        self.by_subject.clear()
        self.attempts.clear()


# --- the simulators -----------------------------------------------------------------------------------


class SimulatedWarehouse:
    """A `Warehouse` on the ledger."""

    def __init__(self, ledger: FulfillmentLedger) -> None:
        self.ledger = ledger

    def pick(self, idempotency_key: str, order_id: str, items: Items) -> str:
        detail = {"items": items_text(items)}
        with self.ledger.transaction() as db:
            effect = self.ledger.recorded(db, "pick", idempotency_key, detail)
            return (effect or self.ledger.do(db, "pick", idempotency_key, order_id, detail, id_prefix="pick")).subject

    def return_to_shelf(self, idempotency_key: str, pick_id: str, items: Items) -> None:
        detail = {"pick_id": pick_id, "items": items_text(items)}
        with self.ledger.transaction() as db:
            if self.ledger.recorded(db, "return-to-shelf", idempotency_key, detail) is not None:
                return
            picked = self.ledger.original(db, "pick", pick_id)
            if picked.detail["items"] != detail["items"]:
                raise ValueError(f"{pick_id} picked {picked.detail['items']}, not {detail['items']}")
            self.ledger.undo(db, picked, idempotency_key, detail)

    def pack(self, idempotency_key: str, order_id: str, kind: PackingKind, items: Items) -> str:
        detail = {"kind": kind, "items": items_text(items)}
        with self.ledger.transaction() as db:
            effect = self.ledger.recorded(db, "pack", idempotency_key, detail)
            return (effect or self.ledger.do(db, "pack", idempotency_key, order_id, detail, id_prefix="box")).subject

    def unpack(self, idempotency_key: str, box_id: str) -> None:
        detail = {"box_id": box_id}
        with self.ledger.transaction() as db:
            if self.ledger.recorded(db, "unpack", idempotency_key, detail) is not None:
                return
            packed = self.ledger.original(db, "pack", box_id)
            sealed = sorted(SEALED_SKUS & items_from_text(packed.detail["items"]).keys())
            if sealed:
                raise CannotUndo(f"box {box_id} holds {', '.join(sealed)}, which is sealed: it cannot be unpacked")
            self.ledger.undo(db, packed, idempotency_key, detail)

    def wrap(self, idempotency_key: str, order_id: str, box_id: str) -> str:
        detail = {"box_id": box_id}
        with self.ledger.transaction() as db:
            effect = self.ledger.recorded(db, "wrap", idempotency_key, detail)
            if effect is not None:
                return effect.subject
            if self.ledger.is_undone(db, self.ledger.original(db, "pack", box_id)):
                raise UnknownEffect(f"box {box_id} was unpacked")
            return self.ledger.do(db, "wrap", idempotency_key, order_id, detail, id_prefix="wrap").subject

    def unwrap(self, idempotency_key: str, wrap_id: str) -> None:
        detail = {"wrap_id": wrap_id}
        with self.ledger.transaction() as db:
            if self.ledger.recorded(db, "unwrap", idempotency_key, detail) is None:
                self.ledger.undo(db, self.ledger.original(db, "wrap", wrap_id), idempotency_key, detail)


class SimulatedCustoms:
    """A `Customs` service on the ledger."""

    def __init__(self, ledger: FulfillmentLedger) -> None:
        self.ledger = ledger

    def declare(self, idempotency_key: str, order_id: str, origin: str, destination: str, value: Money) -> str:
        detail = {
            "origin": origin,
            "destination": destination,
            "value_minor": str(value.amount_minor),
            "currency": value.currency,
        }
        with self.ledger.transaction() as db:
            effect = self.ledger.recorded(db, "declare", idempotency_key, detail)
            if effect is not None:
                return effect.subject
            attempt = self.ledger.count_attempt(db, idempotency_key)
            if attempt > CUSTOMS_UNAVAILABLE_ATTEMPTS.get(destination, 0):
                return self.ledger.do(db, "declare", idempotency_key, order_id, detail, id_prefix="decl").subject
        # Raised after the commit, so that the attempt is counted.
        raise TransientError(f"customs service for {destination} unavailable (attempt {attempt})")

    def cancel_declaration(self, idempotency_key: str, declaration_id: str) -> None:
        detail = {"declaration_id": declaration_id}
        with self.ledger.transaction() as db:
            if self.ledger.recorded(db, "cancel-declaration", idempotency_key, detail) is None:
                declared = self.ledger.original(db, "declare", declaration_id)
                self.ledger.undo(db, declared, idempotency_key, detail)


class SimulatedCarriers:
    """The `Carriers` on the ledger; each carrier takes what its `CarrierSpec` allows."""

    def __init__(self, ledger: FulfillmentLedger) -> None:
        self.ledger = ledger

    def create_label(self, idempotency_key: str, carrier: str, parcel: Parcel, country: str, *, order_id: str) -> str:
        detail = {
            "carrier": carrier,
            "country": country,
            "weight_g": str(parcel.weight_g),
            "sides_cm": f"{parcel.longest_cm}x{parcel.middle_cm}x{parcel.shortest_cm}",
        }
        with self.ledger.transaction() as db:
            effect = self.ledger.recorded(db, "label", idempotency_key, detail)
            if effect is not None:
                return effect.subject
            spec = CARRIERS_BY_NAME.get(carrier)
            if spec is None:
                raise CarrierRefused(f"there is no carrier named {carrier!r}")
            refusal = spec.refusal(parcel, country)
            if refusal is not None:
                raise CarrierRefused(refusal)
            return self.ledger.do(db, "label", idempotency_key, order_id, detail, id_prefix=carrier).subject

    def void_label(self, idempotency_key: str, carrier: str, label_id: str) -> None:
        detail = {"carrier": carrier, "label_id": label_id}
        with self.ledger.transaction() as db:
            if self.ledger.recorded(db, "void-label", idempotency_key, detail) is None:
                self.ledger.undo(db, self._label(db, carrier, label_id), idempotency_key, detail)

    def confirm_delivery(
        self, idempotency_key: str, carrier: str, label_id: str, *, signature_required: bool, recipient: str
    ) -> str | None:
        detail = {
            "carrier": carrier,
            "label_id": label_id,
            "signature": "required" if signature_required else "none",
            "recipient": recipient,
        }
        with self.ledger.transaction() as db:
            if self.ledger.recorded(db, "confirm-delivery", idempotency_key, detail) is None:
                label = self._label(db, carrier, label_id)
                if self.ledger.is_undone(db, label):
                    raise UnknownEffect(f"label {label_id} was voided")
                self.ledger.do(db, "confirm-delivery", idempotency_key, label.order_id, detail, id_prefix="pod")
        return recipient if signature_required else None

    def _label(self, db: sqlite3.Connection, carrier: str, label_id: str) -> Effect:
        label = self.ledger.original(db, "label", label_id)
        if label.detail["carrier"] != carrier:
            raise UnknownEffect(f"label {label_id} is {label.detail['carrier']}'s, not {carrier}'s")
        return label


@dataclass(frozen=True)
class FulfillmentSimulators:
    """The warehouse, customs and carriers, sharing one ledger."""

    ledger: FulfillmentLedger
    warehouse: SimulatedWarehouse
    customs: SimulatedCustoms
    carriers: SimulatedCarriers

    @classmethod
    def open(cls, path: Path | None = None, *, deferred: bool = False) -> FulfillmentSimulators:
        """On the ledger at `path`, by default `default_fulfillment_ledger` of the settings."""
        ledger = FulfillmentLedger(
            path if path is not None else default_fulfillment_ledger(get_settings()), deferred=deferred
        )
        return cls(ledger, SimulatedWarehouse(ledger), SimulatedCustoms(ledger), SimulatedCarriers(ledger))


def _digest(idempotency_key: str) -> str:
    """The same on every process, so that ids do not depend on who answered first."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]


def _row(effect: Effect) -> tuple[str, ...]:
    """An effect as the columns `EFFECT_COLUMNS` name."""
    detail = json.dumps(effect.detail, sort_keys=True)
    return (effect.kind, effect.idempotency_key, effect.order_id, effect.subject, detail, effect.created_at)


def _to_effect(row: tuple[Any, ...]) -> Effect:
    kind, key, order_id, subject, detail, created_at = row
    return Effect(kind, str(key), str(order_id), str(subject), json.loads(detail), str(created_at))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()
