"""Typed access to a processor's per-key state (a Quix Streams store backed by a changelog topic).

Every entry a processor keeps is a slot declared once, next to the code that uses it: a model
(`StateSlot`) or a plain JSON value such as a flag, a count or a reason (`ValueSlot`). An entry kept per
request or per order under one key is the slot's `entry(id)`, stored as `<name>:<id>`.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from quixstreams import State

Model = TypeVar("Model", bound=BaseModel)
Value = TypeVar("Value", bound=str | int | bool)


def keeps_objects(state: State) -> bool:
    """Whether `state` keeps a model as the object it is until it is written out (an order's `SharedState`
    while its message goes through the processors run together), instead of as JSON at once."""
    return bool(getattr(state, "keeps_objects", False))


class StateSlot(Generic[Model]):
    """One named value of the current key's state, stored as JSON and read back as a model; kept as the model
    itself where the state `keeps_objects`, so that processors run together validate and dump it once per
    message that reaches them, not once per event it leads to."""

    def __init__(self, name: str, model: type[Model]) -> None:
        self.name = name
        self.model = model

    def entry(self, key: Any) -> StateSlot[Model]:
        """The slot of one request or order under the current key (`<name>:<key>`)."""
        return StateSlot(f"{self.name}:{key}", self.model)

    def load(self, state: State) -> Model | None:
        stored = state.get(self.name)
        if stored is None or isinstance(stored, self.model):
            return stored
        return self.model.model_validate(stored)

    def update(self, state: State, before: Model | None, after: Model | None) -> None:
        """Save `after` when it differs from `before` (what `load` gave): no changelog record for nothing."""
        if after != before:
            self.save(state, after)

    def save(self, state: State, value: Model | None) -> None:
        if value is None:
            state.delete(self.name)
        else:
            state.set(self.name, value if keeps_objects(state) else value.model_dump(mode="json"))


class ValueSlot(Generic[Value]):
    """One named plain value of the current key's state; `default` when it has none."""

    def __init__(self, name: str, default: Value) -> None:
        self.name = name
        self.default = default

    def entry(self, key: Any) -> ValueSlot[Value]:
        """The slot of one request or order under the current key (`<name>:<key>`)."""
        return ValueSlot(f"{self.name}:{key}", self.default)

    def load(self, state: State) -> Value:
        value: Value = state.get(self.name, self.default)
        return value

    def save(self, state: State, value: Value | None) -> None:
        """Keep `value`; None (or the default) removes the entry."""
        if value is None or value == self.default:
            state.delete(self.name)
        else:
            state.set(self.name, value)
