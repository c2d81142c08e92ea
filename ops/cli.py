"""`oms`: the command line of the order-management system. `oms --help` lists the verbs."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.connection_options import connection_options, flag_environment
from ops.failures import INTERRUPTED, UNAVAILABLE, USAGE, failure, unreachable
from ops.localserver import PlatformError
from ops.maven import FetchError, pinned_versions
from ops.reachability import KAFKA, REGISTRY
from ops.terminal import escaped_output
from topology.profiles import ConfigFileMissing, ProfileError, selected_profile
from topology.settings import KAFKA_CLIENT_LOGGER, Settings, get_settings

if TYPE_CHECKING:
    from ops.orders import OrderMix
    from topology.drift import TopicComparison

Handler = Callable[[argparse.Namespace, Settings], int]
BOTH = (KAFKA, REGISTRY)
CANCEL_TIMED_OUT = 3  # `oms cancel --wait`'s exit status when no answer came in time (1 is a rejection)
REDRIVE_FENCED = 1  # `oms dlq redrive`'s exit status when another redrive of the topic took over
PROCESSORS_NEED_AN_OPERATOR = 3  # `oms status`'s when `oms run all` has a processor left stopped or crash-looping


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from ops import platform

    settings = _with_local_security(args, settings)
    for message in platform.up(settings):
        print(message)
    if settings.local_security == "sasl_ssl":
        from ops.localsecurity import client_environment, write_client_env

        env_file = write_client_env(settings)
        print(f"clients of the secure platform need the settings in {env_file} (`set -a; . {env_file}; set +a`):")
        for name, value in client_environment(settings, secrets_shown=False).items():
            print(f"  {name}={value}")
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from ops import platform

    for message in platform.down(_with_local_security(args, settings)):
        print(message)
    return 0


def _with_local_security(args: argparse.Namespace, settings: Settings) -> Settings:
    """`--secure` is `OMS_LOCAL_SECURITY=sasl_ssl` for one command."""
    return settings.model_copy(update={"local_security": "sasl_ssl"}) if args.secure else settings


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """The Kafka cluster and registry the settings name, wherever they are; the local servers when the settings
    name those; then every `oms run all` on this run folder. Exits 1 when something named does not answer,
    PROCESSORS_NEED_AN_OPERATOR when a running supervisor has a processor left stopped or crash-looping."""
    from ops import runstate
    from ops.status_view import configured_endpoints, endpoint_line, status_json, uses_local_platform

    endpoints = configured_endpoints(settings)
    local = _local_servers(settings) if uses_local_platform(settings) else []
    lines, troubled = runstate.processors_report(settings.run_dir)
    all_up = all(endpoint.answering for endpoint in endpoints) and all(server["answering"] for server in local)
    if args.json:
        processors = [
            {**dataclasses.asdict(state), "file": str(path), "alive": runstate.is_alive(state)}
            for path, state in runstate.read_all(settings.run_dir)
        ]
        print(json.dumps(status_json(endpoints, local, processors), indent=2))
    else:
        for endpoint in endpoints:
            print(endpoint_line(endpoint))
        if local:
            print("local servers (`oms up`):")
        for server in local:
            state = "up" if server["answering"] else ("starting" if server["pid"] else "down")
            pid = f"pid {server['pid']}" if server["pid"] else "no process"
            note = f"  ({server['note']})" if server["note"] else ""
            print(f"  {server['name']:<9} {state:<9} {server['address']:<16} {pid:<11} {server['version']}{note}")
            print(f"  {'':<9} log: {server['log_file']}")
        for line in lines:
            print(line)
    if troubled:
        return PROCESSORS_NEED_AN_OPERATOR
    return 0 if all_up else 1


def _local_servers(settings: Settings) -> list[dict[str, Any]]:
    """The local servers `oms up` runs, as `oms status` reports them."""
    from ops import platform

    versions = pinned_versions()
    labels = {
        "kafka": f"Apache Kafka {versions['kafka.version']}",
        "registry": f"Apicurio Registry {versions['apicurio.version']}",
    }
    return [
        {
            "name": status.name,
            "answering": status.answering,
            "address": status.address,
            "pid": status.pid,
            "version": labels[status.name],
            "log_file": str(status.log_file),
            "note": status.note,
        }
        for status in platform.status(settings)
    ]


def cmd_topics_apply(args: argparse.Namespace, settings: Settings) -> int:
    from topology.admin import apply
    from topology.topics import ALL_TOPICS

    report = apply(settings, ALL_TOPICS)
    if args.json:
        drifted = [{"topic": c.declared.name, "differences": list(c.differences)} for c in report.drifted]
        print_json({"created": report.created, "in_sync": report.in_sync, "drifted": drifted})
        return 0
    for name in report.created:
        print(f"created  {name}")
    for comparison in report.drifted:
        print(f"DRIFT    {comparison.declared.name}: {'; '.join(comparison.differences)}")
    print(
        f"{len(report.created)} created, {len(report.in_sync)} in sync, {len(report.drifted)} drifted "
        f"(drift is reported, never changed or deleted)"
    )
    return 0


def cmd_topics_list(args: argparse.Namespace, settings: Settings) -> int:
    from topology.admin import inspect
    from topology.drift import TopicStatus
    from topology.topics import ALL_TOPICS

    comparisons = inspect(settings, ALL_TOPICS)
    in_sync = all(c.status is TopicStatus.IN_SYNC for c in comparisons)
    if args.json:
        print_json([topic_row(c) for c in comparisons])
        return 0 if in_sync else 1
    print(f"{'topic':<42} {'declared':<22} {'actual':<22} status")
    for c in comparisons:
        declared = f"{c.declared.partitions}p {c.declared.cleanup_policy}"
        actual = f"{c.actual.partitions}p {c.actual.config.get('cleanup.policy', '?')}" if c.actual else "-"
        detail = f": {'; '.join(c.differences)}" if c.differences else ""
        print(f"{c.declared.name:<42} {declared:<22} {actual:<22} {c.status}{detail}")
    return 0 if in_sync else 1


def topic_row(comparison: TopicComparison) -> dict[str, Any]:
    declared, actual = comparison.declared, comparison.actual
    return {
        "topic": declared.name,
        "declared": {"partitions": declared.partitions, "cleanup_policy": declared.cleanup_policy},
        "actual": None
        if actual is None
        else {
            "partitions": actual.partitions,
            "replication_factor": actual.replication_factor,
            "cleanup_policy": actual.config.get("cleanup.policy"),
        },
        "status": str(comparison.status),
        "differences": list(comparison.differences),
    }


def print_json(data: object) -> None:
    """What `--json` prints: indented, anything not JSON of itself (times, ids) as its string."""
    print(json.dumps(data, indent=2, default=str))


def cmd_schemas_register(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.registry import COMPATIBILITY_LEVEL, declared_subjects, register, registry_client

    registered = register(registry_client(settings), declared_subjects())
    if args.json:
        print_json({"compatibility": COMPATIBILITY_LEVEL, "subjects": registered})
        return 0
    for subject, schema_id in registered.items():
        print(f"{subject:<64} id {schema_id}")
    print(f"every subject's compatibility: {COMPATIBILITY_LEVEL}")
    return 0


def cmd_schemas_check(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.catalog import SCHEMA_DIR
    from schemas.registry import COMPATIBILITY_LEVEL, check, declared_subjects, registry_client

    client = registry_client(settings)
    results = [(subject, check(client, subject)) for subject in declared_subjects()]
    failures = sum(1 for _, result in results if not result.compatible)
    if args.json:
        rows = [
            {
                "subject": result.subject,
                "schema": str(subject.schema.path.relative_to(SCHEMA_DIR.parent)),
                "compatible": result.compatible,
                "registered_versions": result.registered_versions,
                "reasons": list(result.reasons),
            }
            for subject, result in results
        ]
        print_json({"compatibility": COMPATIBILITY_LEVEL, "subjects": rows})
        return 1 if failures else 0
    print(f"checking under {COMPATIBILITY_LEVEL}: old consumers read new records, new consumers read old ones")
    for subject, result in results:
        if result.compatible:
            state = "new subject" if result.registered_versions == 0 else "compatible"
            print(f"ok            {result.subject} ({state})")
            continue
        print(f"INCOMPATIBLE  {result.subject} ({subject.schema.path.relative_to(SCHEMA_DIR.parent)})")
        for reason in result.reasons:
            print(f"              {reason}")
    if failures:
        print(
            f"{failures} schema(s) would break a producer or consumer on another version; "
            "add and remove only fields that have defaults, keep types and names, or add a new record type instead."
        )
    return 1 if failures else 0


def cmd_schemas_codegen(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.codegen import write

    print(f"wrote {write()}")
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from ops import bench
    from ops.orders import OrderMix

    mix = OrderMix.parse(args.mix) if args.mix else None
    if args.in_process:
        return bench_in_process(args, settings, mix)
    processors_from = args.processors_from.resolve() if args.processors_from else None
    if processors_from is not None and not (processors_from / "ops" / "cli.py").is_file():
        print(f"oms: --processors-from: {processors_from} is not a checkout of this project", file=sys.stderr)
        return 2
    try:
        result = bench.run(
            settings,
            orders=args.orders,
            mix=mix,
            cancel_rate=args.cancel_rate,
            processors_from=processors_from,
            steady_rate=args.steady_rate,
            progress=None,
        )
    except bench.GroupsBusy as error:
        print(f"oms: {error}", file=sys.stderr)
        return 2
    for line in bench.report_lines(result):
        print(line)
    print(f"saved {bench.save(result)}")
    return 0


def bench_in_process(args: argparse.Namespace, settings: Settings, mix: OrderMix | None) -> int:
    from ops import bench, code_cost

    if args.processors_from or args.steady_rate:
        print("oms: --in-process measures this checkout's code alone, at no rate", file=sys.stderr)
        return 2
    result = code_cost.measure(settings, orders=args.orders, mix=mix, cancel_rate=args.cancel_rate)
    for line in code_cost.report_lines(result):
        print(line)
    print(f"saved {bench.save(result)}")
    return 0


def cmd_chaos(args: argparse.Namespace, settings: Settings) -> int:
    from ops import bench, chaos
    from ops.fulldisk import LedgerDisk
    from ops.handover import before_run_all
    from processors.services import SERVICES, services_run
    from topology.admin import admin_client, wait_for_group

    plan = chaos.ChaosPlan(
        orders=args.orders,
        kills=args.kills,
        kill_every_s=args.kill_every,
        cancel_share=args.cancel_share,
        seed=args.seed,
        broker_restarts=args.broker_restarts,
        registry_restarts=args.registry_restarts,
        freeze_s=args.freeze,
        disk_full_s=args.disk_full,
        outcome_timeout_s=args.timeout,
    )
    admin = admin_client(settings)
    groups = [service.group for service in SERVICES.values()]
    with chaos.platform_lock():
        try:
            bench.ensure_groups_free(admin, groups, settings)
        except bench.GroupsBusy as error:
            print(f"oms: {error}", file=sys.stderr)
            return 2
        for line in before_run_all(settings):
            print(line)
        running = services_run(settings.colocated)
        with LedgerDisk(settings.simulators_path) as disk:
            fleet = chaos.Fleet.of_children(settings, running)
            try:
                for name in running:
                    wait_for_group(admin, SERVICES[name].group, members=1)
                result = chaos.run_chaos(settings, fleet, plan, echo=print, disk=disk)
            finally:
                fleet.stop()
                chaos.restart_platform(settings)
    print(result.report())
    return 0 if result.ok else 1


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from processors.services import SERVICES, instances_run, run, services_run

    if args.processor not in (*SERVICES, "all"):
        print(f"oms run: no processor {args.processor!r}; choose from {', '.join(SERVICES)} or all", file=sys.stderr)
        return 2
    if args.processor != "all":
        run(args.processor, settings)
        return 0
    from ops.handover import before_run_all
    from ops.replay import GroupActive
    from ops.supervisor import Supervisor

    try:
        for line in before_run_all(settings):
            print(line)
    except GroupActive as error:
        print(f"oms run all: {error}", file=sys.stderr)
        return 2
    count = functools.partial(instances_run, settings=settings)
    return Supervisor.for_processors(services_run(settings.colocated), args.instances, settings, count=count).run()


def cmd_produce_orders(args: argparse.Namespace, settings: Settings) -> int:
    from ops.orders import OrderMix, generate_orders, stock_shortfalls, summary
    from ops.produce import CancellationPlan, DeliveryFailed, produce_orders
    from processors.adapters.catalog import DEMO_STOCK

    try:
        mix = OrderMix.parse(args.mix) if args.mix else OrderMix()
    except ValueError as error:
        print(f"oms: --mix: {error}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    prefix = args.prefix or f"s{seed}-{int(time.time()):x}"
    orders = generate_orders(args.count, seed, prefix=prefix, mix=mix)
    for sku, (demand, stock) in stock_shortfalls(orders, DEMO_STOCK).items():
        print(f"note: up to {demand} units of {sku} may be reserved, its demo stock is {stock}; labels may not hold")
    plan = CancellationPlan(args.cancel_rate, seed, args.cancel_within) if args.cancel_rate else None
    try:
        report = produce_orders(
            settings, [order.record for order in orders], args.rate, progress=args.progress, cancellations=plan
        )
    except DeliveryFailed as error:
        print(f"oms: {error}", file=sys.stderr)
        return 1
    cancels = report.delivered - len(orders)
    print(
        f"produced {len(orders)} orders{f' and {cancels} cancellations' if cancels else ''} to {report.topic} "
        f"in {report.elapsed_s:.2f}s ({report.rate_per_s:,.0f}/s); "
        f"seed {seed}, ids {orders[0].order_id} .. {orders[-1].order_id}"
    )
    for line in summary(orders):
        print(line)
    return 0


def cmd_stock_set(args: argparse.Namespace, settings: Settings) -> int:
    from ops.stock import set_stock
    from processors.adapters.catalog import PRODUCTS_BY_SKU

    if args.sku not in PRODUCTS_BY_SKU:
        print(f"note: {args.sku} is not in the demo catalog (processors/adapters/catalog.py)")
    set_stock(settings, {args.sku: args.quantity})
    print(f"{args.sku} available {args.quantity}")
    return 0


def cmd_stock_seed(args: argparse.Namespace, settings: Settings) -> int:
    from ops.stock import set_stock
    from processors.adapters.catalog import DEMO_STOCK

    set_stock(settings, DEMO_STOCK)
    print(f"set the stock of {len(DEMO_STOCK)} SKUs of the demo catalog ({sum(DEMO_STOCK.values()):,} units)")
    return 0


def cmd_stock_show(args: argparse.Namespace, settings: Settings) -> int:
    from ops.stock import read_stock
    from processors.adapters.catalog import PRODUCTS_BY_SKU

    levels = read_stock(settings)
    if args.json:
        print_json(
            [
                {"sku": sku, "available": available, "product": p.name if (p := PRODUCTS_BY_SKU.get(sku)) else None}
                for sku, available in levels.items()
            ]
        )
        return 0
    if not levels:
        print("no stock levels yet; `oms stock seed` sets the demo catalog's")
        return 0
    print(f"{'sku':<16} {'available':>9}  product")
    for sku, available in levels.items():
        product = PRODUCTS_BY_SKU.get(sku)
        print(f"{sku:<16} {available:>9,}  {product.name if product else '(not in the demo catalog)'}")
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from ops.produce import produce_cancel

    if args.wait:
        return _cancel_and_wait(args, settings)
    command = produce_cancel(settings, args.order_id, args.reason)
    print(f"asked to cancel {command.order_id} (event id {command.event_id})")
    return 0


def _cancel_and_wait(args: argparse.Namespace, settings: Settings) -> int:
    from ops.cancel import cancel_and_wait, default_wait_s

    timeout_s = default_wait_s(settings) if args.timeout is None else args.timeout
    command, answer = cancel_and_wait(settings, args.order_id, args.reason, timeout_s)
    print(f"asked to cancel {command.order_id} (event id {command.event_id})")
    if answer is None:
        print(
            f"oms: no answer to the cancellation within {timeout_s:g}s; the saga may still decide it "
            f"(`oms track {command.order_id}` shows where it stands)",
            file=sys.stderr,
        )
        return CANCEL_TIMED_OUT
    print("\n".join(answer.lines))
    return 0 if answer.outcome == "cancelled" else 1


def cmd_sagas_retry(args: argparse.Namespace, settings: Settings) -> int:
    from ops.produce import produce_retries
    from ops.sagas import retry_choice
    from ops.tracking import read_view

    if not args.order_ids and args.state is None:
        print("oms: name the orders, or choose them with --state Failed [--reason TEXT]", file=sys.stderr)
        return 2
    chosen, refused = retry_choice(read_view(settings), args.order_ids, args.state, args.reason, force=args.force)
    for order_id, why in refused:
        print(f"oms: {order_id}: {why}; only a saga that ended Failed resumes (--force sends anyway)")
    for order_id, reason in chosen:
        print(f"{'would resume' if args.dry_run else 'resuming'} {order_id}  ({reason or 'no reason recorded'})")
    if chosen and not args.dry_run:
        produce_retries(settings, [order_id for order_id, _ in chosen])
        print(f"asked {len(chosen)} failed sagas to resume; see oms.sagas.events")
    if not chosen:
        print("no saga to resume")
    return 1 if refused else 0


def cmd_sagas_diagram(args: argparse.Namespace, settings: Settings) -> int:
    from ops.sagas import DOCS, diagram_block, write_diagram

    return _generated_block(args.write, diagram_block, write_diagram, DOCS)


def cmd_sagas_rules(args: argparse.Namespace, settings: Settings) -> int:
    from ops.sagas import DOCS, write_rules
    from processors.sagas.rules import rules_table

    return _generated_block(args.write, rules_table, write_rules, DOCS)


def cmd_intake_rules(args: argparse.Namespace, settings: Settings) -> int:
    from ops.producing import DOC, rules_table, write_rules_table

    return _generated_block(args.write, rules_table, write_rules_table, DOC)


def _generated_block(write: bool, block: Callable[[], str], write_block: Callable[[], bool], docs: Path) -> int:
    """Print a generated block of the docs, or (`write`) refresh it in `docs`."""
    if not write:
        print(block())
    elif write_block():
        print(f"updated {docs}")
    else:
        print(f"{docs} is up to date")
    return 0


def cmd_processors(args: argparse.Namespace, settings: Settings) -> int:
    from ops.processors import DOCS, processor_rows, table_block, write_table

    if args.json and not args.write:
        print_json(processor_rows())
        return 0
    return _generated_block(args.write, table_block, write_table, DOCS)


def cmd_track(args: argparse.Namespace, settings: Settings) -> int:
    from ops.tracking import as_json, read_timeline, timeline_lines

    timeline = read_timeline(settings, args.order_id)
    if timeline is None:
        print(f"oms: no timeline for {args.order_id} (is the tracker running: `oms run all`?)", file=sys.stderr)
        return 1
    print(as_json([timeline]) if args.json else "\n".join(timeline_lines(timeline, stuck_after(settings))))
    return 0


def cmd_slips_list(args: argparse.Namespace, settings: Settings) -> int:
    from ops.tracking import as_json, read_view, slip_rows

    found = slip_rows(read_view(settings), args.stuck, args.faulted, stuck_after(settings))
    if args.json:
        print(as_json(found))
        return 0
    print(f"{'order':<30} {'slip':<20} {'status':<13} last progress")
    for timeline in found:
        print(f"{timeline.order_id:<30} {timeline.slip:<20} {timeline.status:<13} {timeline.last_progress_at:%H:%M:%S}")
    print(f"{len(found)} slips")
    return 0


def cmd_sagas_list(args: argparse.Namespace, settings: Settings) -> int:
    from ops.tracking import as_json, read_view, saga_rows

    found = saga_rows(read_view(settings), args.state)
    if args.json:
        print(as_json(found))
        return 0
    print(f"{'order':<30} {'state':<24} {'last progress':<14} reason")
    for timeline in found:
        print(
            f"{timeline.order_id:<30} {timeline.saga:<24} {timeline.last_progress_at:%H:%M:%S}       "
            f"{timeline.saga_reason or ''}"
        )
    print(f"{len(found)} sagas")
    return 0


def stuck_after(settings: Settings) -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.stuck_after_s)


def cmd_dashboards_write(args: argparse.Namespace, settings: Settings) -> int:
    from ops.dashboards import DASHBOARDS, write_dashboards

    changed = write_dashboards()
    for path in changed:
        print(f"wrote {path}")
    print(f"{len(DASHBOARDS)} dashboards, {len(changed)} changed")
    return 0


def cmd_profiles(args: argparse.Namespace, settings: Settings) -> int:
    """The profiles of the config file, where each points, and which one is in use; no secret."""
    from topology.profiles import PROFILE_VARIABLE, config_path, read_profiles

    path = config_path(os.environ)
    profiles = read_profiles(path) if path.is_file() else {}
    chosen = os.environ.get(PROFILE_VARIABLE)
    rows = [
        {
            "profile": name,
            "in_use": name == chosen,
            "kafka_bootstrap_servers": profile.values.get("kafka_bootstrap_servers"),
            "schema_registry_url": profile.values.get("schema_registry_url"),
        }
        for name, profile in sorted(profiles.items())
    ]
    if args.json:
        print_json({"config": str(path), "profiles": rows})
        return 0
    if not rows:
        print(f"no profile in {path}: a [profiles.NAME] table makes one (docs/operations.md)")
        return 0
    print(f"profiles in {path} (* in use):")
    for row in rows:
        mark = "*" if row["in_use"] else " "
        kafka, registry = row["kafka_bootstrap_servers"] or "-", row["schema_registry_url"] or "-"
        print(f"{mark} {row['profile']:<16} {kafka:<48} {registry}")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    from ops.settings_view import settings_json, settings_rows

    flagged = frozenset(flag_environment(args, {}))
    rows = settings_rows(settings, flagged=flagged, profile=selected_profile(os.environ))
    if args.json:
        print(settings_json(rows))
        return 0
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value}  ({source})")
    return 0


def cmd_timers(args: argparse.Namespace, settings: Settings) -> int:
    from ops.timers_view import pending_timers, print_timers, timer_row
    from processors.runtime.records import utc_now

    timers, unreadable = pending_timers(settings, args.order_id)
    if args.json:
        print_json({"pending": [timer_row(timer) for timer in timers], "not_timers": unreadable})
        return 0
    print_timers(timers, unreadable, utc_now())
    return 0


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from ops.deploy import generated_files, write_files
    from ops.kubernetes import remove_stale_files

    if args.json and not args.write:
        print_json([str(path) for path in generated_files()])
        return 0
    if not args.write:
        for path in generated_files():
            print(path)
        return 0
    changed = write_files()
    removed = remove_stale_files()
    for path in changed:
        print(f"wrote {path}")
    for path in removed:
        print(f"removed {path}")
    print(f"{len(generated_files())} files, {len(changed)} changed, {len(removed)} removed")
    return 0


def cmd_dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    from ops.deadletters import dead_letters, plain, redriven, shown_key

    letters = dead_letters(settings, args.topic)
    done = redriven(settings)
    if args.json:
        rows = [
            {
                "partition": letter.partition,
                "offset": letter.offset,
                "key": (letter.key or b"").decode(errors="replace"),
                "processor": letter.processor,
                "error": letter.error,
                "original": letter.original,
                "redriven": letter.original in done,
            }
            for letter in letters
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'offset':>8} {'key':<28} {'processor':<18} {'redriven':<8} error")
    for letter in letters:
        redrove = "yes" if letter.original in done else "no"
        processor, error = plain(letter.processor), plain(letter.error[:100])
        print(f"{letter.offset:>8} {shown_key(letter):<28} {processor:<18} {redrove:<8} {error}")
    print(f"{len(letters)} dead letters")
    return 0


def cmd_dlq_redrive(args: argparse.Namespace, settings: Settings) -> int:
    from ops.deadletters import (
        NotADeadLetterTopic,
        RedriveFenced,
        matching,
        plain,
        redrive_report,
        shown_key,
        summary,
    )

    wanted = matching(processor=args.processor, error=args.error, key=args.key)
    try:
        report = redrive_report(settings, args.topic, wanted, dry_run=args.dry_run, progress=None)
    except NotADeadLetterTopic as error:
        print(f"oms: {error}", file=sys.stderr)
        return 2
    except RedriveFenced as error:
        print(f"oms: {error}", file=sys.stderr)
        return REDRIVE_FENCED
    verb_done = "would redrive" if args.dry_run else "redrove"
    for letter in report.sent:
        print(f"{verb_done} {plain(letter.original)} (key {shown_key(letter)}): {plain(letter.error)}")
    for skipped in report.skipped:
        if skipped.reason.refused:
            where = f"offset {skipped.letter.offset} (key {shown_key(skipped.letter)})"
            print(f"skipped the letter at {where}: {plain(str(skipped))}")
    print(summary(report, dry_run=args.dry_run))
    return 0


def cmd_replay_group(args: argparse.Namespace, settings: Settings) -> int:
    from ops.replay import GroupActive, apply, plan

    moves = plan(settings, args.group, to_time=args.to_time, to_offset=args.to_offset, topics=args.topic or None)
    if not args.json:
        print(f"{'topic':<40} {'partition':>9} {'committed':>10} {'to':>10} {'read again':>10}")
        for move in moves:
            current = "-" if move.current is None else str(move.current)
            again = "-" if move.rereads is None else str(move.rereads)
            print(f"{move.topic:<40} {move.partition:>9} {current:>10} {move.target:>10} {again:>10}")
    if args.execute:
        try:
            apply(settings, args.group, moves)
        except GroupActive as error:
            print(f"oms: {error}", file=sys.stderr)
            return 1
    if args.json:
        rows = [{**dataclasses.asdict(move), "read_again": move.rereads} for move in moves]
        print_json({"group": args.group, "moved": args.execute, "partitions": rows})
    elif args.execute:
        print(f"moved {len(moves)} partitions of {args.group}; its processor reads from there when it starts")
    else:
        print(f"dry run: {len(moves)} partitions of {args.group} would move; --execute moves them")
    return 0


def cmd_replay_topic(args: argparse.Namespace, settings: Settings) -> int:
    from ops.replay import reproduce

    count = reproduce(settings, args.topic, args.partition, args.from_offset, args.to_offset, progress=None)
    print(f"re-produced {count} records of {args.topic}[{args.partition}] from offset {args.from_offset}")
    return 0


def timestamp(text: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from ops.dashboard.server import serve

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = serve(settings, args.port)
    print(f"dashboard on {server.url} (the tracker's view, live); Ctrl-C stops it")
    sys.stdout.flush()
    stop.wait()
    server.shutdown()
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ops import demo
    from ops.orders import OrderMix

    mix = OrderMix.parse(args.mix) if args.mix else None
    return demo.run(settings, rate_per_s=args.rate, seed=args.seed, mix=mix)


def cmd_slips_parked(args: argparse.Namespace, settings: Settings) -> int:
    from ops.slips import parked

    found = parked(settings)
    if args.json:
        print_json(
            [
                {
                    "order_id": order_id,
                    "tracking_number": str(slip.slip.tracking_number),
                    "failed_step": slip.failed_step,
                    "reason": slip.slip.faults[0].reason if slip.slip.faults else None,
                }
                for order_id, slip in sorted(found.items())
            ]
        )
        return 0
    print(f"{'order':<28} {'tracking number':<38} {'failed step':<16} reason")
    for order_id, slip in sorted(found.items()):
        reason = slip.slip.faults[0].reason if slip.slip.faults else ""
        print(f"{order_id:<28} {slip.slip.tracking_number!s:<38} {slip.failed_step:<16} {reason}")
    print(f"{len(found)} parked")
    return 0


def cmd_slips_resume(args: argparse.Namespace, settings: Settings) -> int:
    from ops.slips import NotParked, resume

    try:
        print(resume(settings, args.order_id, skip_failed_step=args.skip_failed_step))
    except NotParked as error:
        print(f"oms: {error}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oms",
        description=__doc__,
        parents=[connection_options("properties")],
        epilog="Settings: flags > OMS_ variables > the profile > defaults (`oms config` shows each and its source). "
        "Exit status: 0 done, 1 a finding, 2 refused, 66 a file missing, 69 unreachable, 78 a wrong setting "
        "(docs/operations.md).",
    )
    parser.add_argument("--version", action=_VersionAction, help="the versions of oms and its Kafka client")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    after_the_verb = connection_options("verb_properties")

    def verb(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Handler,
        help_text: str,
        needs: tuple[str, ...] = (),
    ) -> argparse.ArgumentParser:
        """A verb; `needs` (KAFKA, REGISTRY): what an operator's command reads or writes, and checks first that
        it answers and that the files its settings name exist (ops/reachability.py)."""
        sub = parent.add_parser(name, help=help_text, description=help_text, parents=[after_the_verb])
        sub.set_defaults(handler=handler, needs=needs)
        return sub

    up = verb(verbs, "up", cmd_up, "start the local Kafka broker and schema registry (fetching them on first use)")
    down = verb(verbs, "down", cmd_down, "stop the local schema registry and Kafka broker")
    for parser_of_platform in (up, down):
        parser_of_platform.add_argument(
            "--secure",
            action="store_true",
            help="the secure platform: SASL_SSL (SCRAM-SHA-512) broker and HTTPS registry, on their own ports "
            "(as OMS_LOCAL_SECURITY=sasl_ssl)",
        )
    status = verb(
        verbs,
        "status",
        cmd_status,
        "whether the Kafka cluster and schema registry of the settings answer, the local servers `oms up` runs "
        "(when the settings name those), and the processors `oms run all` keeps running",
    )

    topics = verbs.add_parser("topics", help="declared topics vs the cluster").add_subparsers(
        dest="topics_verb", required=True, metavar="VERB"
    )
    topics_apply = verb(
        topics, "apply", cmd_topics_apply, "create missing declared topics; report drift, delete nothing", (KAFKA,)
    )
    topics_list = verb(topics, "list", cmd_topics_list, "show declared vs actual topics", (KAFKA,))

    schemas = verbs.add_parser("schemas", help="Avro schemas vs the registry").add_subparsers(
        dest="schemas_verb", required=True, metavar="VERB"
    )
    schemas_register = verb(
        schemas, "register", cmd_schemas_register, "register every local schema (TopicRecordNameStrategy)", (REGISTRY,)
    )
    schemas_check = verb(
        schemas,
        "check",
        cmd_schemas_check,
        "test every local schema against the registry's versions (reads only)",
        (REGISTRY,),
    )
    verb(schemas, "codegen", cmd_schemas_codegen, "regenerate schemas/models.py from the .avsc files")
    listings = [status, topics_apply, topics_list, schemas_register, schemas_check]
    slips_parser = verbs.add_parser(
        "slips",
        help="routing slips",
        description="routing slips: list them (the tracker's view), or act on one",
        parents=[after_the_verb],
    )
    slips_parser.set_defaults(handler=cmd_slips_list, needs=BOTH)
    slips_parser.add_argument("--stuck", action="store_true", help="only those without progress for a while")
    slips_parser.add_argument("--faulted", action="store_true", help="only faulted ones")
    slips_parser.add_argument("--json", action="store_true")
    slips = slips_parser.add_subparsers(dest="slips_verb", metavar="VERB")
    slips_parked = verb(slips, "parked", cmd_slips_parked, "list slips parked after a failed compensation", BOTH)
    resume = verb(slips, "resume", cmd_slips_resume, "send a parked slip to retry its failed compensation", BOTH)
    resume.add_argument("order_id")
    resume.add_argument(
        "--skip-failed-step", action="store_true", help="the failed step was undone by hand: go on below it"
    )

    listed = verb(verbs, "processors", cmd_processors, "what each stream processor reads, writes and keeps, as a table")
    listed.add_argument("--write", action="store_true", help="refresh the table in docs/processors.md")
    listings.append(listed)

    run = verb(verbs, "run", cmd_run, "run one processor, or all of them, in the foreground until SIGINT/SIGTERM")
    # Not `choices`: the names come from the processors' declarations, whose imports (Quix Streams and every
    # processor) would make each `oms` command, `oms track` too, half a second slower to start.
    run.add_argument("processor", metavar="NAME", help="a processor, as `oms processors` lists them, or all")
    run.add_argument(
        "--instances",
        type=positive_int,
        default=1,
        help="with `all`: instances of each processor, named after OMS_INSTANCE_ID when it is set (`<id>-<n>`)",
    )

    demo = verb(verbs, "demo", cmd_demo, "run every processor and a stream of demo orders, with a running tally")
    demo.add_argument("--rate", type=float, default=10.0, help="orders a second")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--mix", help="scenario weights, e.g. valid=0.8,invalid=0.1,declined=0.1")

    bench = verb(verbs, "bench", cmd_bench, "measure the choreography on this machine; figures are saved under .bench/")
    bench.add_argument("--orders", type=int, default=4000, help="orders in the full-speed run")
    bench.add_argument("--mix", help="scenario weights, e.g. valid=0.9,invalid=0.1 (default: the demo mix)")
    bench.add_argument("--cancel-rate", type=share, default=0.1, help="share of the orders cancelled (default 0.1)")
    bench.add_argument(
        "--steady-rate",
        type=float,
        help="orders a second in the second run (default: half the full-speed rate), to compare versions at one load",
    )
    bench.add_argument(
        "--processors-from",
        type=Path,
        metavar="DIR",
        help="run the processors of another checkout at DIR under this harness (default: this checkout's)",
    )
    bench.add_argument(
        "--in-process",
        action="store_true",
        help="no broker: every stream processor in this process, CPU per order of our own code (ops/code_cost.py)",
    )

    chaos = verb(
        verbs,
        "chaos",
        cmd_chaos,
        "orders while processors are killed (kill -9), the broker and registry restarted, a processor frozen and "
        "the ledgers' disk filled; exact reconciliation, and the time from the last fault to quiet",
    )
    chaos.add_argument("--orders", type=positive_int, default=5000, help="orders to produce (default 5000)")
    chaos.add_argument("--kills", type=int, default=50, help="processor kills, one every --kill-every (default 50)")
    chaos.add_argument("--kill-every", type=positive_float, default=3.0, help="seconds between kills (default 3)")
    chaos.add_argument("--cancel-share", type=share, default=0.2, help="share of the orders cancelled (default 0.2)")
    chaos.add_argument("--seed", type=int, default=7)
    chaos.add_argument("--broker-restarts", type=int, default=3, help="kill -9 and restart the broker (default 3)")
    chaos.add_argument("--registry-restarts", type=int, default=1, help="the same of the registry (default 1)")
    chaos.add_argument(
        "--freeze", type=float, default=45.0, help="seconds a processor is stopped (SIGSTOP), 0 for none (default 45)"
    )
    chaos.add_argument(
        "--disk-full",
        type=float,
        default=30.0,
        help="seconds the ledgers' disk (a tmpfs of the run's: needs root) is full, 0 for never (default 30)",
    )
    chaos.add_argument(
        "--timeout", type=positive_float, default=600.0, help="seconds for every order to end (default 600)"
    )

    produce = verbs.add_parser("produce", help="produce commands as users do").add_subparsers(
        dest="produce_verb", required=True, metavar="VERB"
    )
    orders = verb(produce, "orders", cmd_produce_orders, "produce generated PlaceOrder commands of a seeded mix", BOTH)
    orders.add_argument("--count", type=positive_int, default=100, help="orders to produce (default 100)")
    orders.add_argument("--rate", type=positive_float, help="orders per second (default: as fast as possible)")
    orders.add_argument("--seed", type=int, help="the same seed gives the same orders (default: a random one)")
    orders.add_argument(
        "--prefix", help="order ids are <prefix>-000001...; default s<seed>-<hex time>, new on every run"
    )
    orders.add_argument(
        "--mix",
        help="scenario weights, those not named 0, e.g. valid=0.9,scarce=0.1; "
        "default valid=0.7,invalid=0.1,declined=0.1,shortage=0.05,flaky=0.05 (scenarios: see ops/orders.py)",
    )
    orders.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, help="progress bar on stderr (default: on a terminal)"
    )
    orders.add_argument(
        "--cancel-rate", type=share, default=0.0, help="share of the orders to cancel (0..1, default 0)"
    )
    orders.add_argument(
        "--cancel-within",
        type=positive_float,
        default=3.0,
        help="a cancellation follows its order by a random delay of up to this many seconds (default 3)",
    )

    stock = verbs.add_parser("stock", help="stock levels per SKU").add_subparsers(
        dest="stock_verb", required=True, metavar="VERB"
    )
    stock_set = verb(stock, "set", cmd_stock_set, "set the units available of one SKU", BOTH)
    stock_set.add_argument("sku")
    stock_set.add_argument("quantity", type=non_negative_int)
    verb(stock, "seed", cmd_stock_seed, "set the demo catalog's stock (processors/adapters/catalog.py)", BOTH)
    stock_show = verb(stock, "show", cmd_stock_show, "the latest stock level of every SKU", BOTH)

    cancel = verb(verbs, "cancel", cmd_cancel, "ask for an order's cancellation (CancelOrder)", BOTH)
    cancel.add_argument("order_id")
    cancel.add_argument("--reason", default="customer request", help="why (default: customer request)")
    cancel.add_argument(
        "--wait",
        action="store_true",
        help="wait for the saga's answer and print it: exit 0 cancelled (with the refunds), 1 rejected, "
        f"{CANCEL_TIMED_OUT} no answer in time",
    )
    cancel.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="how long --wait waits for the answer (default: 30 s longer than the saga waits for an order it has "
        "not seen, OMS_CANCEL_WAITS_FOR_ORDER_S, so that its unknown-order answer comes in time)",
    )

    sagas_parser = verbs.add_parser(
        "sagas",
        help="orchestrated workflows",
        description="sagas: list them (the tracker's view), or act on one",
        parents=[after_the_verb],
    )
    sagas_parser.set_defaults(handler=cmd_sagas_list, needs=BOTH)
    sagas_parser.add_argument("--state", help="only sagas in this state, e.g. Failed")
    sagas_parser.add_argument("--json", action="store_true")
    sagas = sagas_parser.add_subparsers(dest="sagas_verb", metavar="VERB")
    timers_parser = verb(
        verbs, "timers", cmd_timers, "the saga timers still pending, soonest first (late ones marked)", BOTH
    )
    timers_parser.add_argument("order_id", nargs="?", metavar="ORDER", help="only this order's timers")
    config = verb(
        verbs, "config", cmd_config, "the effective settings (OMS_* variables), where each comes from, secrets hidden"
    )
    profiles = verb(verbs, "profiles", cmd_profiles, "the config file's profiles, where each points, which is in use")
    listings += [slips_parked, stock_show, timers_parser, config, profiles]
    deploy = verb(verbs, "deploy", cmd_deploy, "the Compose file and Kubernetes manifests, made from the processors")
    deploy.add_argument(
        "--write", action="store_true", help="write them (docker-compose.yml, ops/deploy/), remove stale ones"
    )
    listings.append(deploy)
    intake = verbs.add_parser("intake", help="what intake accepts").add_subparsers(dest="intake_verb", required=True)
    intake_rules = verb(intake, "rules", cmd_intake_rules, "intake's rules as a table: what each PlaceOrder gets")
    intake_rules.add_argument("--write", action="store_true", help="refresh the table in docs/producing.md")
    dashboards = verbs.add_parser("dashboards", help="Grafana dashboards as code").add_subparsers(
        dest="dashboards_verb", required=True, metavar="VERB"
    )
    verb(dashboards, "write", cmd_dashboards_write, "write ops/grafana/*.json from ops/dashboards.py")
    dlq = verbs.add_parser("dlq", help="dead letters").add_subparsers(dest="dlq_verb", required=True, metavar="VERB")
    dlq_list = verb(dlq, "list", cmd_dlq_list, "each dead letter of a topic with its error", (KAFKA,))
    dlq_list.add_argument("topic", help="the original topic, e.g. oms.orders.commands (or its .dlq)")
    dlq_list.add_argument("--json", action="store_true")
    dlq_redrive = verb(
        dlq,
        "redrive",
        cmd_dlq_redrive,
        "send dead letters back to their topic, once; exit 1 if another redrive took over",
        (KAFKA,),
    )
    dlq_redrive.add_argument("topic", help="the original topic, e.g. oms.orders.commands (or its .dlq)")
    dlq_redrive.add_argument("--processor", help="only those this processor dead-lettered, e.g. oms.intake")
    dlq_redrive.add_argument("--error", help="only those whose error contains this text")
    dlq_redrive.add_argument("--key", help="only those with this key")
    dlq_redrive.add_argument("--dry-run", action="store_true", help="say what would be redriven, send nothing")
    replay = verbs.add_parser("replay", help="read again for recovery").add_subparsers(
        dest="replay_verb", required=True, metavar="VERB"
    )
    replay_group = verb(
        replay, "group", cmd_replay_group, "move a stopped processor's group back; a dry run unless --execute", (KAFKA,)
    )
    replay_group.add_argument("group", help="e.g. oms.payments")
    where = replay_group.add_mutually_exclusive_group()
    where.add_argument("--to-time", type=timestamp, help="ISO time, UTC unless it says otherwise")
    where.add_argument("--to-offset", type=int)
    replay_group.add_argument("--topic", action="append", help="only this input topic (repeatable)")
    replay_group.add_argument("--execute", action="store_true", help="move the offsets (the group must be stopped)")
    listings.append(replay_group)
    replay_topic = verb(replay, "topic", cmd_replay_topic, "produce a range of a topic's partition again", (KAFKA,))
    replay_topic.add_argument("topic")
    replay_topic.add_argument("--partition", type=int, required=True)
    replay_topic.add_argument("--from-offset", type=int, required=True)
    replay_topic.add_argument("--to-offset", type=int, help="exclusive; default: the partition's end")
    dashboard = verb(
        verbs,
        "dashboard",
        cmd_dashboard,
        "serve a live web dashboard of every workflow on OMS_DASHBOARD_HOST (127.0.0.1)",
    )
    dashboard.add_argument("--port", type=int, default=8088, help="default 8088; 0 picks a free one")
    track = verb(verbs, "track", cmd_track, "an order's timeline across choreography, routing slip and saga", BOTH)
    track.add_argument("order_id")
    track.add_argument("--json", action="store_true")
    retry = verb(
        sagas, "retry", cmd_sagas_retry, "resume sagas that ended Failed (RetrySaga), by order or in bulk", BOTH
    )
    retry.add_argument("order_ids", nargs="*", metavar="ORDER")
    retry.add_argument("--state", choices=["Failed"], help="every saga in this state (with --reason: those of them)")
    retry.add_argument("--reason", metavar="TEXT", help="only sagas whose failure reason contains TEXT")
    retry.add_argument("--dry-run", action="store_true", help="list what would be resumed, send nothing")
    retry.add_argument("--force", action="store_true", help="send it even if the tracker's view says not Failed")
    diagram = verb(sagas, "diagram", cmd_sagas_diagram, "the cancellation saga's transition table as Mermaid")
    diagram.add_argument("--write", action="store_true", help="refresh the diagram in docs/sagas.md")
    rules = verb(sagas, "rules", cmd_sagas_rules, "the cancellation rules as a table: situation, outcome, money...")
    rules.add_argument("--write", action="store_true", help="refresh the table in docs/sagas.md")
    for listing in listings:
        listing.add_argument("--json", action="store_true", help="as JSON, for scripts")
    return parser


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above zero, not {text}")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above zero, not {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress reaches logs and pipes
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `oms sagas | head` ends quietly, as other tools do
    with escaped_output():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Settings first (the flags put in the environment, so that the processes this one starts see them too),
    before anything imports the topics, which read them; then the command, any failure of its settings or
    surroundings told in one line (ops/failures.py)."""
    flags = flag_environment(args, os.environ)
    os.environ.update(flags)
    flagged = frozenset(flags)
    settings: Settings | None = None
    try:
        get_settings.cache_clear()
        settings = get_settings()
        if args.handler is not cmd_run:
            keep_client_logs_off_the_terminal(settings)
        if args.needs:
            from ops import reachability

            reachability.require(settings, args.needs)
        return int(args.handler(args, settings))
    except (PlatformError, FetchError) as error:
        print(f"oms: {error}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as error:
        known = failure(error, functools.partial(_where_given, flagged=flagged))
        if known is not None:
            print(f"oms: {known[1]}", file=sys.stderr)
            return known[0]
        from processors.runtime.errors import is_outage

        if settings is None or not is_outage(error):
            raise
        where = unreachable(error, settings.kafka_bootstrap_servers, settings.schema_registry_url)
        print(f"oms: {where}", file=sys.stderr)
        return UNAVAILABLE


def _where_given(field: str, flagged: frozenset[str]) -> str:
    from ops.settings_view import where_given

    try:
        profile = selected_profile(os.environ)
    except (ConfigFileMissing, ProfileError):
        profile = None
    return where_given(field, os.environ, flagged, profile)


def keep_client_logs_off_the_terminal(settings: Settings) -> None:
    """An operator's command says in one line what failed; librdkafka's own lines about it (each connection
    refused, each retry) show only with OMS_LOG_LEVEL=DEBUG."""
    if settings.log_level.upper() == "DEBUG":
        from processors.runtime.logs import configure_logging

        configure_logging("DEBUG", settings.log_format, "oms")
        return
    if not KAFKA_CLIENT_LOGGER.handlers:
        KAFKA_CLIENT_LOGGER.addHandler(logging.NullHandler())
    KAFKA_CLIENT_LOGGER.propagate = False


class _VersionAction(argparse.Action):
    """`oms --version`: this project's version and the client libraries it talks to Kafka with."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(version_line())
        parser.exit()


def version_line() -> str:
    from importlib.metadata import version

    import confluent_kafka

    return (
        f"oms {version('oms')} (confluent-kafka {confluent_kafka.version()}, "
        f"librdkafka {confluent_kafka.libversion()[0]}, Python {sys.version.split()[0]})"
    )


if __name__ == "__main__":
    sys.exit(main())
