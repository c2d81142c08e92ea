"""`oms` as an operator runs it, in a process of its own: every failure of its settings or surroundings is one
line on stderr naming what to fix, with the exit status docs/operations.md gives it, and no traceback and no
line of librdkafka's. No broker is needed: the broker is a loopback port nothing listens on."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ops.failures import CONFIG, NO_INPUT, NO_PERMISSION, UNAVAILABLE, USAGE
from processors.runtime.errors import CONFIG_EXIT_CODE
from topology.settings import PROJECT_ROOT


def closed_port() -> int:
    """A loopback port that refuses connections: bound once, then let go."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    """No OMS_ variable of the machine's, no config file of the user's; a broker and registry that refuse."""
    clean = {name: value for name, value in os.environ.items() if not name.upper().startswith("OMS_")}
    return {
        **clean,
        "PYTHONPATH": str(PROJECT_ROOT),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "OMS_RUN_DIR": str(tmp_path / "run"),
        "OMS_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}",
        "OMS_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{closed_port()}",
    }


def oms(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *args], env=environment, capture_output=True, text=True, timeout=60
    )


def the_one_line(run: subprocess.CompletedProcess[str]) -> str:
    """The single line `oms` printed on stderr, asserting that it is single and is no traceback."""
    lines = [line for line in run.stderr.splitlines() if "Authlib" not in line and "from ._compat" not in line]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("oms: ") and "Traceback" not in run.stderr
    return lines[0]


def test_a_setting_that_does_not_parse_is_named_with_exit_78(environment: dict[str, str]) -> None:
    run = oms({**environment, "OMS_LOCAL_KAFKA_PORT": "abc"}, "topics", "list")

    assert run.returncode == CONFIG == CONFIG_EXIT_CODE
    assert "OMS_LOCAL_KAFKA_PORT: Input should be a valid integer" in the_one_line(run)


def test_a_registry_url_that_is_no_url_names_the_flag_it_came_from(environment: dict[str, str]) -> None:
    run = oms(environment, "schemas", "check", "--registry", "registry.example.com")

    assert run.returncode == CONFIG
    line = the_one_line(run)
    assert "--registry (OMS_SCHEMA_REGISTRY_URL): 'registry.example.com' is not an http:// or https:// URL" in line


def test_bootstrap_servers_that_are_not_host_ports_are_refused(environment: dict[str, str]) -> None:
    run = oms(environment, "-b", "broker-1:9092;broker-2:9092", "topics", "list")

    assert run.returncode == CONFIG
    assert "-b/--bootstrap-server (OMS_KAFKA_BOOTSTRAP_SERVERS): 'broker-1:9092;broker-2:9092' is not host:port" in (
        the_one_line(run)
    )


def test_kafka_properties_that_are_not_json_are_named(environment: dict[str, str]) -> None:
    run = oms({**environment, "OMS_KAFKA_PROPERTIES": "client.rack=az1"}, "topics", "list")

    assert run.returncode == CONFIG
    assert "OMS_KAFKA_PROPERTIES: not a JSON object" in the_one_line(run)


def test_a_missing_ca_file_is_named_with_exit_66(environment: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "certs" / "ca.pem"
    run = oms({**environment, "OMS_KAFKA_SSL_CA_LOCATION": str(missing)}, "stock", "show")

    assert run.returncode == NO_INPUT
    assert the_one_line(run) == f"oms: OMS_KAFKA_SSL_CA_LOCATION: no file {missing}"


def test_a_missing_file_given_by_a_librdkafka_property_is_named_too(
    environment: dict[str, str], tmp_path: Path
) -> None:
    run = oms(environment, "topics", "list", "-X", f"ssl.ca.location={tmp_path / 'nope.pem'}")

    assert run.returncode == NO_INPUT
    assert "kafka property ssl.ca.location: no file" in the_one_line(run)


def test_a_missing_config_file_is_named_with_exit_66(environment: dict[str, str], tmp_path: Path) -> None:
    run = oms({**environment, "OMS_CONFIG": str(tmp_path / "oms.toml")}, "--profile", "prod", "config")

    assert run.returncode == NO_INPUT
    assert f"no config file {tmp_path / 'oms.toml'} for profile 'prod'" in the_one_line(run)


def test_a_profile_the_file_does_not_have_is_named_with_the_ones_it_has(
    environment: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "oms.toml"
    config.write_text('[profiles.staging]\nkafka_bootstrap_servers = "b-1:9092"\n')

    run = oms({**environment, "OMS_CONFIG": str(config)}, "config", "--profile", "prod")

    assert run.returncode == CONFIG
    assert "has no profile 'prod'" in (line := the_one_line(run)) and "its profiles: staging" in line


def test_a_wrong_value_in_a_profile_names_the_profile_and_file(environment: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "oms.toml"
    config.write_text('[profiles.prod]\nkafka_security_protocol = "TLS"\n')
    environment.pop("OMS_KAFKA_BOOTSTRAP_SERVERS")

    run = oms({**environment, "OMS_CONFIG": str(config), "OMS_PROFILE": "prod"}, "topics", "list")

    assert run.returncode == CONFIG
    assert f"kafka_security_protocol of profile 'prod' in {config}: Input should be" in the_one_line(run)


def test_an_unreachable_broker_fails_in_one_line_without_librdkafkas_lines(environment: dict[str, str]) -> None:
    run = oms(environment, "stock", "show")

    assert run.returncode == UNAVAILABLE
    line = the_one_line(run)
    assert f"Kafka ({environment['OMS_KAFKA_BOOTSTRAP_SERVERS']}) did not answer" in line
    assert "Connection refused" in line
    assert "|FAIL|" not in run.stderr and "FAIL [rdkafka" not in run.stderr


def test_an_unreachable_registry_fails_in_one_line_with_exit_69(environment: dict[str, str]) -> None:
    run = oms(environment, "schemas", "check")

    assert run.returncode == UNAVAILABLE
    assert f"the schema registry ({environment['OMS_SCHEMA_REGISTRY_URL']}) did not answer" in the_one_line(run)


@pytest.fixture
def answering(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a loopback HTTP server that answers every request with the status the test is given."""
    status = request.param

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error_code": %d, "message": "no"}' % status)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("answering", [401], indirect=True)
def test_a_registry_that_refuses_the_credentials_fails_with_exit_77(
    environment: dict[str, str], answering: str
) -> None:
    run = oms({**environment, "OMS_SCHEMA_REGISTRY_URL": answering}, "schemas", "check")

    assert run.returncode == NO_PERMISSION
    assert "refused the credentials (HTTP 401); check OMS_SCHEMA_REGISTRY_USERNAME" in the_one_line(run)


