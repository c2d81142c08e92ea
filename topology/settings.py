"""One settings object, read from `OMS_`-prefixed environment variables with local defaults."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from topology.profiles import Profile, ProfileError, selected_profile

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# librdkafka's name for the Java client's partitioner (murmur2 of the key).
JAVA_PARTITIONER = "murmur2_random"

# The most a message (key, value and headers) may have: librdkafka's and the broker's `message.max.bytes` (1 MB),
# less a margin for the framing of records and batches.
MAX_MESSAGE_BYTES = 990_000

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
LocalSecurity = Literal["none", "sasl_ssl"]

# Where `oms up` runs the local platform: loopback only, so nothing off the machine reaches it.
LOCAL_HOST = "127.0.0.1"
CONFLUENT_API_PATH = "/apis/ccompat/v7"


class Settings(BaseSettings):
    """Where Kafka and the schema registry are, how to reach them securely, and local tuning.

    Every field reads `OMS_<FIELD>` (case-insensitive), e.g. `OMS_KAFKA_BOOTSTRAP_SERVERS`.
    """

    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore")

    # Unset, these two follow the local platform's ports (`local_kafka_port`, `local_registry_port`).
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None
    kafka_ssl_certificate_location: Path | None = None
    kafka_ssl_key_location: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    # OAUTHBEARER with `oidc`: librdkafka fetches and refreshes the token itself (client credentials grant),
    # as Confluent Cloud and other OIDC identity providers expect. Extensions: `key=value,key=value`, e.g.
    # Confluent Cloud's `logicalCluster=lkc-...,identityPoolId=pool-...`.
    kafka_sasl_oauthbearer_method: Literal["default", "oidc"] | None = None
    kafka_sasl_oauthbearer_client_id: str | None = None
    kafka_sasl_oauthbearer_client_secret: SecretStr | None = None
    kafka_sasl_oauthbearer_token_endpoint_url: str | None = None
    kafka_sasl_oauthbearer_scope: str | None = None
    kafka_sasl_oauthbearer_extensions: str | None = None
    # Any further librdkafka properties (kcat's `-X`, `oms -X key=value`), given to every client over the
    # settings above; in the environment as JSON, `{"client.rack": "use1-az1"}`.
    kafka_properties: dict[str, str] = Field(default_factory=dict)

    schema_registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    schema_registry_username: str | None = None
    schema_registry_password: SecretStr | None = None
    schema_registry_ssl_ca_location: Path | None = None
    # A registry that does not answer is an outage, not a wait for ever: each request gives up after this
    # long, and is retried this many times (for 408, 429 and 5xx), so that one call stays well under the
    # transaction timeout.
    schema_registry_timeout_s: float = 5.0
    schema_registry_max_retries: int = 1
    # A client certificate, for a registry that asks for one (mutual TLS).
    schema_registry_ssl_certificate_location: Path | None = None
    schema_registry_ssl_key_location: Path | None = None
    schema_registry_ssl_key_password: SecretStr | None = None

    # Replication of the topics `oms topics apply` creates; 3 on a production cluster.
    replication_factor: int = Field(default=1, ge=1)
    # How many replicas must hold a write before the broker acknowledges it (`min.insync.replicas` of the topics
    # created). Unset: one fewer than the replication factor, at least 1 (1 locally, 2 for 3 replicas), so that
    # one broker can be down without stopping writes, and an acknowledged write survives losing one more.
    min_insync_replicas: int = Field(default=1, ge=1)
    # Partitions of every order-keyed topic: how many instances of a processor can share its work. Fixed once
    # the topics hold data: an order's records must stay in the partition its key hashed to.
    order_partitions: int = Field(default=4, ge=1)

    # Where each process serves its metrics and health (`/metrics`, `/healthz`, `/readyz`) and the dashboard
    # serves its page: loopback on a laptop, `0.0.0.0` in a container.
    metrics_host: str = "127.0.0.1"
    dashboard_host: str = "127.0.0.1"
    # Who may use the dashboard from elsewhere than loopback (docs/monitoring.md#who-may-use-the-dashboard): the
    # token to log in with or send as a bearer token (or a file holding it, e.g. a mounted Secret), and the
    # header an authenticating proxy names its user in, trusted only when named here. None of them: the
    # dashboard serves loopback clients only.
    dashboard_token: SecretStr | None = None
    dashboard_token_file: Path | None = None
    dashboard_user_header: str | None = None
    # Ask clients on loopback to log in as well (a proxy or `kubectl port-forward` on the same host).
    dashboard_login_on_loopback: bool = False
    # Host header values the dashboard answers to besides its own addresses, comma-separated: an ingress's host
    # name (any port) or `name:port`.
    dashboard_allowed_hosts: str = ""
    # How long a login lasts, and how long a connection may take to send its request before it is closed.
    dashboard_session_s: float = Field(default=8 * 3600.0, gt=0)
    dashboard_request_timeout_s: float = Field(default=30.0, gt=0)

    # `oms run all` runs the processors that share the order key as one engine (`oms run orders`): one consumer
    # group and transaction, events handed over in memory and still published (docs/adr/0002-co-location.md).
    # False: each alone, in its own consumer group.
    colocated: bool = True
    # How many instances of that engine `oms run all` runs: it is one single-threaded Python process, so one per
    # core it may use. None: this machine's cores, at most the order topics' partitions.
    engine_instances: int | None = Field(default=None, ge=1)

    # How often a processor commits its Kafka transaction while it has more to read; one that has read
    # everything commits at once, at most every `min_commit_interval_s` (processors/runtime/commits.py).
    # Measured in docs/performance.md: 0.25 s batches well at full speed; caught-up commits keep hops short,
    # and 50 ms between them (not 20) spares a moderately loaded platform a transaction per message.
    commit_interval_s: float = 0.25
    commit_when_caught_up: bool = True
    min_commit_interval_s: float = 0.05
    # How long a processor's consumer waits for a message, or (processors that merge topics) for a batch it
    # then reads in timestamp order: a caught-up processor notices it has nothing to read after this long.
    poll_timeout_s: float = 0.01
    fetch_wait_ms: int = 100
    # How long a processor's producer lets a batch fill: fewer, larger produce requests for the broker.
    producer_linger_ms: int = 20
    session_timeout_ms: int = 10_000
    transaction_timeout_ms: int = 30_000
    # How long a processor retries a message that met an outage (a registry, broker or disk down), with
    # backoff, before it stops and leaves the message to its restart: well under the transaction timeout
    # and the consumer's max.poll.interval.ms.
    outage_retry_s: float = 10.0
    # The most a message a processor produces may have; a bigger output dead-letters its input, and a dead
    # letter is cut down to it.
    max_message_bytes: int = MAX_MESSAGE_BYTES
    log_level: str = "WARNING"
    # `json`: one object a line with service, order id, event id and trace id, for a log pipeline.
    log_format: Literal["text", "json"] = "text"
    # Monitoring calls an in-flight or compensating order stuck after this long without an event.
    stuck_after_s: float = 30.0
    # A CancelOrder for an order not seen yet waits this long for its PlaceOrder, then is refused as unknown:
    # a cancellation can overtake its order (another producer, another partition of the client's work).
    cancel_waits_for_order_s: float = 60.0

    # `oms run all` calls a processor that crashed this many times within this many seconds crash-looping
    # (`oms status` names it, an alert fires) and goes on restarting it; an exit for an outage
    # (OUTAGE_EXIT_CODE) is not a crash. See ops/restarts.py.
    supervisor_max_crashes: int = 5
    supervisor_crash_window_s: float = 300.0
    # Where `oms run all` serves its own metrics (restarts, processors crash-looping or stopped). None: 9399,
    # plus 100 per further numbered instance as the processors' ports; 0: none.
    supervisor_metrics_port: int | None = None

    # Where `oms up` keeps downloaded jars and the local servers' data, logs and pid files.
    cache_dir: Path = PROJECT_ROOT / ".cache"
    run_dir: Path = PROJECT_ROOT / ".run"
    # The simulators' ledgers (warehouse and carriers, payment gateway, notifications): what the outside world
    # did, kept across runs so that a replay does nothing twice. None: `<run_dir>/simulators`.
    simulators_dir: Path | None = None
    # What `oms up` starts: the plaintext broker and registry, or ("sasl_ssl", also `oms up --secure`) a broker
    # with a SASL_SSL listener (SCRAM-SHA-512) and a registry behind TLS, on their own ports and in
    # `<run_dir>/secure`, so that both can run side by side (ops/localsecurity.py).
    local_security: LocalSecurity = "none"
    local_secure_kafka_port: int = 9192
    local_secure_controller_port: int = 9193
    local_secure_registry_port: int = 8443
    # The plaintext local platform's ports: change them when another Kafka or registry holds them already.
    local_kafka_port: int = Field(default=9092, ge=1, le=65535)
    local_controller_port: int = Field(default=9093, ge=1, le=65535)
    local_registry_port: int = Field(default=8081, ge=1, le=65535)

    @property
    def simulators_path(self) -> Path:
        return self.simulators_dir or self.run_dir / "simulators"

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def bootstrap_servers_are_host_ports(cls, value: str) -> str:
        for server in value.split(","):
            if not _is_host_port(server.strip()):
                raise ValueError(f"{server.strip()!r} is not host:port (a list is comma-separated: b-1:9092,b-2:9092)")
        return value

    @field_validator("schema_registry_url")
    @classmethod
    def registry_url_is_http(cls, value: str) -> str:
        for url in value.split(","):
            parts = urlsplit(url.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url.strip()!r} is not an http:// or https:// URL with a host")
        return value

    @model_validator(mode="after")
    def clients_follow_the_local_ports(self) -> Settings:
        """Bootstrap servers and registry URL not given reach the local platform on the ports it is given."""
        if "kafka_bootstrap_servers" not in self.model_fields_set:
            self.kafka_bootstrap_servers = local_bootstrap_servers(self)
        if "schema_registry_url" not in self.model_fields_set:
            self.schema_registry_url = local_registry_url(self)
        return self

    @model_validator(mode="after")
    def min_insync_replicas_follow_the_replication(self) -> Settings:
        """Unset, `min_insync_replicas` is one fewer than the replication factor (at least 1); set, it cannot
        exceed it, or no write would ever be acknowledged."""
        if "min_insync_replicas" not in self.model_fields_set:
            self.min_insync_replicas = max(1, self.replication_factor - 1)
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) exceeds replication_factor "
                f"({self.replication_factor}): no write could be acknowledged"
            )
        return self

    def kafka_config(self) -> dict[str, Any]:
        """librdkafka properties shared by every producer, consumer and admin client."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        optional = {
            "sasl.mechanism": self.kafka_sasl_mechanism,
            "sasl.username": self.kafka_sasl_username,
            "sasl.password": _reveal(self.kafka_sasl_password),
            "ssl.ca.location": self.kafka_ssl_ca_location,
            "ssl.certificate.location": self.kafka_ssl_certificate_location,
            "ssl.key.location": self.kafka_ssl_key_location,
            "ssl.key.password": _reveal(self.kafka_ssl_key_password),
            "sasl.oauthbearer.method": self.kafka_sasl_oauthbearer_method,
            "sasl.oauthbearer.client.id": self.kafka_sasl_oauthbearer_client_id,
            "sasl.oauthbearer.client.secret": _reveal(self.kafka_sasl_oauthbearer_client_secret),
            "sasl.oauthbearer.token.endpoint.url": self.kafka_sasl_oauthbearer_token_endpoint_url,
            "sasl.oauthbearer.scope": self.kafka_sasl_oauthbearer_scope,
            "sasl.oauthbearer.extensions": self.kafka_sasl_oauthbearer_extensions,
        }
        config.update({key: str(value) for key, value in optional.items() if value is not None})
        config.update(self.kafka_properties)
        # librdkafka's own lines (a broker that refuses a connection, say) go through Python's logging, where
        # each process decides where they show, instead of straight to the terminal.
        config["logger"] = KAFKA_CLIENT_LOGGER
        return config

    def producer_config(self) -> dict[str, Any]:
        """`kafka_config` for a producer: Java's partitioner, so that records keyed here, by Java clients or by
        kcat land in the same partition, and an order's records meet its other records."""
        return {**self.kafka_config(), "partitioner": JAVA_PARTITIONER}

    def schema_registry_config(self) -> dict[str, Any]:
        """Configuration for confluent-kafka's `SchemaRegistryClient`."""
        config: dict[str, Any] = {
            "url": self.schema_registry_url,
            "timeout": self.schema_registry_timeout_s,
            "max.retries": self.schema_registry_max_retries,
        }
        if self.schema_registry_username is not None:
            password = _reveal(self.schema_registry_password) or ""
            config["basic.auth.user.info"] = f"{self.schema_registry_username}:{password}"
        if self.schema_registry_ssl_ca_location is not None:
            config["ssl.ca.location"] = str(self.schema_registry_ssl_ca_location)
        client_certificate = {
            "ssl.certificate.location": self.schema_registry_ssl_certificate_location,
            "ssl.key.location": self.schema_registry_ssl_key_location,
            "ssl.key.password": _reveal(self.schema_registry_ssl_key_password),
        }
        config.update({key: str(value) for key, value in client_certificate.items() if value is not None})
        return config


