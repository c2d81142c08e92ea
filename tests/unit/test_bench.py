"""The benchmark's arithmetic, counters and report, without a broker (fakes stand in for the Kafka clients)."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from confluent_kafka import TopicPartition

from ops import bench, tables
from ops.bench import Counters, Rate
from ops.supervisor import Child
from topology.admin import groups_with_members
from topology.settings import Settings


def test_per_order_is_the_growth_of_every_key_left_at_the_end_per_order() -> None:
    before = {"oms.orders.events": 100, "oms.idle": 7, "deleted": 3}
    after = {"oms.orders.events": 160, "oms.idle": 7, "created.during": 12}

    assert bench.per_order(before, after, orders=4) == {
        "each": {"created.during": 3.0, "oms.orders.events": 15.0},
        "total": 18.0,
    }


def test_cost_per_order_charges_cpu_in_milliseconds_and_records_as_counted() -> None:
    before = Counters(
        cpu_s={"intake": 1.0, "kafka": 10.0},
        written={"t": 0},
        transaction_log={"__transaction_state": 40},
        read={"oms.intake": 5},
    )
    after = Counters(
        cpu_s={"intake": 1.5, "kafka": 12.0},
        written={"t": 300},
        transaction_log={"__transaction_state": 640},
        read={"oms.intake": 105},
    )

    cost = bench.cost_per_order(before, after, orders=100)

    assert cost["cpu_ms_per_order"] == {"each": {"intake": 5.0, "kafka": 20.0}, "total": 25.0}
    assert cost["records_written_per_order"] == {"each": {"t": 3.0}, "total": 3.0}
    assert cost["records_read_per_order"] == {"each": {"oms.intake": 1.0}, "total": 1.0}
    assert cost["transaction_log_records_per_order"] == {"each": {"__transaction_state": 6.0}, "total": 6.0}


def test_settled_returns_once_two_readings_agree() -> None:
    readings = iter([1, 2, 3, 3, 4])

    assert bench.settled(lambda: next(readings), quiet_s=0) == 3


def test_settled_gives_the_last_reading_when_it_never_stands_still() -> None:
    readings = iter(range(1_000_000))

    assert bench.settled(lambda: next(readings), quiet_s=0.01, timeout_s=0.05) > 0


class FakeMessage:
    def __init__(self, failed: bool = False) -> None:
        self._failed = failed

    def error(self) -> object | None:
        return "broken" if self._failed else None


class FakeConsumer:
    """Hands out prepared batches, then nothing."""

    def __init__(self, *batches: list[FakeMessage]) -> None:
        self._batches = list(batches)

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        return self._batches.pop(0) if self._batches else []


def test_time_arrivals_counts_good_messages_and_times_first_to_last() -> None:
    consumer = FakeConsumer([FakeMessage(), FakeMessage(failed=True)], [], [FakeMessage(), FakeMessage()])

    rate = bench.time_arrivals(cast(Any, consumer), 3, threading.Event())

    assert rate.messages == 2  # intervals between three arrivals
    assert rate.seconds >= 0


def test_time_arrivals_gives_up_when_told() -> None:
    give_up = threading.Event()
    give_up.set()

    with pytest.raises(TimeoutError, match="only 0 of 5"):
        bench.time_arrivals(cast(Any, FakeConsumer()), 5, give_up)


def _resolved(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


class FakeAdmin:
    """Topics with their partitions' end offsets, and groups with their committed offsets."""

    def __init__(self, ends: dict[str, list[int]], committed: dict[str, list[int]] | None = None) -> None:
        self._ends = ends
        self._committed = committed or {}

    def list_topics(self, timeout: float) -> SimpleNamespace:
        return SimpleNamespace(
            topics={
                topic: SimpleNamespace(partitions=dict.fromkeys(range(len(ends)))) for topic, ends in self._ends.items()
            }
        )

    def list_offsets(self, wanted: dict[TopicPartition, Any], **options: Any) -> dict[TopicPartition, Future]:
        return {tp: _resolved(SimpleNamespace(offset=self._ends[tp.topic][tp.partition])) for tp in wanted}

    def list_consumer_group_offsets(self, requests: list[Any]) -> dict[str, Future]:
        group = requests[0].group_id
        partitions = [TopicPartition("t", index, offset) for index, offset in enumerate(self._committed[group])]
        return {group: _resolved(SimpleNamespace(topic_partitions=partitions))}


