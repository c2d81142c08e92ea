"""The fleet's gauges count every order once, as its latest view record's headers say, without decoding it, and
its lag gauge holds the partitions last measured, no others."""

from __future__ import annotations

import datetime

from prometheus_client import REGISTRY

from processors.tracking.fleet import Fleet, Standing, publish_lag
from processors.tracking.lag import PartitionLag
from processors.tracking.timeline import new_timeline
from processors.tracking.view import summary_headers
from tests.factories import NOW

STUCK_AFTER = datetime.timedelta(minutes=5)


def headers(status: str, saga: str | None = None, at: datetime.datetime = NOW) -> list[tuple[str, bytes]]:
    timeline = new_timeline("any", at).model_copy(update={"status": status, "saga": saga, "last_progress_at": at})
    return list(summary_headers(timeline))


def test_each_order_counts_once_as_its_latest_record_says() -> None:
    fleet = Fleet()
    fleet.take(0, b"o-1", b"...", headers("in-flight"), 0)
    fleet.take(0, b"o-1", b"...", headers("completed"), 0)
    fleet.take(1, b"o-2", b"...", headers("compensating", "RefundingPayment"), 0)

    statuses, sagas, _ = fleet.counts(NOW, STUCK_AFTER)

    assert statuses == {"completed": 1, "compensating": 1}
    assert sagas == {"RefundingPayment": 1}


def test_an_order_without_progress_for_the_threshold_is_stuck_until_it_moves_or_ends() -> None:
    fleet = Fleet()
    fleet.take(0, b"o-1", b"...", headers("in-flight", at=NOW - STUCK_AFTER), 0)
    fleet.take(0, b"o-2", b"...", headers("in-flight", at=NOW - datetime.timedelta(seconds=10)), 0)
    fleet.take(0, b"o-3", b"...", headers("completed", at=NOW - STUCK_AFTER * 2), 0)

    assert fleet.counts(NOW, STUCK_AFTER)[2] == 1
    fleet.take(0, b"o-1", b"...", headers("completed", at=NOW), 0)
    assert fleet.counts(NOW, STUCK_AFTER)[2] == 0


def test_a_tombstone_forgets_an_order_and_a_partition_revoked_forgets_its_orders() -> None:
    fleet = Fleet()
    fleet.take(0, b"o-1", b"...", headers("in-flight"), 0)
    fleet.take(1, b"o-2", b"...", headers("in-flight"), 0)

    fleet.take(0, b"o-1", None, [], 0)
    assert fleet.counts(NOW, STUCK_AFTER)[0] == {"in-flight": 1}
    fleet.drop({1})
    assert fleet.counts(NOW, STUCK_AFTER)[0] == {}


def test_a_record_without_a_status_is_passed_over_and_a_bad_progress_falls_back_to_when_it_was_written() -> None:
    fleet = Fleet()
    written_ms = int((NOW - STUCK_AFTER).timestamp() * 1000)

    fleet.take(0, b"made-up", b"...", [("oms-progress-at", b"1")], written_ms)
    fleet.take(0, b"o-1", b"...", [("oms-status", b"in-flight"), ("oms-progress-at", b"soon")], written_ms)

    assert fleet.orders[0] == {b"o-1": Standing("in-flight", None, NOW - STUCK_AFTER)}
    assert fleet.counts(NOW, STUCK_AFTER)[2] == 1


def test_the_lag_of_a_partition_no_longer_measured_is_no_longer_exported() -> None:
    def exported(group: str, partition: int) -> float | None:
        labels = {"group": group, "topic": "oms.orders.events", "partition": str(partition)}
        return REGISTRY.get_sample_value("oms_consumer_lag_messages", labels)

    first = [
        PartitionLag("oms.test-lag", "oms.orders.events", 0, 5),
        PartitionLag("oms.test-gone", "oms.orders.events", 1, 7),
    ]
    published = publish_lag(first, set())
    assert (exported("oms.test-lag", 0), exported("oms.test-gone", 1)) == (5, 7)

    published = publish_lag([PartitionLag("oms.test-lag", "oms.orders.events", 0, 3)], published)

    assert (exported("oms.test-lag", 0), exported("oms.test-gone", 1)) == (3, None)
    publish_lag([], published)
    assert exported("oms.test-lag", 0) is None
