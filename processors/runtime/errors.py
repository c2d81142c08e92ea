"""Whose fault a failure is: the message's (dead-letter it and go on) or the world's (an outage: pause and
try the same message again). Every consumer asks `is_outage`, so that a registry, broker or disk that is
down never turns good records into dead letters, slip faults or skipped timeline entries."""

from __future__ import annotations

import sqlite3

import httpx
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError
from quixstreams.kafka.exceptions import BaseKafkaException

from schemas.serde import RegistryNotReady

# The registry refusing or failing to answer, as opposed to answering that the schema does not exist:
# unauthorised or forbidden (credentials, ACLs), timed out, rate-limited.
_REGISTRY_OUTAGE_STATUSES = frozenset({401, 403, 408, 429})

# What Quix Streams reports of the broker itself (its delivery and consumer errors carry a librdkafka error,
# not a KafkaException): timeouts, connections, leaders, replicas, coordinators. A message the broker refuses
# for itself (too large, corrupt) is not among them.
_BROKER_ERROR_CODES = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.KAFKA_STORAGE_ERROR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_COORDINATOR,
    }
)

# SQLite's word for a file that is damaged or is no database: no message is to blame for that.
_BROKEN_FILE = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})

OUTAGE_EXIT_CODE = 75
"""How a process ends when an outage outlasted its retries (EX_TEMPFAIL): a supervisor restarts it with
backoff and does not count it as a crash of its own."""


CONFIG_EXIT_CODE = 78
"""How a process ends when its configuration is wrong (EX_CONFIG): a supervisor leaves it stopped, since a
restart would meet the same settings."""


class Outage(Exception):
    """A dependency is unavailable; the message that met it is not at fault."""


def is_outage(error: BaseException) -> bool:
    """Whether `error`, or anything that caused it, is a dependency failing rather than the message."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_outage_itself(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_outage_itself(error: BaseException) -> bool:
    if isinstance(error, SchemaRegistryError):
        status = error.http_status_code
        return status in _REGISTRY_OUTAGE_STATUSES or status >= 500 or status < 0
    if isinstance(error, BaseKafkaException):
        return bool(error.error.retriable()) or error.error.code() in _BROKER_ERROR_CODES
    if isinstance(error, sqlite3.DatabaseError) and getattr(error, "sqlite_errorname", None) in _BROKEN_FILE:
        return True  # a ledger's disk, not the message: like a full disk, it stops the processor
    return isinstance(
        error,
        Outage
        | RegistryNotReady
        | httpx.TransportError
        | KafkaException
        | sqlite3.OperationalError
        | OSError
        | TimeoutError,
    )
