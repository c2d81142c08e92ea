"""The tracker's working copy: finished timelines leave memory for disk, so do unfinished ones beyond the
room it keeps decoded, and nothing is lost either way."""

from __future__ import annotations

import datetime
import gc
import json
import tracemalloc
import uuid
import weakref
from pathlib import Path

from processors.tracking.store import Stored, TimelineStore, footprint
from processors.tracking.timeline import STEP_FIELDS, is_stuck, new_timeline
from schemas.models import OrderTimeline
from tests.factories import NOW
from tests.timelines import folded, up_to_the_first_pick


def encode(timeline: OrderTimeline) -> bytes:
    return timeline.model_dump_json().encode()


def decode(value: bytes) -> OrderTimeline:
    return OrderTimeline.model_validate(json.loads(value))


def timeline(order_id: str, status: str, saga: str | None = None) -> OrderTimeline:
    return new_timeline(order_id, NOW).model_copy(update={"status": status, "saga": saga})


class Disk:
    """The store's decoder, counting the timelines it reads back."""

    def __init__(self) -> None:
        self.reads = 0

    def decode(self, value: bytes) -> OrderTimeline:
        self.reads += 1
        return decode(value)


def ids(count: int) -> list[str]:
    return [f"o-{n}" for n in range(count)]


def room_for(count: int) -> int:
    """Bytes to keep `count` of these tests' timelines decoded."""
    return count * footprint(timeline("o", "in-flight"))


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


def test_no_more_timelines_stay_decoded_than_there_is_room_for_and_every_one_is_still_found(tmp_path: Path) -> None:
    disk = Disk()
    store = TimelineStore(tmp_path / "t.sqlite", encode, disk.decode, decoded_bytes=room_for(3))
    put = [timeline(order_id, "in-flight") for order_id in ids(10)]
    for each in put:
        store.put(each, partition=0)
    store.save(ids(10))
    held = [weakref.ref(each) for each in put]
    expected = {each.order_id: each.model_dump() for each in put}
    del put, each

    assert store.decoded() == 3
    assert [ref() is not None for ref in held] == [False] * 7 + [True] * 3, "the least recently used are let go"
    assert {order_id: store.get(order_id).model_dump() for order_id in ids(10)} == expected  # type: ignore[union-attr]
    assert disk.reads == 7
    assert sorted(t.order_id for t in store.unfinished()) == sorted(ids(10))


def test_a_timeline_read_back_from_disk_equals_the_one_put(tmp_path: Path) -> None:
    disk = Disk()
    store = TimelineStore(tmp_path / "t.sqlite", encode, disk.decode, decoded_bytes=room_for(1))
    picked = folded(*up_to_the_first_pick("o-1", uuid.uuid4(), ["pick", "pack", "ship"]))
    store.put(picked, partition=0)
    store.put(timeline("o-2", "in-flight"), partition=0)
    store.save(["o-1", "o-2"])

    read_back = store.get("o-1")

    assert disk.reads == 1
    assert read_back == picked and read_back is not picked
    assert all(step.model_fields_set is STEP_FIELDS for step in read_back.steps)


def test_changed_timelines_stay_decoded_until_saved_however_many_there_are(tmp_path: Path) -> None:
    disk = Disk()
    store = TimelineStore(tmp_path / "t.sqlite", encode, disk.decode, decoded_bytes=room_for(2))
    for order_id in ids(5):
        store.put(timeline(order_id, "in-flight"), partition=0)

    assert store.decoded() == 5 and store.crowded(), "not on disk yet: time to save"
    assert all(store.get(order_id) is not None for order_id in ids(5)) and disk.reads == 0
    store.save(ids(5))
    assert store.decoded() == 2 and not store.crowded()


def test_timelines_held_on_disk_only_count_in_the_gauges_and_are_let_go_once_finished(tmp_path: Path) -> None:
    store = TimelineStore(tmp_path / "t.sqlite", encode, decode, decoded_bytes=room_for(1))
    busy, done = timeline("busy", "in-flight"), timeline("done", "completed")
    store.put(busy, partition=0)
    store.put(done, partition=0)
    store.save(["busy", "done"])
    store.put(timeline("other", "completed"), partition=0)  # the only one decoded now
    store.save(["other"])

    [unfinished] = store.unfinished()
    assert unfinished.order_id == "busy"
    assert is_stuck(unfinished, NOW + datetime.timedelta(minutes=1), datetime.timedelta(seconds=30))
    assert store.evict(NOW + datetime.timedelta(seconds=61)) == 2
    assert store.get("done") == done, "still on disk"
    assert [t.order_id for t in store.unfinished()] == ["busy"]


def test_a_rebuild_with_more_unfinished_timelines_than_room_keeps_them_all(tmp_path: Path) -> None:
    store = TimelineStore(tmp_path / "t.sqlite", encode, decode, decoded_bytes=room_for(2))
    unfinished = [timeline(order_id, "in-flight") for order_id in ids(5)]

    count = store.rebuild({0}, [Stored(t.order_id, encode(t), 0, "in-flight") for t in unfinished])

    assert count == 5 and store.decoded() == 2
    assert sorted(t.order_id for t in store.unfinished()) == ids(5)
    assert [store.get(t.order_id) for t in unfinished] == unfinished


def test_a_timeline_s_footprint_is_about_what_it_takes_in_memory() -> None:
    """The store's bound on memory is only as good as this estimate."""
    for itinerary in (["pick"], ["pick", "pack", "gift-wrap", "customs", "ship", "confirm-delivery"]):
        gc.collect()
        tracemalloc.start()
        timelines = [folded(*up_to_the_first_pick(f"o-{n}", uuid.uuid4(), itinerary)) for n in range(200)]
        gc.collect()
        taken = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()

        assert 0.8 < sum(map(footprint, timelines)) / taken < 1.25
