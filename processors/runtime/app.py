"""A Quix Streams application per processor: exactly-once, raw bytes in and out, topics from topology/."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import Topic, TopicConfig
from quixstreams.models.serializers import SerializationContext, Serializer
from quixstreams.models.topics.exceptions import TopicNotFoundError
from quixstreams.state.rocksdb import RocksDBOptions

from processors.runtime.clients import PREFETCH_KB
from processors.runtime.commits import wrap_commits
from processors.runtime.health import report_health
from processors.runtime.identity import instance_id
from processors.runtime.lifecycle import stop_survives_startup
from processors.runtime.records import Outgoing
from processors.runtime.retries import RetryPolicy, retrying
from topology.settings import JAVA_PARTITIONER, Settings
from topology.topics import TopicSpec

# Quix Streams' defaults (memtables of 64 MB, three of them, and a 1 GB block cache) let a store that takes
# every order's state on each message (the engine of processors run together) hold some 200 MB of it in memory.
STATE_STORE = RocksDBOptions(write_buffer_size=8 << 20, max_write_buffer_number=2, block_cache_size=32 << 20)


class OutgoingSerializer(Serializer):
    """Values reach the producer already encoded: Avro for records, original bytes for dead letters."""

    def __call__(self, value: Outgoing, ctx: SerializationContext) -> bytes | None:  # type: ignore[override]
        return value.value


def make_application(processor: str, settings: Settings, **overrides: Any) -> Application:
    """One consumer group per processor; several instances of it share the partitions."""
    connection, extra = connection_and_extra(settings.kafka_config())
    options: dict[str, Any] = {
        "broker_address": ConnectionConfig.from_librdkafka_dict(connection),
        "consumer_group": processor,
        "auto_offset_reset": "earliest",
        "processing_guarantee": "exactly-once",
        "commit_interval": settings.commit_interval_s,
        "consumer_poll_timeout": settings.poll_timeout_s,
        "state_dir": settings.run_dir / "state" / processor / instance_id(),
        "producer_extra_config": {
            **extra,
            # As `Settings.producer_config`: records keyed here meet those keyed by Java or kcat producers.
            "partitioner": JAVA_PARTITIONER,
            # Batches fill while the processor works; a commit flushes them anyway, so a caught-up
            # processor's records leave at once.
            "linger.ms": settings.producer_linger_ms,
            # Stable per instance: a restarted instance fences its crashed predecessor and aborts the
            # transaction it left open at once, instead of read_committed readers waiting for its timeout.
            "transactional.id": f"{processor}-{instance_id()}",
            "transaction.timeout.ms": settings.transaction_timeout_ms,
        },
        "consumer_extra_config": {
            **extra,
            # Processors that merge topics read them in timestamp order and wait for a fetch from every
            # partition before going on; an idle partition answers a fetch only after this wait.
            "fetch.wait.max.ms": settings.fetch_wait_ms,
            # How soon a crashed instance's partitions go to the others.
            "session.timeout.ms": settings.session_timeout_ms,
            # Static membership: a restarted instance takes its own partitions back at once. Without it, an
            # instance that died while the broker was down stays a member of the group the restarted broker
            # loads, and the group waits for it to rejoin for a whole max.poll.interval.ms (5 minutes) before
            # its successor gets any partition.
            "group.instance.id": f"{processor}-{instance_id()}",
            # librdkafka reads ahead up to 64 MB by default, held in the process while it is behind.
            "queued.max.messages.kbytes": PREFETCH_KB,
        },
        "loglevel": logging.getLevelName(settings.log_level),
        "rocksdb_options": STATE_STORE,
    }
    options.update(overrides)
    app = Application(**options)
    stop_survives_startup(app)
    report_health(app)
    wrap_commits(app, settings.min_commit_interval_s if settings.commit_when_caught_up else None)
    return app


def connection_and_extra(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a client configuration into what Quix Streams' `ConnectionConfig` takes (it refuses anything
    else) and the rest (`OMS_KAFKA_PROPERTIES`, the logger), which its producer and consumer take as extras."""
    known = set(ConnectionConfig.model_fields) | {"sasl_mechanisms"}
    connection = {key: value for key, value in config.items() if key.replace(".", "_") in known}
    return connection, {key: value for key, value in config.items() if key not in connection}


# Quix Streams creates a missing topic (a changelog, on a fresh broker) and reads its metadata back at once;
# a broker that has not yet spread the new topic's metadata answers that it does not exist (seen over
# SASL_SSL on a broker started seconds before). The next application built finds it.
BUILD_TRIES = 5
BUILD_RETRY_S = 1.0


def built(build: Callable[[], Application], tries: int = BUILD_TRIES, wait_s: float = BUILD_RETRY_S) -> Application:
    """`build()`, built again from scratch while a topic it created is not yet known to the broker."""
    policy = RetryPolicy(attempts=tries, first_delay_s=wait_s, max_delay_s=wait_s)
    app: Application = retrying(build, policy, retry_on=TopicNotFoundError)
    return app


def app_topic(app: Application, spec: TopicSpec, settings: Settings) -> Topic:
    """The Quix topic of a declaration: bytes in, `Outgoing` out, created as declared if missing."""
    return app.topic(
        spec.name,
        key_deserializer="bytes",
        value_deserializer="bytes",
        key_serializer="bytes",
        value_serializer=OutgoingSerializer(),
        config=TopicConfig(
            num_partitions=spec.partitions,
            replication_factor=settings.replication_factor,
            extra_config=spec.created_config(settings.min_insync_replicas),
        ),
    )
