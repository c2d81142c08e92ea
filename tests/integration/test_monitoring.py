"""Metrics on the real pipeline: Prometheus (the Debian package) scrapes every process with the project's own
configuration, and every query of every Grafana dashboard returns data, "All" namespaces and instances chosen
(the processes here carry no namespace label)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops.dashboards import DASHBOARDS, Panel
from ops.produce import produce_orders
from processors.runtime.discovery import targets_dir
from tests.integration.harness import Processes, Watcher
from tests.integration.test_cancellation import SKU, cancel, tee_order
from tests.integration.test_choreography import set_stock_and_wait
from topology.settings import PROJECT_ROOT, Settings
from topology.topics import INVENTORY_STOCK, ORDERS_COMMANDS, ORDERS_EVENTS

CONFIG = PROJECT_ROOT / "ops" / "prometheus" / "prometheus.yml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def prometheus(tmp_path: Path, settings: Settings, pipeline: Processes) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary is not None, "`make setup` installs the Debian package prometheus"
    config = tmp_path / "prometheus.yml"
    # The copy scrapes faster, and finds the processes' target files and the alert rules from where it is.
    text = CONFIG.read_text().replace("scrape_interval: 5s", "scrape_interval: 1s")
    text = text.replace("../../.run/prometheus/targets/", f"{targets_dir(settings.run_dir)}/")
    config.write_text(text.replace("alerts.yml", str(CONFIG.parent / "alerts.yml")))
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={url.removeprefix('http://')}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    try:
        yield url
    finally:
        process.terminate()
        process.wait(30)


def query(url: str, expr: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def test_every_dashboard_query_returns_data_from_a_running_pipeline(
    settings: Settings, registry: SchemaRegistryClient, prometheus: str
) -> None:
    watcher = Watcher(settings, registry, [ORDERS_EVENTS.name, INVENTORY_STOCK.name])
    try:
        set_stock_and_wait(settings, watcher, {SKU: 10})
        cancelled, declined = tee_order("metrics-cancel"), tee_order("metrics-declined", "tok_declined_1")
        produce_orders(settings, [tee_order("metrics-ok"), cancelled, declined], progress=False)
        cancel(settings, cancelled.order_id)
        poison = Producer(settings.kafka_config())
        poison.produce(ORDERS_COMMANDS.name, key=b"metrics-poison", value=b"not avro")
        poison.flush(10)
        watcher.wait_until(
            lambda seen: any(
                s.key == cancelled.order_id and s.record_type in ("OrderCancelled", "OrderCancellationRejected")
                for s in seen
            ),
            what="the cancellation answered",
        )
    finally:
        watcher.close()

    panels: list[Panel] = [panel for dashboard in DASHBOARDS for panel in dashboard.panels]
    empty = {panel.title: panel.resolved() for panel in panels}  # as Grafana asks with "All" chosen
    deadline = time.monotonic() + 90
    while empty and time.monotonic() < deadline:
        for title, expr in list(empty.items()):
            if query(prometheus, expr):
                del empty[title]
        time.sleep(1)
    assert not empty, f"panels without data: {empty}"
    up = {str(sample["metric"]["service"]): sample["value"][1] for sample in query(prometheus, 'up{job="oms"}')}  # type: ignore[index]
    assert up and all(value == "1" for value in up.values()), up
