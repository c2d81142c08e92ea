"""The local Apache Kafka: one combined broker+controller in KRaft mode on 127.0.0.1, plaintext or secure, on the
ports the settings give (`local_kafka_port` and `local_controller_port`, or their `local_secure_*` twins)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from ops.certificates import write_private
from ops.jvm import java_executable
from ops.localsecurity import (
    BROKER_USER,
    SCRAM_MECHANISM,
    USERS,
    client_settings,
    ensure_material,
    secure_dir,
    secure_files,
)
from ops.localserver import LocalServer, PlatformError
from ops.maven import kafka_libs
from topology.settings import LOCAL_HOST, Settings, local_bootstrap_servers

HOST = LOCAL_HOST
HEAP = "-Xmx512m"

# Single-node settings: internal topics with one replica, transactions (exactly-once) work on one broker,
# consumer groups form at once, and only declared topics exist.
SINGLE_NODE_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.listener.names=CONTROLLER
log.dirs={data_dir}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
"""

PLAINTEXT_LISTENERS = """\
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.quorum.bootstrap.servers={host}:{controller_port}
"""

# Clients authenticate with SCRAM-SHA-512 over TLS. The controller listener takes only TLS connections that
# show a certificate of the project's CA (in practice the broker's own), so no process on the machine reaches
# the cluster's metadata without a secret either.
SECURE_LISTENERS = """\
listeners=SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=SASL_SSL://{host}:{port}
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
inter.broker.listener.name=SASL_SSL
controller.quorum.bootstrap.servers={host}:{controller_port}
sasl.enabled.mechanisms={mechanism}
sasl.mechanism.inter.broker.protocol={mechanism}
listener.name.sasl_ssl.{mechanism_lower}.sasl.jaas.config={jaas}
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={truststore}
"""

LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka-request.name = kafka.request.logger
logger.kafka-request.level = WARN
"""


def kafka_server(settings: Settings) -> LocalServer:
    """The broker that `settings.local_security` asks for: plaintext, or SASL_SSL on ports of its own."""
    if settings.local_security == "sasl_ssl":
        return _secure_kafka_server(settings)
    run_dir = settings.run_dir / "kafka"
    return LocalServer(
        name="kafka",
        host=HOST,
        port=settings.local_kafka_port,
        run_dir=run_dir,
        cmdline_marker="kafka.Kafka",
        build_command=lambda: _prepare(run_dir, settings.cache_dir, plaintext_listeners(settings)),
        is_ready=lambda: _answers({"bootstrap.servers": local_bootstrap_servers(settings)}),
        start_timeout_s=60.0,
        port_settings={
            settings.local_kafka_port: "OMS_LOCAL_KAFKA_PORT",
            settings.local_controller_port: "OMS_LOCAL_CONTROLLER_PORT",
        },
    )


def plaintext_listeners(settings: Settings) -> str:
    """The plaintext broker's listeners: clients on `local_kafka_port`, the controller on its own port."""
    return PLAINTEXT_LISTENERS.format(
        host=HOST, port=settings.local_kafka_port, controller_port=settings.local_controller_port
    )


def _secure_kafka_server(settings: Settings) -> LocalServer:
    run_dir = secure_dir(settings) / "kafka"

    def build_command() -> list[str]:
        files = secure_files(settings)
        passwords = ensure_material(files)
        listeners = SECURE_LISTENERS.format(
            host=HOST,
            port=settings.local_secure_kafka_port,
            controller_port=settings.local_secure_controller_port,
            mechanism=SCRAM_MECHANISM,
            mechanism_lower=SCRAM_MECHANISM.lower(),
            jaas=scram_jaas(BROKER_USER, passwords[BROKER_USER]),
            keystore=files.broker_keystore,
            truststore=files.ca_certificate,
        )
        # KRaft keeps SCRAM credentials in the cluster metadata: they are written when the storage is formatted.
        credentials = [f"{SCRAM_MECHANISM}=[name={user},password={passwords[user]}]" for user in USERS]
        return _prepare(
            run_dir, settings.cache_dir, listeners, [arg for c in credentials for arg in ("--add-scram", c)]
        )

    return LocalServer(
        name="kafka",
        host=HOST,
        port=settings.local_secure_kafka_port,
        run_dir=run_dir,
        cmdline_marker="kafka.Kafka",
        build_command=build_command,
        is_ready=lambda: _answers(client_settings(settings).kafka_config()),
        start_timeout_s=60.0,
        port_settings={
            settings.local_secure_kafka_port: "OMS_LOCAL_SECURE_KAFKA_PORT",
            settings.local_secure_controller_port: "OMS_LOCAL_SECURE_CONTROLLER_PORT",
        },
    )


def scram_jaas(user: str, password: str) -> str:
    return f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";'


def _prepare(run_dir: Path, cache_dir: Path, listeners: str, format_options: list[str] | None = None) -> list[str]:
    """Fetch the jars, write the configuration, format the storage once; return the start command."""
    classpath = f"{kafka_libs(cache_dir)}/*"
    java = str(java_executable())
    data_dir = run_dir / "data"
    properties = run_dir / "server.properties"
    # Owner-only: the secure broker's properties hold its password.
    write_private(properties, (SINGLE_NODE_PROPERTIES.format(data_dir=data_dir) + listeners).encode())
    log4j = run_dir / "log4j2.properties"
    log4j.write_text(LOG4J2_PROPERTIES)
    if not (data_dir / "meta.properties").exists():
        _format_storage(java, classpath, properties, format_options or [])
    return [
        java,
        HEAP,
        "-XX:+UseG1GC",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(properties),
    ]


def _format_storage(java: str, classpath: str, properties: Path, options: list[str]) -> None:
    """Format the storage; `options` may hold SCRAM passwords, so they reach the tool through an owner-only
    argument file (`java @file`), not the command line that any user of the machine can read in /proc."""
    storage_tool = ["-cp", classpath, "kafka.tools.StorageTool"]
    cluster_id = _run([java, *storage_tool, "random-uuid"]).strip().splitlines()[-1]
    arguments = properties.parent / "format.args"
    format_command = [*storage_tool, "format", "-t", cluster_id, "-c", str(properties), "--standalone", *options]
    write_private(arguments, argument_file(format_command).encode())
    try:
        _run([java, f"@{arguments}"])
    finally:
        arguments.unlink()


def argument_file(arguments: list[str]) -> str:
    """The text of a java launcher argument file: one argument a line, each quoted, so any may hold spaces."""
    return "".join('"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"\n' for argument in arguments)


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PlatformError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def _answers(client_config: dict[str, Any]) -> bool:
    admin = AdminClient({**client_config, "log_level": 0})
    try:
        admin.list_topics(timeout=2)
    except Exception:
        return False
    return True
