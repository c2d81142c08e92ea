"""A key's state in memory, as a Quix Streams `State`: for the in-process runner and the unit tests."""

from __future__ import annotations

import datetime
from typing import Any

from quixstreams import State
from quixstreams.utils.json import dumps, loads


class MemoryState(State):
    """The state of one key. Values go through JSON on the way in, with the encoder a Quix store uses, so
    that what a handler reads back is what it would read from a changelog, at the same cost."""

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: Any, value: Any, ttl: datetime.timedelta | None = None) -> None:
        self.values[key] = loads(dumps(value))

    def set_bytes(self, key: Any, value: bytes, ttl: datetime.timedelta | None = None) -> None:
        self.values[key] = value

    def delete(self, key: Any) -> None:
        self.values.pop(key, None)

    def exists(self, key: Any) -> bool:
        return key in self.values
