"""What a process keeps from start-up is frozen out of the collector's walks, after what it left is collected."""

from __future__ import annotations

import gc
import weakref

from processors.runtime.heap import freeze_startup_heap


class _Node:
    partner: _Node


def test_startup_garbage_is_collected_and_what_remains_frozen() -> None:
    gc.unfreeze()
    cycle = _Node()
    cycle.partner = cycle  # freed only by the collector: frozen, it would be kept for ever
    left_over = weakref.ref(cycle)
    del cycle
    kept = _Node()

    freeze_startup_heap()
    try:
        assert left_over() is None
        assert gc.get_freeze_count() > 0
        assert not any(obj is kept for gc_generation in (0, 1, 2) for obj in gc.get_objects(gc_generation))
    finally:
        gc.unfreeze()
