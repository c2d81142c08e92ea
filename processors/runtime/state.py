"""Typed access to a processor's per-key state (a Quix Streams store backed by a changelog topic)."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel
from quixstreams import State

Model = TypeVar("Model", bound=BaseModel)


class StateSlot(Generic[Model]):
    """One named value of the current key's state, stored as JSON and read back as a model."""

    def __init__(self, name: str, model: type[Model]) -> None:
        self.name = name
        self.model = model

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
