"""An order's state when several processors keep theirs in one store: one entry per order, each processor's
part of it under a prefix of its own.

Processors run together (docs/adr/0002-co-location.md) share one state per order. The whole of it is one
entry of the store, read once when a message comes and written back once when the message has gone through
every processor it reaches, so that a changed order costs one changelog record per commit, not one per
entry of every processor.
"""

from __future__ import annotations

import datetime
from typing import Any

from pydantic import BaseModel
from quixstreams import State

ORDER_ENTRY = "order"
"""The one key of the store under which an order's state lives."""


class SharedState:
    """The entries of every processor for the current order until `save`: plain JSON values, and models
    (`state.StateSlot`) kept as objects, dumped to JSON when saved."""

    def __init__(self, state: State) -> None:
        self._state = state
        self.values: dict[str, Any] = dict(state.get(ORDER_ENTRY) or {})
        self._changed = False

    def scope(self, name: str) -> ScopedState:
        """The part of processor `name` (one of its streams)."""
        return ScopedState(self, name)

    def save(self) -> None:
        """Write the order's entries back to the store if any changed; none left deletes the order's entry."""
        if not self._changed:
            return
        if self.values:
            self._state.set(ORDER_ENTRY, {key: _json(value) for key, value in self.values.items()})
        else:
            self._state.delete(ORDER_ENTRY)
        self._changed = False

    def _set(self, key: str, value: Any) -> None:
        self.values[key] = value
        self._changed = True

    def _delete(self, key: str) -> None:
        if key in self.values:
            del self.values[key]
            self._changed = True


class ScopedState(State):
    """One processor's part of a `SharedState`, as the `State` its handlers know."""

    keeps_objects = True

    def __init__(self, shared: SharedState, scope: str) -> None:
        self._shared = shared
        self._prefix = f"{scope}/"

    def get(self, key: Any, default: Any = None) -> Any:
        return self._shared.values.get(self._prefix + str(key), default)

    def get_bytes(self, key: Any, default: Any = None) -> Any:
        raise TypeError("an order's shared state keeps JSON values only")

    def set(self, key: Any, value: Any, ttl: datetime.timedelta | None = None) -> None:
        self._shared._set(self._prefix + str(key), value)

    def set_bytes(self, key: Any, value: bytes, ttl: datetime.timedelta | None = None) -> None:
        raise TypeError("an order's shared state keeps JSON values only")

    def delete(self, key: Any) -> None:
        self._shared._delete(self._prefix + str(key))

    def exists(self, key: Any) -> bool:
        return self._prefix + str(key) in self._shared.values


def _json(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
