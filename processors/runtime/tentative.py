"""A key's state as a handler sees it while its message is under way: writes count only once the message did.

A handler writes to its key's state as it decides; if anything later fails for that message (its decision,
encoding what it emits, a size check), the message is dead-lettered and must leave nothing behind, or a
redrive would meet a state that already took it into account. `TentativeState` keeps the writes beside the
store: reads see them, and `commit` hands them to the store once the whole message has succeeded.
"""

from __future__ import annotations

import datetime
from typing import Any

from quixstreams import State

_SET, _SET_BYTES, _DELETE = "set", "set_bytes", "delete"


class TentativeState(State):
    def __init__(self, state: State) -> None:
        self._state = state
        self._writes: dict[Any, tuple[str, Any, datetime.timedelta | None]] = {}

    @property
    def keeps_objects(self) -> bool:
        return bool(getattr(self._state, "keeps_objects", False))

    def get(self, key: Any, default: Any = None) -> Any:
        write = self._writes.get(key)
        if write is None:
            return self._state.get(key, default)
        kind, value, _ = write
        return default if kind == _DELETE else value

    def get_bytes(self, key: Any, default: Any = None) -> Any:
        write = self._writes.get(key)
        if write is None:
            return self._state.get_bytes(key, default)
        kind, value, _ = write
        return default if kind == _DELETE else value

    def set(self, key: Any, value: Any, ttl: datetime.timedelta | None = None) -> None:
        self._writes[key] = (_SET, value, ttl)

    def set_bytes(self, key: Any, value: bytes, ttl: datetime.timedelta | None = None) -> None:
        self._writes[key] = (_SET_BYTES, value, ttl)

    def delete(self, key: Any) -> None:
        self._writes[key] = (_DELETE, None, None)

    def exists(self, key: Any) -> bool:
        write = self._writes.get(key)
        if write is None:
            return self._state.exists(key)
        return write[0] != _DELETE

    def commit(self) -> None:
        """Apply the writes to the store, in the order the keys were first written."""
        for key, (kind, value, ttl) in self._writes.items():
            if kind == _SET:
                self._state.set(key, value, ttl)
            elif kind == _SET_BYTES:
                self._state.set_bytes(key, value, ttl)
            else:
                self._state.delete(key)
        self._writes.clear()
