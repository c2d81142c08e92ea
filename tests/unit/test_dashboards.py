"""Dashboards and scrape configuration as code stay in step with the processes that serve metrics."""

from __future__ import annotations

from ops.dashboards import DASHBOARDS
from processors.services import METRICS_PORTS, SERVICES, metrics_port
from topology.settings import PROJECT_ROOT


def test_the_dashboard_files_are_written_from_the_code() -> None:
    for dashboard in DASHBOARDS:
        assert dashboard.path.read_text() == dashboard.json(), "run `oms dashboards write`"


def test_every_service_serves_metrics_on_a_port_prometheus_scrapes() -> None:
    config = (PROJECT_ROOT / "ops" / "prometheus" / "prometheus.yml").read_text()

    assert set(METRICS_PORTS) == set(SERVICES)
    for name, port in METRICS_PORTS.items():
        assert f"'127.0.0.1:{port}']\n        labels: {{service: {name}}}" in config


def test_further_instances_serve_on_ports_of_their_own() -> None:
    assert metrics_port("sagas", "0") == METRICS_PORTS["sagas"]
    assert metrics_port("sagas", "1") == METRICS_PORTS["sagas"] + 100
    # An instance named otherwise (a host name) is alone on its host: metrics stay on, on the service's port.
    assert metrics_port("sagas", "oms-host-a") == METRICS_PORTS["sagas"]
