"""`oms`: the command line of the order-management system. `oms --help` lists the verbs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ops import platform
from ops.localserver import PlatformError
from ops.maven import FetchError, pinned_versions
from topology.settings import Settings, get_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    for message in platform.up(settings):
        print(message)
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    for message in platform.down(settings):
        print(message)
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    versions = pinned_versions()
    labels = {
        "kafka": f"Apache Kafka {versions['kafka.version']}",
        "registry": f"Apicurio Registry {versions['apicurio.version']}",
    }
    all_up = True
    for status in platform.status(settings):
        state = "up" if status.answering else ("starting" if status.running else "down")
        all_up &= status.answering
        pid = f"pid {status.pid}" if status.pid else "no process"
        note = f"  ({status.note})" if status.note else ""
        print(f"{status.name:<9} {state:<9} {status.address:<16} {pid:<11} {labels[status.name]}{note}")
        print(f"{'':<9} log: {status.log_file}")
    return 0 if all_up else 1


def cmd_topics_apply(args: argparse.Namespace, settings: Settings) -> int:
    from topology.admin import apply
    from topology.topics import ALL_TOPICS

    report = apply(settings, ALL_TOPICS)
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
    print(f"{'topic':<42} {'declared':<22} {'actual':<22} status")
    for c in comparisons:
        declared = f"{c.declared.partitions}p {c.declared.cleanup_policy}"
        actual = f"{c.actual.partitions}p {c.actual.config.get('cleanup.policy', '?')}" if c.actual else "-"
        detail = f": {'; '.join(c.differences)}" if c.differences else ""
        print(f"{c.declared.name:<42} {declared:<22} {actual:<22} {c.status}{detail}")
    return 0 if all(c.status is TopicStatus.IN_SYNC for c in comparisons) else 1


def cmd_schemas_register(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.registry import declared_subjects, ensure_compatibility_level, register, registry_client

    client = registry_client(settings)
    ensure_compatibility_level(client)
    for subject, schema_id in register(client, declared_subjects()).items():
        print(f"{subject:<64} id {schema_id}")
    return 0


def cmd_schemas_check(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.registry import check, declared_subjects, registry_client

    client = registry_client(settings)
    failures = 0
    for subject in declared_subjects():
        result = check(client, subject)
        if result.compatible:
            state = "new subject" if result.registered_versions == 0 else "compatible"
            print(f"ok            {result.subject} ({state})")
            continue
        failures += 1
        print(f"INCOMPATIBLE  {result.subject} ({subject.schema.path})")
        for reason in result.reasons:
            print(f"              {reason}")
    if failures:
        print(
            f"{failures} schema(s) would break consumers of data already written; "
            "give new fields defaults, keep types and names, or add a new record type instead."
        )
    return 1 if failures else 0


def cmd_schemas_codegen(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.codegen import write

    print(f"wrote {write()}")
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from ops import bench

    result = bench.run(settings, count=args.messages)
    print(f"produce (idempotent, acks=all)          {result['produce_per_s']:>9,} msg/s")
    print(f"transactional consume-produce passthrough {result['transactional_passthrough_per_s']:>7,} msg/s")
    for name, megabytes in result["resident_mb"].items():
        print(f"resident memory of {name:<22} {megabytes or 0:>9.0f} MB")
    print(f"saved {bench.save(result)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oms", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Handler,
        help_text: str,
    ) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    verb(verbs, "up", cmd_up, "start the local Kafka broker and schema registry (fetching them on first use)")
    verb(verbs, "down", cmd_down, "stop the local schema registry and Kafka broker")
    verb(verbs, "status", cmd_status, "report the local servers, their addresses and log files")

    topics = verbs.add_parser("topics", help="declared topics vs the cluster").add_subparsers(
        dest="topics_verb", required=True, metavar="VERB"
    )
    verb(topics, "apply", cmd_topics_apply, "create missing declared topics; report drift, delete nothing")
    verb(topics, "list", cmd_topics_list, "show declared vs actual topics")

    schemas = verbs.add_parser("schemas", help="Avro schemas vs the registry").add_subparsers(
        dest="schemas_verb", required=True, metavar="VERB"
    )
    verb(schemas, "register", cmd_schemas_register, "register every local schema (TopicRecordNameStrategy)")
    verb(schemas, "check", cmd_schemas_check, "test every local schema against the registry's versions")
    verb(schemas, "codegen", cmd_schemas_codegen, "regenerate schemas/models.py from the .avsc files")
    bench = verb(verbs, "bench", cmd_bench, "measure the platform; figures are saved under .bench/")
    bench.add_argument("--messages", type=int, default=50_000, help="messages per measurement")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args, get_settings()))
    except (PlatformError, FetchError) as error:
        print(f"oms: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
