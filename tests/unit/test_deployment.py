"""The deployment files: made from the processor declarations, current, and valid for their tools (Kubernetes's in
test_kubernetes.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from ops.deploy import COMPOSE_FILE, DEPLOYED, generated_files
from topology.settings import PROJECT_ROOT


def test_the_files_are_what_the_declarations_make() -> None:
    for path, text in generated_files().items():
        assert path.read_text() == text, f"{path} is stale: run `oms deploy --write`"


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