@pytest.mark.parametrize("answering", [404], indirect=True)
def test_a_registry_url_that_is_not_its_api_is_a_setting_to_fix(environment: dict[str, str], answering: str) -> None:
    run = oms({**environment, "OMS_SCHEMA_REGISTRY_URL": answering}, "schemas", "register")

    assert run.returncode == CONFIG
    assert "answered HTTP 404 to GET /subjects: is it the registry's Confluent-compatible API" in the_one_line(run)


def test_a_malformed_librdkafka_property_is_a_usage_error(environment: dict[str, str]) -> None:
    run = oms(environment, "-X", "client.rack", "topics", "list")

    assert run.returncode == USAGE
    assert "'client.rack' is not KEY=VALUE" in run.stderr


def test_version_names_oms_and_its_kafka_client() -> None:
    run = subprocess.run([sys.executable, "-m", "ops.cli", "--version"], capture_output=True, text=True, timeout=60)

    assert run.returncode == 0
    assert run.stdout.startswith("oms 0.1.0 (confluent-kafka 2.") and "librdkafka 2." in run.stdout


def test_status_reports_the_configured_remote_cluster_and_not_the_local_servers(environment: dict[str, str]) -> None:
    run = oms(environment, "status", "--json")

    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    kafka, registry = report["configured"]
    assert (kafka["name"], kafka["address"], kafka["answering"]) == (
        "kafka",
        environment["OMS_KAFKA_BOOTSTRAP_SERVERS"],
        False,
    )
    assert "Connection refused" in kafka["detail"]
    assert (registry["name"], registry["answering"]) == ("registry", False)
    assert report["local_servers"] == [], "the settings name another cluster than the local one"
