"""Switching between the order-keyed processors run alone and run together: the groups that start take over
where the stopped ones stand.

The engine (`oms run orders`) and the processors it runs have consumer groups of their own: started without
a hand-over, a group that has never committed reads from the beginning (every order placed again), and one
that committed long ago reads everything since. `hand_over` commits the starting groups' offsets from the
stopped groups' (docs/adr/0002-co-location.md, "Switching modes"):

- to the engine, on each partition of each of its inputs: the least offset committed by the processors that
  read it alone, so that nothing any of them had still to read is skipped (a record read twice is harmless:
  the outside systems' calls carry idempotency keys);
- to each processor alone, on each partition it reads: the engine's offset where the engine reads the topic
  from Kafka, and the end where the engine handed its records over in memory (it has handled them all).

A partition the stopped groups never committed is left uncommitted: it is read from its beginning, as it
would have been by them.

Every group involved must be stopped. State does not move between the modes: an order in flight at a switch
goes on in the state it had in the mode that ran it last, so switch on a quiet platform.
"""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from ops.replay import Move, apply, committed
from processors.runtime.chain import Chain
from topology.settings import Settings

TIMEOUT_S = 10.0
REACHABLE_TIMEOUT_S = 3.0


def hand_over(settings: Settings, chain: Chain, engine_group: str, to_colocated: bool) -> dict[str, list[Move]]:
    """Commit the offsets of the mode that starts (the engine when `to_colocated`) from the stopped mode's;
    what was committed, by group."""
    admin = AdminClient(settings.kafka_config())
    ends = _ends(settings, {topic.name for spec in chain.members for topic in spec.inputs})
    if to_colocated:
        by_group = {spec.group: _positions(admin, spec.group) for spec in chain.members}
        inputs = {topic.name for topic in chain.inputs}
        targets = {
            tp: min(positions[tp] for positions in by_group.values() if tp in positions)
            for tp in ends
            if tp[0] in inputs and any(tp in positions for positions in by_group.values())
        }
        moves = {engine_group: _moves(_positions(admin, engine_group), targets)}
    else:
        engine = _positions(admin, engine_group)
        moves = {}
        for spec in chain.members:
            read = {topic.name for topic in spec.inputs}
            targets = {
                tp: end if tp[0] in chain.chained else engine[tp]
                for tp, end in ends.items()
                if tp[0] in read and (tp[0] in chain.chained or tp in engine)
            }
            moves[spec.group] = _moves(_positions(admin, spec.group), targets)
    for group, planned in moves.items():
        apply(settings, group, planned)
    return moves


def take_over(settings: Settings, chain: Chain, engine_group: str, colocated: bool) -> dict[str, list[Move]]:
    """Hand over to the mode about to start (`colocated`: the engine) when the other mode ran since it last did:
    when a group of the other mode has read further on some partition that both modes read from Kafka.
    Nothing, when this mode ran last."""
    admin = AdminClient(settings.kafka_config())
    engine = _positions(admin, engine_group)
    external = {topic.name for topic in chain.inputs}
    furthest_alone: dict[tuple[str, int], int] = {}
    for spec in chain.members:
        for tp, offset in _positions(admin, spec.group).items():
            if tp[0] in external:
                furthest_alone[tp] = max(furthest_alone.get(tp, -1), offset)
    if colocated:
        other_ran = any(offset > engine.get(tp, -1) for tp, offset in furthest_alone.items())
    else:
        other_ran = any(offset > furthest_alone.get(tp, -1) for tp, offset in engine.items())
    return hand_over(settings, chain, engine_group, colocated) if other_ran else {}


def _positions(admin: AdminClient, group: str) -> dict[tuple[str, int], int]:
    return {(tp.topic, tp.partition): tp.offset for tp in committed(admin, group) if tp.offset >= 0}


def _moves(current: dict[tuple[str, int], int], targets: dict[tuple[str, int], int]) -> list[Move]:
    return [
        Move(topic, partition, current.get((topic, partition)), target)
        for (topic, partition), target in targets.items()
    ]


def _ends(settings: Settings, topics: set[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer({**settings.kafka_config(), "group.id": "oms-handover", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=TIMEOUT_S).topics
        ends = {}
        for topic in sorted(topics):
            for partition in metadata[topic].partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S)
                ends[(topic, partition)] = high
        return ends
    finally:
        consumer.close()


def before_run_all(settings: Settings) -> list[str]:
    """`take_over` for the mode `oms run all` runs in (`settings.colocated`); a line per group moved. A broker
    that does not answer is no reason not to start: the processors wait for it."""
    from processors.services import CHAIN, ENGINE, SERVICES

    try:
        AdminClient(settings.kafka_config()).list_topics(timeout=REACHABLE_TIMEOUT_S)
    except KafkaException as error:
        return [f"could not check which mode ran last, the broker does not answer: {error}"]
    moved = take_over(settings, CHAIN, SERVICES[ENGINE].group, settings.colocated)
    mode = "together" if settings.colocated else "alone"
    return [
        f"{group} takes over where the processors left off (now run {mode}): {len(moves)} partitions committed"
        for group, moves in moved.items()
    ]
