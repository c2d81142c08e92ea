"""The local Apache Kafka: one combined broker+controller in KRaft mode on 127.0.0.1."""

from __future__ import annotations

import subprocess
from pathlib import Path

from confluent_kafka.admin import AdminClient

from ops.jvm import java_executable
from ops.localserver import LocalServer, PlatformError
from ops.maven import kafka_libs
from topology.settings import Settings

HOST = "127.0.0.1"
BROKER_PORT = 9092
CONTROLLER_PORT = 9093
HEAP = "-Xmx512m"

# Single-node settings: internal topics with one replica, transactions (exactly-once) work on one broker,
# consumer groups form at once, and only declared topics exist.
SERVER_PROPERTIES = f"""\
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://{HOST}:{BROKER_PORT},CONTROLLER://{HOST}:{CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://{HOST}:{BROKER_PORT}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.quorum.bootstrap.servers={HOST}:{CONTROLLER_PORT}
log.dirs={{data_dir}}
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
    run_dir = settings.run_dir / "kafka"
    return LocalServer(
        name="kafka",
        host=HOST,
        port=BROKER_PORT,
        run_dir=run_dir,
        cmdline_marker="kafka.Kafka",
        build_command=lambda: _prepare(run_dir, settings.cache_dir),
        is_ready=_answers,
        start_timeout_s=60.0,
    )


def _prepare(run_dir: Path, cache_dir: Path) -> list[str]:
    """Fetch the jars, write the configuration, format the storage once; return the start command."""
    classpath = f"{kafka_libs(cache_dir)}/*"
    java = str(java_executable())
    data_dir = run_dir / "data"
    properties = run_dir / "server.properties"
    properties.write_text(SERVER_PROPERTIES.format(data_dir=data_dir))
    log4j = run_dir / "log4j2.properties"
    log4j.write_text(LOG4J2_PROPERTIES)
    if not (data_dir / "meta.properties").exists():
        _format_storage(java, classpath, properties)
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


def _format_storage(java: str, classpath: str, properties: Path) -> None:
    storage_tool = [java, "-cp", classpath, "kafka.tools.StorageTool"]
    cluster_id = _run([*storage_tool, "random-uuid"]).strip().splitlines()[-1]
    _run([*storage_tool, "format", "-t", cluster_id, "-c", str(properties), "--standalone"])


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PlatformError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def _answers() -> bool:
    admin = AdminClient({"bootstrap.servers": f"{HOST}:{BROKER_PORT}", "log_level": 0})
    try:
        admin.list_topics(timeout=2)
    except Exception:
        return False
    return True
