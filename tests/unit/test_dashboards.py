"""Dashboards and scrape configuration as code stay in step with the processes that serve metrics, and every
panel counts what several instances export once, in the namespace and instances chosen."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from ops.dashboards import ALL, DASHBOARDS, Panel
from processors.runtime.discovery import announce, targets_dir, withdraw
from processors.services import METRICS_PORTS, SERVICES, metrics_port
from tests.unit.test_alerts import promtool
from topology.settings import PROJECT_ROOT, Settings

PANELS: dict[str, Panel] = {panel.title: panel for dashboard in DASHBOARDS for panel in dashboard.panels}
# A metric's name and the matchers it is selected with, if any.
SELECTOR = re.compile(r"\b(?:oms_[a-z_]+|up)\b(\{[^}]*\})?")


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


def test_every_panel_query_keeps_to_the_namespace_and_instances_chosen() -> None:
    for title, panel in PANELS.items():
        selections = SELECTOR.findall(panel.expr)
        assert selections, f"{title}: no metric in {panel.expr}"
        for matchers in selections:
            assert 'namespace=~"$namespace"' in matchers and 'instance=~"$instance"' in matchers, (
                f"{title} does not keep to the chosen namespace and instances: {panel.expr}"
            )


def test_every_dashboard_offers_namespaces_and_instances_all_chosen_at_first() -> None:
    for dashboard in DASHBOARDS:
        variables = {variable["name"]: variable for variable in dashboard.model()["templating"]["list"]}
        for name in ("namespace", "instance"):
            variable = variables[name]
            assert variable["type"] == "query" and f", {name})" in variable["query"]
            assert variable["includeAll"] and variable["allValue"] == ALL == ".*"
            assert variable["current"]["value"] == ["$__all"]
        assert 'namespace=~"$namespace"' in variables["instance"]["query"], "instances of the namespace chosen"


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    recorded = [{"record": f"panel_{index}", "expr": panel.resolved()} for index, panel in enumerate(PANELS.values())]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": recorded}]}))
    checked = promtool("check", "rules", "panels.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_panels_count_what_two_instances_export_once_and_keep_to_the_namespace_chosen(tmp_path: Path) -> None:
    # On one machine (no namespace), two fleet instances: each holds a share of the orders and measures the
    # lag of every group; every other process exports `oms_orders_stuck` at 0.
    local = ("127.0.0.1:9410", "127.0.0.1:9510")
    one_machine = [
        gauge("oms_orders_stuck", {"instance": local[0]}, 2),
        gauge("oms_orders_stuck", {"instance": local[1]}, 3),
        gauge("oms_orders_stuck", {"instance": "127.0.0.1:9407"}, 0),
        gauge("oms_orders", {"status": "in-flight", "instance": local[0]}, 4),
        gauge("oms_orders", {"status": "in-flight", "instance": local[1]}, 6),
        gauge("oms_saga_instances", {"saga": "cancellation", "state": "Failed", "instance": local[0]}, 1),
        gauge("oms_saga_instances", {"saga": "cancellation", "state": "Failed", "instance": local[1]}, 2),
        # The instances measured partition 0 a moment apart.
        gauge("oms_consumer_lag_messages", lag("oms.sagas", 0, local[0]), 100),
        gauge("oms_consumer_lag_messages", lag("oms.sagas", 0, local[1]), 120),
        gauge("oms_consumer_lag_messages", lag("oms.sagas", 1, local[0]), 50),
        gauge("oms_consumer_lag_messages", lag("oms.sagas", 1, local[1]), 50),
        gauge("up", {"job": "oms", "service": "fleet", "instance": local[0]}, 1),
        gauge("up", {"job": "oms", "service": "fleet", "instance": local[1]}, 1),
    ]
    # On Kubernetes, two namespaces: two fleet instances in one, one in the other.
    prod, staging = ("10.1.0.4:9400", "10.1.0.5:9400"), "10.2.0.4:9400"
    two_namespaces = [
        gauge("oms_orders_stuck", {"namespace": "oms-prod", "instance": prod[0]}, 2),
        gauge("oms_orders_stuck", {"namespace": "oms-prod", "instance": prod[1]}, 3),
        gauge("oms_orders_stuck", {"namespace": "oms-staging", "instance": staging}, 7),
        gauge("oms_consumer_lag_messages", {**lag("oms.sagas", 0, prod[0]), "namespace": "oms-prod"}, 40),
        gauge("oms_consumer_lag_messages", {**lag("oms.sagas", 0, prod[1]), "namespace": "oms-prod"}, 40),
        gauge("oms_consumer_lag_messages", {**lag("oms.sagas", 0, staging), "namespace": "oms-staging"}, 9),
    ]
    partition_lag = [sample({"group": "oms.sagas", "topic": "oms.orders.events", "partition": "0"}, 120)]
    partition_lag.append(sample({"group": "oms.sagas", "topic": "oms.orders.events", "partition": "1"}, 50))
    cases = [
        (one_machine, shown("Stuck orders", [sample({}, 5)])),
        (one_machine, shown("Stuck orders", [sample({}, 3)], instance=local[1])),
        (one_machine, shown("Orders by status", [sample({"status": "in-flight"}, 10)])),
        (one_machine, shown("Saga instances by state", [sample({"state": "Failed"}, 3)])),
        (one_machine, shown("Consumer lag by group", [sample({"group": "oms.sagas"}, 170)])),
        (one_machine, shown("Consumer lag by partition", partition_lag)),
        (one_machine, shown("Processes up", [sample({"service": "fleet"}, 2)])),
        (two_namespaces, shown("Stuck orders", [sample({}, 12)])),
        (two_namespaces, shown("Stuck orders", [sample({}, 5)], namespace="oms-prod")),
        (two_namespaces, shown("Consumer lag by group", [sample({"group": "oms.sagas"}, 49)])),
        (two_namespaces, shown("Consumer lag by group", [sample({"group": "oms.sagas"}, 40)], namespace="oms-prod")),
    ]
    tests = [{"interval": "1m", "input_series": series, "promql_expr_test": [case]} for series, case in cases]
    (tmp_path / "panels.test.yml").write_text(yaml.safe_dump({"rule_files": [], "tests": tests}, sort_keys=False))

    tested = promtool("test", "rules", "panels.test.yml", cwd=tmp_path)

    assert tested.returncode == 0, tested.stdout + tested.stderr


def gauge(metric: str, labels: dict[str, str], value: float) -> dict[str, str]:
    matchers = ", ".join(f'{name}="{label}"' for name, label in labels.items())
    return {"series": f"{metric}{{{matchers}}}", "values": f"{value}x5"}


def lag(group: str, partition: int, instance: str) -> dict[str, str]:
    return {"group": group, "topic": "oms.orders.events", "partition": str(partition), "instance": instance}


def sample(labels: dict[str, str], value: float) -> dict[str, Any]:
    return {"labels": "{" + ", ".join(f'{name}="{label}"' for name, label in labels.items()) + "}", "value": value}


def shown(title: str, samples: list[dict[str, Any]], namespace: str = ALL, instance: str = ALL) -> dict[str, Any]:
    """What the panel shows with the namespace and instance chosen (all of them unless said)."""
    return {"expr": PANELS[title].resolved(namespace, instance), "eval_time": "2m", "exp_samples": samples}
