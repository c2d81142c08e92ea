"""The processes `oms run` knows, declared once: the stream processors' specs, then the timers and the
fleet's gauges (plain Kafka clients), then the engine that runs the order-keyed processors together; the metrics
ports and the docs' table of processors follow this list."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from quixstreams import Application

from processors import intake, inventory, notifications, payments, stock, timers
from processors.fulfillment import host as activities
from processors.fulfillment import starter as fulfillment
from processors.runtime.app import built, make_application
from processors.runtime.chain import Chain, chain_of
from processors.runtime.colocated import CHAIN_PROCESSOR, wire_chain
from processors.runtime.discovery import announce
from processors.runtime.heap import freeze_startup_heap
from processors.runtime.identity import instance_id, instance_number
from processors.runtime.lifecycle import exit_on_outage
from processors.runtime.logs import configure_logging
from processors.runtime.metrics import serve_metrics
from processors.runtime.spec import ProcessorSpec, wire
from processors.runtime.tracing import configure_tracing
from processors.sagas import processor as sagas
from processors.tracking import fleet
from processors.tracking import processor as tracker
from schemas.registry import registry_client
from topology.settings import Settings

# The Quix Streams processors, in the order `oms run all` starts them. A new processor is one line here.
STREAM_PROCESSORS: tuple[ProcessorSpec, ...] = (
    intake.SPEC,
    payments.SPEC,
    inventory.SPEC,
    stock.SPEC,
    fulfillment.SPEC,
    activities.SPEC,
    notifications.SPEC,
    sagas.SPEC,
    tracker.SPEC,
)
METRICS_BASE_PORT = 9400


@dataclass(frozen=True)
class Service:
    group: str
    """The consumer group its instances share."""
    run: Callable[[Settings], None]
    """Runs one instance until SIGINT or SIGTERM."""


def stream_processor(spec: ProcessorSpec) -> Service:
    """A Quix Streams application; Quix commits and closes on SIGINT or SIGTERM."""

    def run(settings: Settings) -> None:
        def build() -> Application:
            app = make_application(spec.group, settings)
            wire(app, spec, settings, registry_client(settings))
            return app

        built(build).run()

    return Service(spec.group, run)


# The processors that share the order key, as one engine: their events handed over in memory.
CHAIN = chain_of(STREAM_PROCESSORS)
ENGINE = "orders"


def chain_processor(chain: Chain) -> Service:
    """The members of `chain` in one Quix Streams application, in a consumer group of its own."""

    def run(settings: Settings) -> None:
        def build() -> Application:
            app = make_application(CHAIN_PROCESSOR, settings)
            wire_chain(app, chain, settings, registry_client(settings))
            return app

        built(build).run()

    return Service(CHAIN_PROCESSOR, run)


SERVICES: dict[str, Service] = {
    **{spec.name: stream_processor(spec) for spec in STREAM_PROCESSORS},
    "timers": Service(timers.PROCESSOR, timers.run),
    "fleet": Service(fleet.PROCESSOR, fleet.run),
    ENGINE: chain_processor(CHAIN),
}


def instances_run(name: str, instances: int, settings: Settings) -> int:
    """How many instances of `name` `oms run all --instances INSTANCES` runs: the engine of the chain, at least
    `settings.engine_instances` (by default this machine's cores, at most the order topics' partitions)."""
    if name != ENGINE:
        return instances
    wanted = settings.engine_instances or min(os.cpu_count() or 1, settings.order_partitions)
    return max(instances, wanted)


def services_run(colocated: bool) -> list[str]:
    """What `oms run all` runs: the chain's members as one engine, or (not `colocated`) each alone."""
    if not colocated:
        return [name for name in SERVICES if name != ENGINE]
    members = {spec.name for spec in CHAIN.members}
    return [name for name in SERVICES if name not in members]


# Instance 0 of each service serves metrics on its own port, further instances 100 above, so that
# `ops/prometheus/prometheus.yml` finds `oms run all` without configuration.
METRICS_PORTS = {name: METRICS_BASE_PORT + index for index, name in enumerate(SERVICES)}


def metrics_port(service: str, instance: str) -> int | None:
    """`OMS_METRICS_PORT` when set (0: none); else the service's port, 100 above per numbered instance, so that
    numbered instances on one machine do not collide (an instance named otherwise, e.g. a host name, is the
    only one on its host and takes the service's own port)."""
    explicit = os.environ.get("OMS_METRICS_PORT")
    if explicit is not None:
        return int(explicit) or None
    base = METRICS_PORTS.get(service)
    if base is None:
        return None
    return base + 100 * (instance_number(instance) or 0)


def run(name: str, settings: Settings) -> None:
    instance = instance_id()
    configure_logging(settings.log_level, settings.log_format, name)
    configure_tracing(name, instance)
    port = metrics_port(name, instance)
    if serve_metrics(settings.metrics_host, port) and port is not None:
        announce(settings.run_dir, name, instance, settings.metrics_host, port)
    freeze_startup_heap()
    exit_on_outage(name, lambda: SERVICES[name].run(settings))