def test_end_offsets_sums_partitions_and_leaves_out_kafkas_and_the_ceilings_topics() -> None:
    admin = FakeAdmin({"oms.orders.events": [5, 7], "__consumer_offsets": [99], "bench.sink.1": [20_000]})

    assert tables.end_offsets(cast(Any, admin)) == {"oms.orders.events": 12}


def test_committed_offsets_sums_partitions_a_group_has_committed() -> None:
    admin = FakeAdmin({}, committed={"oms.intake": [4, -1001, 6], "oms.stock": []})

    assert bench.committed_offsets(cast(Any, admin), ["oms.intake", "oms.stock"]) == {"oms.intake": 10, "oms.stock": 0}


def test_busy_groups_are_those_with_members() -> None:
    members = {"oms.intake": ["intake-0"], "oms.stock": []}
    admin = SimpleNamespace(
        describe_consumer_groups=lambda groups: {
            group: _resolved(SimpleNamespace(members=members[group])) for group in groups
        }
    )

    assert groups_with_members(cast(Any, admin), ["oms.intake", "oms.stock"]) == ["oms.intake"]


def test_children_run_another_checkout_with_this_run_folder(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path / "run", colocated=False)
    other = tmp_path / "other"

    children = bench.bench_children(settings, other, tmp_path / "simulators")

    intake = children["intake"]
    assert intake.env == {
        "PYTHONPATH": str(other),
        "OMS_RUN_DIR": str(tmp_path / "run"),
        "OMS_METRICS_PORT": "0",
        "OMS_SIMULATORS_DIR": str(tmp_path / "simulators"),
    }
    assert intake.cwd == other
    assert intake.log_file == tmp_path / "run" / "logs" / "intake-bench.log"


def test_children_are_what_oms_run_all_runs_and_the_engine_drains_the_backlog_when_colocated(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, engine_instances=2)
    colocated = bench.bench_children(settings, None, tmp_path / "simulators")
    alone = bench.bench_children(Settings(run_dir=tmp_path, colocated=False), None, tmp_path / "simulators")

    assert set(colocated) == {"orders-0", "orders-1", "stock", "timers", "fleet"}
    assert [colocated[f"orders-{n}"].instance for n in (0, 1)] == ["bench-0", "bench-1"]
    assert bench.hop_service(colocated) == "orders"
    assert {"intake", "payments", "sagas", "stock"} <= set(alone) and "orders" not in alone
    assert bench.hop_service(alone) == "intake"


def test_children_run_this_checkout_by_default(tmp_path: Path) -> None:
    children = bench.bench_children(Settings(run_dir=tmp_path), None, tmp_path / "simulators")

    expected = {"OMS_METRICS_PORT": "0", "OMS_SIMULATORS_DIR": str(tmp_path / "simulators")}
    assert all(child.env == expected and child.cwd is None for child in children.values())


def test_processors_tree_outside_a_repository_has_no_commit(tmp_path: Path) -> None:
    assert bench.processors_tree(tmp_path) == {"tree": str(tmp_path), "commit": None, "dirty": None}


def _latency(p50: float) -> dict[str, float]:
    return {"p50": p50, "p95": p50 * 2, "p99": p50 * 3, "max": p50 * 4, "mean": p50}


