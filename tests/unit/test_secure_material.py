"""The secure platform's secrets (ops/localsecurity.py) and the registry client's certificate, without a broker."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from ops import cli, kafka
from ops import platform as local_platform
from ops.localsecurity import (
    CLIENT_USER,
    USERS,
    client_environment,
    client_settings,
    ensure_material,
    secure_files,
)
from topology.settings import Settings


@pytest.fixture
def platform(tmp_path: Path) -> Settings:
    return Settings(run_dir=tmp_path, local_security="sasl_ssl")


def test_the_secrets_are_made_once_and_readable_by_the_owner_only(platform: Settings) -> None:
    files = secure_files(platform)
    first = ensure_material(files)
    certificate = files.ca_certificate.read_bytes()

    again = ensure_material(files)

    assert set(first) == set(USERS) and len(set(first.values())) == len(USERS)
    assert again == first and files.ca_certificate.read_bytes() == certificate
    assert {path.stat().st_mode & 0o777 for path in files.folder.iterdir()} == {0o600}


def test_the_printed_environment_gives_a_client_the_secure_settings(
    platform: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in client_environment(platform).items():
        monkeypatch.setenv(name, value)

    from_environment = Settings()

    expected = client_settings(platform)
    assert from_environment.kafka_config() == expected.kafka_config()
    assert from_environment.schema_registry_config() == expected.schema_registry_config()
    assert from_environment.kafka_config()["security.protocol"] == "SASL_SSL"
    assert from_environment.kafka_config()["sasl.mechanism"] == "SCRAM-SHA-512"
    assert from_environment.schema_registry_url.startswith("https://")


class _Subjects(http.server.BaseHTTPRequestHandler):
    """A registry that answers every GET with no subjects, and notes who asked."""

    clients: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        certificate = self.connection.getpeercert()
        subject = dict(pair[0] for pair in certificate["subject"]) if certificate else {}
        self.clients.append(subject.get("commonName", ""))
        body = json.dumps([]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mutual_tls_registry(platform: Settings) -> Iterator[str]:
    """An HTTPS server with the project's registry certificate that requires a client certificate of its CA."""
    files = secure_files(platform)
    ensure_material(files)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.registry_certificate, files.registry_key)
    context.load_verify_locations(files.ca_certificate)
    context.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Subjects)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Subjects.clients = []
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_registry_client_shows_its_certificate_to_a_registry_that_asks(
    platform: Settings, mutual_tls_registry: str
) -> None:
    client = client_settings(platform).model_copy(update={"schema_registry_url": mutual_tls_registry})

    assert SchemaRegistryClient({**client.schema_registry_config(), "max.retries": 0}).get_subjects() == []
    assert _Subjects.clients == [CLIENT_USER]

    without_certificate = client.model_copy(
        update={"schema_registry_ssl_certificate_location": None, "schema_registry_ssl_key_location": None}
    )
    with pytest.raises(httpx.TransportError):
        SchemaRegistryClient({**without_certificate.schema_registry_config(), "max.retries": 0}).get_subjects()


def test_oms_up_secure_starts_the_secure_platform_and_prints_its_client_settings_but_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[Settings] = []

    def up(settings: Settings) -> list[str]:
        started.append(settings)
        return []

    monkeypatch.setattr(local_platform, "up", up)

    assert cli.cmd_up(cli.build_parser().parse_args(["up", "--secure"]), Settings(run_dir=tmp_path)) == 0

    [settings] = started
    assert settings.local_security == "sasl_ssl"
    printed = capsys.readouterr().out
    environment = client_environment(settings)
    for name in ("OMS_KAFKA_SECURITY_PROTOCOL", "OMS_SCHEMA_REGISTRY_URL"):
        assert f"{name}={environment[name]}" in printed
    assert "OMS_KAFKA_SASL_PASSWORD=**********" in printed
    assert environment["OMS_KAFKA_SASL_PASSWORD"] not in printed
    assert secure_files(settings).client_env.read_text().splitlines() == [
        f"{name}={value}" for name, value in environment.items()
    ]


def test_the_scram_passwords_never_reach_a_command_line(platform: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []

    def run(command: list[str]) -> str:
        commands.append(command)
        if command[-1].startswith("@"):
            argument_file = Path(command[-1][1:])
            assert argument_file.stat().st_mode & 0o777 == 0o600
            assert all(password in argument_file.read_text() for password in passwords.values())
        return "cluster-id\n"

    monkeypatch.setattr(kafka, "_run", run)
    monkeypatch.setattr(kafka, "kafka_libs", lambda cache_dir: cache_dir / "libs")
    passwords = ensure_material(secure_files(platform))

    kafka.kafka_server(platform).build_command()

    assert commands[0][-1] == "random-uuid"
    assert len(commands) == 2
    assert not any(password in " ".join(command) for command in commands for password in passwords.values())
    assert not list((platform.run_dir).rglob("format.args")), "the argument file is removed once read"
