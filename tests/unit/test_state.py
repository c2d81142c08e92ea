"""Typed state slots (processors/runtime/state.py)."""

from __future__ import annotations

from pydantic import BaseModel

from processors.runtime.memory import MemoryState
from processors.runtime.state import StateSlot, ValueSlot


class Pending(BaseModel):
    skus: list[str]


def test_entries_of_one_slot_are_kept_apart_under_the_keys_the_changelogs_already_hold() -> None:
    state = MemoryState()
    pending = StateSlot("pending", Pending)

    pending.entry("r1").save(state, Pending(skus=["A"]))
    pending.entry("r2").save(state, Pending(skus=["B"]))

    assert pending.entry("r1").load(state) == Pending(skus=["A"])
    assert pending.entry("r2").load(state) == Pending(skus=["B"])
    assert set(state.values) == {"pending:r1", "pending:r2"}


def test_a_plain_value_reads_its_default_until_set_and_setting_the_default_removes_it() -> None:
    state = MemoryState()
    held = ValueSlot("held", 0)

    assert held.entry("o-1").load(state) == 0
    held.entry("o-1").save(state, 3)
    assert state.values == {"held:o-1": 3}
    held.entry("o-1").save(state, 0)
    assert state.values == {}


def test_an_unchanged_model_is_not_written_again() -> None:
    state = MemoryState()
    slot = StateSlot("order", Pending)
    slot.update(state, None, Pending(skus=["A"]))
    state.values.clear()  # what a second write would put back

    slot.update(state, Pending(skus=["A"]), Pending(skus=["A"]))

    assert state.values == {}
