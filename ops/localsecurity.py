"""The secure local platform's secrets and how a client reaches it: made once, kept under `<run_dir>/secure`.

A private CA signs the broker's and the registry's server certificates (valid for 127.0.0.1 and localhost)
and a client certificate; three SCRAM-SHA-512 users hold random passwords: the broker itself, the registry
(its kafkasql storage is a Kafka client too) and `oms`, for the processors and the tools. Every file is
readable by its owner only.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ops.certificates import issue, new_authority, write_private
from topology.settings import CONFLUENT_API_PATH, LOCAL_HOST, Settings

HOST = LOCAL_HOST
SERVER_HOSTS = (HOST, "localhost")
SCRAM_MECHANISM = "SCRAM-SHA-512"
BROKER_USER = "broker"
REGISTRY_USER = "registry"
CLIENT_USER = "oms"
USERS = (BROKER_USER, REGISTRY_USER, CLIENT_USER)


@dataclass(frozen=True)
class SecureFiles:
    folder: Path

    @property
    def ca_certificate(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def broker_keystore(self) -> Path:
        """The broker's key and certificate chain in one file: Kafka's PEM key store."""
        return self.folder / "broker-keystore.pem"

    @property
    def registry_certificate(self) -> Path:
        return self.folder / "registry.pem"

    @property
    def registry_key(self) -> Path:
        return self.folder / "registry-key.pem"

    @property
    def client_certificate(self) -> Path:
        return self.folder / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.folder / "client-key.pem"

    @property
    def passwords(self) -> Path:
        return self.folder / "scram-passwords.json"

    @property
    def client_env(self) -> Path:
        """The OMS_* settings of a client, for `set -a; . <file>; set +a`."""
        return self.folder / "client.env"


def secure_dir(settings: Settings) -> Path:
    """Where the secure broker and registry keep their data, logs and pid files, apart from the plaintext ones."""
    return settings.run_dir / "secure"


def secure_files(settings: Settings) -> SecureFiles:
    return SecureFiles(secure_dir(settings) / "tls")


def ensure_material(files: SecureFiles) -> dict[str, str]:
    """Make the CA, the certificates and the passwords unless they exist; returns the password of each user.

    Made once: the broker's storage holds the SCRAM credentials from its first start on.
    """
    if not files.passwords.exists():
        authority = new_authority("oms local CA")
        broker = issue(authority, "oms-broker", SERVER_HOSTS, client=True)
        registry = issue(authority, "oms-registry", SERVER_HOSTS)
        client = issue(authority, CLIENT_USER, client=True)
        # The CA's key is not kept: nothing else can be signed with it.
        write_private(files.ca_certificate, authority.certificate_pem())
        write_private(files.broker_keystore, broker.key_pem() + broker.chain_pem())
        write_private(files.registry_certificate, registry.chain_pem())
        write_private(files.registry_key, registry.key_pem())
        write_private(files.client_certificate, client.certificate_pem())
        write_private(files.client_key, client.key_pem())
        # Hex: no character that a JAAS line, a properties file or `--add-scram` would need to quote.
        passwords = {user: secrets.token_hex(24) for user in USERS}
        write_private(files.passwords, json.dumps(passwords, indent=2).encode())
    passwords = json.loads(files.passwords.read_text())
    assert isinstance(passwords, dict)
    return {str(user): str(password) for user, password in passwords.items()}


def registry_url(settings: Settings) -> str:
    return f"https://{HOST}:{settings.local_secure_registry_port}{CONFLUENT_API_PATH}"


def client_overrides(settings: Settings) -> dict[str, Any]:
    """The settings, by field, of a client of the secure platform (user `oms`)."""
    files = secure_files(settings)
    password = ensure_material(files)[CLIENT_USER]
    return {
        # So that `oms status` and `oms down` in a shell with these settings mean the secure platform too.
        "local_security": "sasl_ssl",
        "kafka_bootstrap_servers": f"{HOST}:{settings.local_secure_kafka_port}",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": SCRAM_MECHANISM,
        "kafka_sasl_username": CLIENT_USER,
        "kafka_sasl_password": SecretStr(password),
        "kafka_ssl_ca_location": files.ca_certificate,
        "schema_registry_url": registry_url(settings),
        "schema_registry_username": CLIENT_USER,
        "schema_registry_password": SecretStr(password),
        "schema_registry_ssl_ca_location": files.ca_certificate,
        "schema_registry_ssl_certificate_location": files.client_certificate,
        "schema_registry_ssl_key_location": files.client_key,
    }


def client_settings(settings: Settings) -> Settings:
    """`settings` pointed at the secure platform, as user `oms`."""
    return settings.model_copy(update=client_overrides(settings))


def client_environment(settings: Settings, *, secrets_shown: bool = True) -> dict[str, str]:
    """The OMS_* variables that give any `oms` command or processor the settings of `client_settings`;
    without `secrets_shown`, a password reads `**********`, for printing."""
    shown = _plain if secrets_shown else str
    return {f"OMS_{field.upper()}": shown(value) for field, value in client_overrides(settings).items()}


def write_client_env(settings: Settings) -> Path:
    files = secure_files(settings)
    lines = [f"{name}={value}" for name, value in client_environment(settings).items()]
    write_private(files.client_env, ("\n".join(lines) + "\n").encode())
    return files.client_env


def _plain(value: Any) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)