def local_bootstrap_servers(settings: Settings) -> str:
    """How a client reaches the plaintext local broker."""
    return f"{LOCAL_HOST}:{settings.local_kafka_port}"


def local_registry_url(settings: Settings) -> str:
    """The plaintext local registry's Confluent-compatible API."""
    return f"http://{LOCAL_HOST}:{settings.local_registry_port}{CONFLUENT_API_PATH}"


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


KAFKA_CLIENT_LOGGER = logging.getLogger("librdkafka")

_HOST_PORT = re.compile(r"(?:[A-Za-z_]+://)?(?:\[[0-9A-Fa-f:.]+\]|[^\s:/\[\],]+)(?::(?P<port>\d{1,5}))?")


def _is_host_port(server: str) -> bool:
    """librdkafka's form of a bootstrap server: `host`, `host:port`, `[ipv6]:port`, optionally `PROTOCOL://`."""
    match = _HOST_PORT.fullmatch(server)
    return match is not None and (match["port"] is None or 0 < int(match["port"]) < 65536)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def load_settings() -> Settings:
    """The settings of this process: `OMS_` variables over the profile `OMS_PROFILE` names (in the file
    `OMS_CONFIG` names, or ~/.config/oms/config.toml) over the defaults. `oms`' flags reach here as variables.

    `kafka_properties` merge key by key: a variable's properties add to, or replace, the profile's."""
    profile = selected_profile(os.environ)
    if profile is None:
        return Settings()
    check_profile(profile)
    given = settings_in_environment(os.environ)
    below = {name: value for name, value in profile.values.items() if name not in given}
    settings = Settings(**below)
    if "kafka_properties" in given and "kafka_properties" in profile.values:
        merged = {**profile.values["kafka_properties"], **settings.kafka_properties}
        settings = settings.model_copy(update={"kafka_properties": merged})
    return settings


def check_profile(profile: Profile) -> None:
    unknown = sorted(set(profile.values) - set(Settings.model_fields))
    if unknown:
        raise ProfileError(
            f"{profile.path}: profile {profile.name!r} has no such setting {', '.join(unknown)} "
            "(settings are named as the OMS_ variables, in lower case without OMS_: kafka_bootstrap_servers)"
        )


def settings_in_environment(environ: Mapping[str, str]) -> set[str]:
    """The settings an `OMS_` variable gives, as pydantic-settings reads them (case-insensitive)."""
    named = {name.upper() for name in environ}
    return {field for field in Settings.model_fields if f"OMS_{field.upper()}" in named}
