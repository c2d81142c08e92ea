"""Effects outside Kafka written once per commit instead of once per call.

An adapter whose every call is idempotent under a key (the simulated gateway, warehouse, carriers and email)
may keep what its calls did in memory, answer later calls from it, and write it out in one go. It registers
with `defer`; the runtime calls `flush_deferred` before every Kafka commit (`processors/runtime/commits.py`),
so what a transaction publishes has happened outside before the transaction commits. A crash before the flush
loses calls whose messages are processed again after the restart, with the same keys; a crash after it and
before the commit leaves effects that the repeated calls find under their keys. Either way there is one
effect per key.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar, cast

from processors.runtime.outages import through_outages
from processors.runtime.retries import RetryPolicy

# Flushing runs inside the commit, under the Kafka transaction's timeout: a ledger that stays unwritable
# longer stops the process, whose supervisor restarts it into the uncommitted messages.
FLUSH_THROUGH_OUTAGES = RetryPolicy(attempts=5, first_delay_s=0.25, max_delay_s=4.0)


class DeferredWrites(Protocol):
    def flush(self) -> None:
        """Write out what the calls since the last flush did."""


Kept = TypeVar("Kept", bound=DeferredWrites)

_registered: weakref.WeakSet[DeferredWrites] = weakref.WeakSet()
_kept: weakref.WeakValueDictionary[tuple[str, str], DeferredWrites] = weakref.WeakValueDictionary()


def defer(writes: DeferredWrites) -> None:
    """Have `writes` flushed before every commit of this process."""
    _registered.add(writes)


def kept_for(kind: str, path: Path, make: Callable[[], Kept]) -> Kept:
    """The one record of deferred writes of `kind` to the file at `path` in this process, made by `make` and
    registered with `defer` the first time: every adapter on one file sees what the others in its process
    keep, as it sees what they wrote (a processor builds an adapter per stream, and a void must find the
    charge another stream kept)."""
    key = (kind, str(path.resolve()))
    kept = _kept.get(key)
    if kept is None:
        kept = _kept[key] = make()
        defer(kept)
    return cast(Kept, kept)


def flush_deferred(policy: RetryPolicy = FLUSH_THROUGH_OUTAGES) -> None:
    """Flush every registered adapter, pausing through an outage (a locked or full disk) while `policy` lasts."""
    for writes in list(_registered):
        through_outages(writes.flush, "writing deferred effects", policy)
