"""One processor's part of a key's state, when several processors keep theirs in one store.

Processors run together (docs/adr/0002-co-location.md) share one state per order, so that an order's changes
leave in one changelog and one transaction; each reads and writes only the entries under its own prefix, as it
would in a store of its own.
"""

from __future__ import annotations

import datetime
from typing import Any

from quixstreams import State


class ScopedState(State):
    def __init__(self, state: State, scope: str) -> None:
        self._state = state
        self._prefix = f"{scope}/"

    def get(self, key: Any, default: Any = None) -> Any:
        return self._state.get(self._prefix + str(key), default)

    def get_bytes(self, key: Any, default: Any = None) -> Any:
        return self._state.get_bytes(self._prefix + str(key), default)

    def set(self, key: Any, value: Any, ttl: datetime.timedelta | None = None) -> None:
        self._state.set(self._prefix + str(key), value, ttl)

    def set_bytes(self, key: Any, value: bytes, ttl: datetime.timedelta | None = None) -> None:
        self._state.set_bytes(self._prefix + str(key), value, ttl)

    def delete(self, key: Any) -> None:
        self._state.delete(self._prefix + str(key))

    def exists(self, key: Any) -> bool:
        return self._state.exists(self._prefix + str(key))