def a_result() -> dict[str, Any]:
    return {
        "processors_tree": {"tree": "this checkout", "commit": "abc1234", "dirty": True},
        "order_message_bytes": 263,
        "passthrough_per_s": 250_000,
        "quix_hop_per_s": 12_000,
        "intake_hop_per_s": 3_000,
        "intake_hop_vs_passthrough": 0.012,
        "intake_hop_vs_quix_hop": 0.25,
        "full_speed": {
            "orders": 400,
            "offered_per_s": "max",
            "orders_per_s": 90.0,
            "latency_s": _latency(2.5),
            "shipped": {"orders": 250, "latency_s": _latency(1.25)},
            "max_consumer_lag": {"oms.intake": 40},
        },
        "half_speed": {
            "orders": 200,
            "offered_per_s": 45,
            "orders_per_s": 44.0,
            "latency_s": _latency(0.5),
            "shipped": {"orders": 0},
        },
        "measured_orders": 600,
        "cpu_ms_per_order": {"each": {"intake": 1.5, "kafka": 7.25}, "total": 8.75},
        "records_written_per_order": {"each": {"oms.orders.events": 9.5, "oms.payments.events": 2.0}, "total": 11.5},
        "records_read_per_order": {"each": {"oms.intake": 1.25}, "total": 1.25},
        "processes": {"intake": {"cpu_s": 3.0, "peak_rss_mb": 80.0}, "kafka": {"cpu_s": 20.0, "peak_rss_mb": 900.0}},
    }


def test_report_names_the_tree_and_both_ceilings() -> None:
    text = "\n".join(bench.report_lines(a_result()))

    assert "processors measured: this checkout at abc1234 with uncommitted changes" in text
    assert "250,000 msg/s" in text
    assert "bare Quix Streams hop" in text and "12,000 msg/s" in text
    assert "1.2% of passthrough, 25.0% of the bare Quix hop" in text


def test_report_gives_ship_latencies_only_where_orders_shipped() -> None:
    lines = bench.report_lines(a_result())

    assert "PlaceOrder to OrderShipped at full speed, 250 of 400 shipped: latency p50 1.25s p95 2.5s p99 3.75s" in lines
    assert "PlaceOrder to OrderShipped at half speed, 0 of 200 shipped" in lines


def test_report_gives_cost_per_order() -> None:
    lines = bench.report_lines(a_result())
    text = "\n".join(lines)

    assert any(line.split()[:1] == ["intake"] and "1.50 ms/order" in line and "80.0 MB" in line for line in lines)
    assert any(line.split()[:1] == ["total"] and "8.75 ms/order" in line for line in lines)
    assert "Kafka records written per order by topic (offsets, incl. transaction markers): 11.50 in all" in text
    written = [line.split() for line in lines if line.startswith("  oms.")]
    assert written[:2] == [["oms.orders.events", "9.50"], ["oms.payments.events", "2.00"]]  # largest first
    assert (
        "records read per order by consumer group (committed offsets, incl. transaction markers): 1.25 in all" in text
    )


def test_report_warns_first_of_processors_that_exited() -> None:
    result = {**a_result(), "exited_during_run": {"tracker": 1}}

    assert bench.report_lines(result)[0].startswith("WARNING: exited during the run")
    assert not bench.report_lines(a_result())[0].startswith("WARNING")


def test_process_usage_of_no_process_is_none() -> None:
    assert bench.process_usage(None) is None


def test_an_exited_processor_has_no_usage_and_is_named_with_its_code(tmp_path: Path) -> None:
    child = Child("tracker", "bench", tmp_path / "tracker.log", process=subprocess.Popen(["false"]))
    assert child.process is not None
    deadline = time.monotonic() + 10
    while bench.cpu_seconds(child.process.pid) is not None and time.monotonic() < deadline:
        if Path(f"/proc/{child.process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break  # exited, not yet waited for: what the bench meets when a processor dies
        time.sleep(0.01)

    assert bench.process_usage(child.process.pid) is None
    assert bench.exited({"tracker": child}) == {"tracker": 1}


def test_rate_per_second() -> None:
    assert Rate(10, 2.0).per_second == 5.0
    assert Rate(10, 0.0).per_second == 0.0
