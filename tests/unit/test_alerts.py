"""The alert rules (ops/prometheus/alerts.yml) load, fire as their unit tests say, and use metrics that exist."""

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


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / name).read_text())
    return loaded
