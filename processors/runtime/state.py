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


class StateSlot(Generic[Model]):
    """One named value of the current key's state, stored as JSON and read back as a model."""

    def __init__(self, name: str, model: type[Model]) -> None:
        self.name = name
        self.model = model

    def entry(self, key: Any) -> StateSlot[Model]:
        """The slot of one request or order under the current key (`<name>:<key>`)."""
        return StateSlot(f"{self.name}:{key}", self.model)

    def load(self, state: State) -> Model | None:
        stored = state.get(self.name)
        return None if stored is None else self.model.model_validate(stored)

    def update(self, state: State, before: Model | None, after: Model | None) -> None:
        """Save `after` when it differs from `before` (what `load` gave): no changelog record for nothing."""
        if after != before:
            self.save(state, after)

    def save(self, state: State, value: Model | None) -> None:
        if value is None:
            state.delete(self.name)
        else:
            state.set(self.name, value.model_dump(mode="json"))


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
