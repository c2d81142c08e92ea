"""Grafana dashboards as code: the panels (title, PromQL, unit) defined here are written to `ops/grafana/*.json`
by `oms dashboards write`; a test keeps the files current and another evaluates every query against a
Prometheus scraping a running pipeline.

Every selector is limited to the namespace and instances chosen in the dashboard's variables (`series`), and
every query holds at any instance count: the fleet's gauges are each instance's share, so they are summed;
every fleet instance measures every group's lag, so it is taken once per partition (`LAG_ONCE`) before it is
summed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GRAFANA_DIR = Path(__file__).parent / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# "All" matches any value and a missing label alike: locally (`oms run all`) no series has a namespace.
ALL = ".*"
SCOPE = 'namespace=~"$namespace", instance=~"$instance"'


def series(metric: str, *matchers: str) -> str:
    """A selector of `metric`, limited to the namespace and instances chosen on the dashboard."""
    return f"{metric}{{{', '.join((*matchers, SCOPE))}}}"


LAG_ONCE = f"max by (namespace, group, topic, partition) ({series('oms_consumer_lag_messages')})"
PROCESSES_UP = series("up", 'job="oms"')


def scope_variable(name: str, label: str, query: str) -> dict[str, Any]:
    """A variable listing the values of a label, several or all of them chosen ("All" at first)."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ALL,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


VARIABLES = (
    {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
    scope_variable("namespace", "Namespace", 'label_values(up{job="oms"}, namespace)'),
    scope_variable("instance", "Instance", 'label_values(up{job="oms", namespace=~"$namespace"}, instance)'),
)


@dataclass(frozen=True)
class Panel:
    title: str
    expr: str
    legend: str
    unit: str = "short"
    kind: str = "timeseries"

    def resolved(self, namespace: str = ALL, instance: str = ALL) -> str:
        """The query as Grafana sends it, with the variables' values in place ("All" unless chosen)."""
        return self.expr.replace("$namespace", namespace).replace("$instance", instance)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]

    @property
    def path(self) -> Path:
        return GRAFANA_DIR / f"{self.uid.removeprefix('oms-')}.json"

    def model(self) -> dict[str, Any]:
        """The dashboard as Grafana's JSON model, panels two to a row."""
        panels = []
        for index, panel in enumerate(self.panels):
            panels.append(
                {
                    "id": index + 1,
                    "type": panel.kind,
                    "title": panel.title,
                    "datasource": DATASOURCE,
                    "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
                    "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                    "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                    "targets": [
                        {"refId": "A", "datasource": DATASOURCE, "expr": panel.expr, "legendFormat": panel.legend}
                    ],
                }
            )
        return {
            "uid": self.uid,
            "title": self.title,
            "tags": ["oms"],
            "timezone": "utc",
            "schemaVersion": 39,
            "refresh": "10s",
            "time": {"from": "now-30m", "to": "now"},
            "templating": {"list": list(VARIABLES)},
            "panels": panels,
        }

    def json(self) -> str:
        return json.dumps(self.model(), indent=2) + "\n"


DASHBOARDS = (
    Dashboard(
        "oms-overview",
        "OMS: overview",
        (
            Panel("Orders by status", f"sum by (status) ({series('oms_orders')})", "{{status}}"),
            Panel("Stuck orders", f"sum({series('oms_orders_stuck')})", "stuck", kind="stat"),
            Panel(
                "Messages processed per second",
                f"sum by (processor) (rate({series('oms_messages_processed_total')}[1m]))",
                "{{processor}}",
                "ops",
            ),
            Panel(
                "Dead letters (last 15 minutes)",
                f"sum by (processor, topic) (increase({series('oms_dead_letters_total')}[15m]))",
                "{{processor}} {{topic}}",
            ),
            Panel(
                "Order latency p95, placed to outcome",
                "histogram_quantile(0.95, sum by (le, outcome) "
                f"(rate({series('oms_order_latency_seconds_bucket')}[5m])))",
                "{{outcome}}",
                "s",
            ),
            Panel("Processes up", f"sum by (service) ({PROCESSES_UP})", "{{service}}"),
        ),
    ),
    Dashboard(
        "oms-workflows",
        "OMS: workflows",
        (
            Panel("Saga instances by state", f"sum by (state) ({series('oms_saga_instances')})", "{{state}}"),
            Panel(
                "Saga transitions (last 15 minutes)",
                f"sum by (from_state, to_state) (increase({series('oms_saga_transitions_total')}[15m]))",
                "{{from_state}} -> {{to_state}}",
            ),
            Panel(
                "Routing slips ended (last 15 minutes)",
                f"sum by (outcome) (increase({series('oms_routing_slips_total')}[15m]))",
                "{{outcome}}",
            ),
            Panel(
                "Activity duration p95",
                "histogram_quantile(0.95, sum by (le, activity) "
                f"(rate({series('oms_routing_slip_activity_seconds_bucket')}[5m])))",
                "{{activity}}",
                "s",
            ),
            Panel(
                "Processing time p99 per processor",
                "histogram_quantile(0.99, sum by (le, processor) "
                f"(rate({series('oms_processing_seconds_bucket')}[5m])))",
                "{{processor}}",
                "s",
            ),
        ),
    ),
    Dashboard(
        "oms-kafka-consumers",
        "OMS: Kafka consumers",
        (
            Panel("Consumer lag by group", f"sum by (group) ({LAG_ONCE})", "{{group}}"),
            Panel(
                "Consumer lag by partition",
                f"sum by (group, topic, partition) ({LAG_ONCE})",
                "{{group}} {{topic}}[{{partition}}]",
            ),
            Panel(
                "Messages by topic and outcome",
                f"sum by (topic, outcome) (rate({series('oms_messages_processed_total')}[1m]))",
                "{{topic}} {{outcome}}",
                "ops",
            ),
        ),
    ),
)


def write_dashboards() -> list[Path]:
    """Write every dashboard's JSON; the paths that changed."""
    GRAFANA_DIR.mkdir(exist_ok=True)
    changed = []
    for dashboard in DASHBOARDS:
        if not dashboard.path.exists() or dashboard.path.read_text() != dashboard.json():
            dashboard.path.write_text(dashboard.json())
            changed.append(dashboard.path)
    return changed
