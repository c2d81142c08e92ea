"""The deployment files: made from the processor declarations, current, and valid for their tools."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ops.deploy import COMPOSE_FILE, DEPLOYED, K8S_DIR, generated_files
from topology.settings import PROJECT_ROOT

KUBERNETES_VERSION = "1.33"


def manifests() -> list[dict[str, Any]]:
    return [document for path in sorted(K8S_DIR.glob("*.yaml")) for document in yaml.safe_load_all(path.read_text())]


def test_the_files_are_what_the_declarations_make() -> None:
    for path, text in generated_files().items():
        assert path.read_text() == text, f"{path} is stale: run `oms deploy --write`"


def test_every_processor_has_a_stateful_set_whose_pods_name_their_instance() -> None:
    stateful = {
        doc["spec"]["template"]["spec"]["containers"][0]["args"][1]
        for doc in manifests()
        if doc["kind"] == "StatefulSet"
    }
    assert stateful == set(DEPLOYED)
    services = {doc["metadata"]["name"] for doc in manifests() if doc["kind"] == "Service"}
    assert services == {f"oms-{name}" for name in DEPLOYED}


def test_the_manifests_are_valid_kubernetes_resources() -> None:
    for document in manifests():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validation_catches_a_misspelt_field() -> None:
    stateful_set = next(doc for doc in manifests() if doc["kind"] == "StatefulSet")
    broken = copy.deepcopy(stateful_set)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["prot"] = "metrics"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("docker-compose")
    assert executable is not None, "docker-compose comes from the Debian package: make test installs it"
    return subprocess.run(
        [executable, "--project-directory", str(PROJECT_ROOT), "-f", str(path), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_docker_compose_accepts_the_compose_file_and_runs_every_processor() -> None:
    checked = compose_config(COMPOSE_FILE)
    assert checked.returncode == 0, checked.stderr
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    assert {name for name, service in services.items() if service.get("command", [None])[0] == "run"} == set(DEPLOYED)
    for mounted in ("ops/prometheus/alerts.yml", "ops/deploy/prometheus-compose.yml", "ops/grafana"):
        assert (PROJECT_ROOT / mounted).exists()


def test_docker_compose_refuses_a_broken_file(tmp_path: Path) -> None:
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["intake"]["depends_on"] = {"setup": {"condition": "when-it-feels-like-it"}}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert compose_config(path).returncode != 0
