"""Dashboards and scrape configuration as code stay in step with the processes that serve metrics."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ops.dashboards import DASHBOARDS
from processors.runtime.discovery import announce, targets_dir, withdraw
from processors.services import METRICS_PORTS, SERVICES, metrics_port
from topology.settings import PROJECT_ROOT, Settings


def test_the_dashboard_files_are_written_from_the_code() -> None:
    for dashboard in DASHBOARDS:
        assert dashboard.path.read_text() == dashboard.json(), "run `oms dashboards write`"


def test_prometheus_finds_the_targets_every_process_announces(tmp_path: Path) -> None:
    config = yaml.safe_load((PROJECT_ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    [discovery] = job["file_sd_configs"]
    [pattern] = discovery["files"]
    assert (PROJECT_ROOT / "ops" / "prometheus" / pattern).resolve().parent == targets_dir(Settings().run_dir)

    announced = announce(tmp_path, "payments", "oms-payments-2", "0.0.0.0", 9401)
    assert announced.match(pattern.rsplit("/", 1)[-1])
    [target] = json.loads(announced.read_text())
    assert target == {"targets": ["127.0.0.1:9401"], "labels": {"service": "payments", "instance_id": "oms-payments-2"}}
    withdraw(announced)
    assert not announced.exists()
    assert set(METRICS_PORTS) == set(SERVICES)


def test_further_instances_serve_on_ports_of_their_own() -> None:
    assert metrics_port("sagas", "0") == METRICS_PORTS["sagas"]
    assert metrics_port("sagas", "1") == METRICS_PORTS["sagas"] + 100
    # An instance named otherwise (a host name) is alone on its host: metrics stay on, on the service's port.
    assert metrics_port("sagas", "oms-host-a") == METRICS_PORTS["sagas"]
