"""Grafana dashboards as code: the panels (title, PromQL, unit) defined here are written to `ops/grafana/*.json`
by `oms dashboards write`; a test keeps the files current and another evaluates every query against a
Prometheus scraping a running pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GRAFANA_DIR = Path(__file__).parent / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Panel:
    title: str
    expr: str
    legend: str
    unit: str = "short"
    kind: str = "timeseries"


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
            "templating": {
                "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
            },
            "panels": panels,
        }

    def json(self) -> str:
        return json.dumps(self.model(), indent=2) + "\n"


DASHBOARDS = (
    Dashboard(
        "oms-overview",
        "OMS: overview",
        (
            Panel("Orders by status", "sum by (status) (oms_orders)", "{{status}}"),
            Panel("Stuck orders", "oms_orders_stuck", "stuck", kind="stat"),
            Panel(
                "Messages processed per second",
                "sum by (processor) (rate(oms_messages_processed_total[1m]))",
                "{{processor}}",
                "ops",
            ),
            Panel(
                "Dead letters (last 15 minutes)",
                "sum by (processor, topic) (increase(oms_dead_letters_total[15m]))",
                "{{processor}} {{topic}}",
            ),
            Panel(
                "Order latency p95, placed to outcome",
                "histogram_quantile(0.95, sum by (le, outcome) (rate(oms_order_latency_seconds_bucket[5m])))",
                "{{outcome}}",
                "s",
            ),
            Panel("Processes up", 'sum by (service) (up{job="oms"})', "{{service}}"),
        ),
    ),
    Dashboard(
        "oms-workflows",
        "OMS: workflows",
        (
            Panel("Saga instances by state", "sum by (state) (oms_saga_instances)", "{{state}}"),
            Panel(
                "Saga transitions (last 15 minutes)",
                "sum by (from_state, to_state) (increase(oms_saga_transitions_total[15m]))",
                "{{from_state}} -> {{to_state}}",
            ),
            Panel(
                "Routing slips ended (last 15 minutes)",
                "sum by (outcome) (increase(oms_routing_slips_total[15m]))",
                "{{outcome}}",
            ),
            Panel(
                "Activity duration p95",
                "histogram_quantile(0.95, sum by (le, activity) (rate(oms_routing_slip_activity_seconds_bucket[5m])))",
                "{{activity}}",
                "s",
            ),
            Panel(
                "Processing time p99 per processor",
                "histogram_quantile(0.99, sum by (le, processor) (rate(oms_processing_seconds_bucket[5m])))",
                "{{processor}}",
                "s",
            ),
        ),
    ),
    Dashboard(
        "oms-kafka-consumers",
        "OMS: Kafka consumers",
        (
            Panel("Consumer lag by group", "sum by (group) (oms_consumer_lag_messages)", "{{group}}"),
            Panel(
                "Consumer lag by partition",
                "max by (group, topic, partition) (oms_consumer_lag_messages)",
                "{{group}} {{topic}}[{{partition}}]",
            ),
            Panel(
                "Messages by topic and outcome",
                "sum by (topic, outcome) (rate(oms_messages_processed_total[1m]))",
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
