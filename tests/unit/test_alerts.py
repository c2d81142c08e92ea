"""The alert rules (ops/prometheus/alerts.yml) load, fire as their unit tests say, and use metrics that exist; the
scrape job they select is the one every deployment names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import processors.runtime.metrics  # noqa: F401  # registers the metrics the alerts query
from topology.settings import PROJECT_ROOT

PROMETHEUS_DIR = PROJECT_ROOT / "ops" / "prometheus"
MONITORING_DOC = PROJECT_ROOT / "docs" / "monitoring.md"


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("promtool")
    assert executable is not None, "promtool comes with the prometheus package: make setup installs it"
    return subprocess.run([executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_prometheus_configuration_and_its_rule_files_are_valid() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "alerts.yml" in checked.stdout + checked.stderr


def test_every_alert_fires_when_and_only_when_its_unit_tests_say() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_tested_and_queries_metrics_the_processors_export() -> None:
    rules = [rule for group in _load("alerts.yml")["groups"] for rule in group["rules"]]
    tested = {case["alertname"] for test in _load("alerts.test.yml")["tests"] for case in test["alert_rule_test"]}
    # A counter's family is named without its `_total`, a histogram's without its series' suffixes; a labelled
    # metric has no samples until first used.
    suffixes = {"counter": ("", "_total"), "histogram": ("", "_bucket", "_count", "_sum")}
    exported = {
        f"{metric.name}{suffix}" for metric in REGISTRY.collect() for suffix in suffixes.get(metric.type, ("",))
    }
    for rule in rules:
        assert rule["alert"] in tested, f"{rule['alert']} has no promtool test"
        for name in re.findall(r"\boms_[a-z_]+", rule["expr"]):
            assert name in exported, f"{rule['alert']} queries {name}, which no process exports"


def test_the_documented_annotation_scrape_names_the_job_the_alerts_select(tmp_path: Path) -> None:
    [documented] = [
        block
        for block in re.findall(r"```yaml\n(.*?)```", MONITORING_DOC.read_text(), re.DOTALL)
        if "kubernetes_sd_configs" in block
    ]
    # Debian's Prometheus is built without Kubernetes discovery: its relabelling is checked under static targets.
    config = yaml.safe_load(documented)
    [job] = config["scrape_configs"]
    checked_job = {**job, "static_configs": [{"targets": ["127.0.0.1:9400"]}]}
    del checked_job["kubernetes_sd_configs"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"scrape_configs": [checked_job]}))
    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    [service] = [
        document
        for document in yaml.safe_load_all(
            (PROJECT_ROOT / "ops" / "deploy" / "k8s" / "base" / "fleet.yaml").read_text()
        )
        if document["kind"] == "Service"
    ]
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    renamed = [rule for rule in job["relabel_configs"] if rule.get("target_label") == "job"]
    assert renamed == [
        {
            "source_labels": ["__meta_kubernetes_service_label_app_kubernetes_io_name"],
            "regex": service["metadata"]["labels"]["app.kubernetes.io/name"],
            "target_label": "job",
            "replacement": "oms",
        }
    ]
    rules = {rule["alert"]: rule for group in _load("alerts.yml")["groups"] for rule in group["rules"]}
    assert 'up{job="oms"}' in rules["OmsProcessDown"]["expr"]
    [local_job] = _load("prometheus.yml")["scrape_configs"]
    assert local_job["job_name"] == "oms"


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / name).read_text())
    return loaded


def test_the_operators_alert_table_names_exactly_the_alerts_there_are() -> None:
    """docs/operations.md tells the on-call what each alert means and what to do: one row per rule, no more."""
    rules = {rule["alert"] for group in _load("alerts.yml")["groups"] for rule in group["rules"]}
    table = (PROJECT_ROOT / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"^\| `(Oms\w+)` \(", table, flags=re.MULTILINE))
    assert documented == rules
