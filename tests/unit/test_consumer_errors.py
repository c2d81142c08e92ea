"""Which consumer errors end the plain consumers' loops (the tracker's, the timers')."""

from __future__ import annotations

from confluent_kafka import KafkaError

from processors.runtime.clients import is_fatal


def test_a_fenced_static_member_is_fatal_though_its_error_event_does_not_say_so() -> None:
    fenced = KafkaError(KafkaError._FATAL, "Static consumer fenced by other consumer with same group.instance.id")

    assert not fenced.fatal()
    assert is_fatal(fenced)


def test_errors_librdkafka_recovers_from_are_not_fatal() -> None:
    assert not is_fatal(KafkaError(KafkaError._TRANSPORT, "broker down"))
    assert not is_fatal(KafkaError(KafkaError._PARTITION_EOF))
    assert is_fatal(KafkaError(KafkaError._FENCED, fatal=True))
