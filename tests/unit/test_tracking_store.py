"""The tracker's working copy: finished timelines leave memory for disk, and nothing is lost either way."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from processors.tracking.store import Stored, TimelineStore
from processors.tracking.timeline import new_timeline
from schemas.models import OrderTimeline
from tests.factories import NOW


def encode(timeline: OrderTimeline) -> bytes:
    return timeline.model_dump_json().encode()


def decode(value: bytes) -> OrderTimeline:
    return OrderTimeline.model_validate(json.loads(value))


def timeline(order_id: str, status: str, saga: str | None = None) -> OrderTimeline:
    return new_timeline(order_id, NOW).model_copy(update={"status": status, "saga": saga})


def test_finished_timelines_leave_memory_once_saved_and_idle_and_are_still_found(tmp_path: Path) -> None:
    store = TimelineStore(tmp_path / "t.sqlite", encode, decode)
    done = timeline("done", "completed")
    store.put(done, partition=0)
    store.put(timeline("busy", "in-flight"), partition=1)

    assert {t.order_id for t in store.unfinished()} == {"busy"}
    assert store.evict(NOW + datetime.timedelta(hours=1)) == 0, "not saved yet"
    store.save(["done", "busy"])
    assert store.evict(NOW) == 0, "not idle long enough"
    assert store.evict(NOW + datetime.timedelta(seconds=61)) == 1

    assert store.get("done") == done
    assert [t.order_id for t in store.unfinished()] == ["busy"]
    assert store.counts()[0] == {"completed": 1, "in-flight": 1}


def test_a_rebuild_keeps_the_latest_record_per_order_and_drops_tombstoned_ones(tmp_path: Path) -> None:
    store = TimelineStore(tmp_path / "t.sqlite", encode, decode)
    store.put(timeline("stale", "in-flight"), partition=2)
    later = timeline("a", "completed", saga="Cancelled")

    count = store.rebuild(
        {2},
        [
            Stored("a", encode(timeline("a", "compensating", saga="Refunding")), 2, "compensating", "Refunding"),
            Stored("b", encode(timeline("b", "in-flight")), 2),  # no summary headers: its body is read
            Stored("a", encode(later), 2, "completed", "Cancelled"),
            Stored("b", None, 2),
        ],
    )

    assert count == 1
    assert store.get("a") == later and store.get("b") is None and store.get("stale") is None
    assert store.unfinished() == []
    assert store.counts() == ({"completed": 1}, {"Cancelled": 1})


def test_dropping_partitions_forgets_their_orders_on_disk_and_in_memory(tmp_path: Path) -> None:
    store = TimelineStore(tmp_path / "t.sqlite", encode, decode)
    store.put(timeline("kept", "in-flight"), partition=0)
    store.put(timeline("gone", "in-flight"), partition=3)
    store.save(["kept", "gone"])

    store.drop_partitions({3})

    assert store.get("gone") is None and store.get("kept") is not None
    assert [t.order_id for t in store.unfinished()] == ["kept"]


def test_a_rebuild_passes_over_records_the_tracker_did_not_write(tmp_path: Path) -> None:
    store = TimelineStore(tmp_path / "t.sqlite", encode, decode)

    count = store.rebuild(
        {0},
        [
            Stored("garbled", b"not a timeline", 0),  # no summary headers: its body is read, and unreadable
            Stored("forged", b"not a timeline", 0, "in-flight"),  # headers that say unfinished: read back
            Stored("other", encode(timeline("someone-else", "in-flight")), 0, "in-flight"),
            Stored("good", encode(timeline("good", "in-flight")), 0),
        ],
    )

    assert count == 1
    assert [t.order_id for t in store.unfinished()] == ["good"]
    assert store.get("forged") is None and store.get("other") is None
