"""`oms`' connection options, as kcat and rpk take them: `-b`, `--registry`, `-X key=value` and `--profile`,
before or after the verb. Each stands for an `OMS_` variable and is put in the environment over it, so that
it outranks the variable and reaches every process `oms` starts (`oms run all`'s processors)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

from topology.profiles import PROFILE_VARIABLE

BOOTSTRAP_VARIABLE = "OMS_KAFKA_BOOTSTRAP_SERVERS"
REGISTRY_VARIABLE = "OMS_SCHEMA_REGISTRY_URL"
PROPERTIES_VARIABLE = "OMS_KAFKA_PROPERTIES"

# The flag of each variable, to name it where a value is wrong.
FLAGS = {
    BOOTSTRAP_VARIABLE: "-b/--bootstrap-server",
    REGISTRY_VARIABLE: "--registry",
    PROPERTIES_VARIABLE: "-X",
    PROFILE_VARIABLE: "--profile",
}


def librdkafka_property(text: str) -> tuple[str, str]:
    """`-X key=value`, as kcat takes it."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. -X socket.timeout.ms=5000)")
    return key.strip(), value


def connection_options(properties_dest: str) -> argparse.ArgumentParser:
    """A parent parser of the connection options. Unset ones stay off the namespace, so that those given
    before the verb survive the verb's parser; `-X` collects into `properties_dest`, one list per position."""
    options = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = options.add_argument_group("connection (over the OMS_ variables and the profile: docs/operations.md)")
    group.add_argument(
        "-b", "--bootstrap-server", metavar="HOST:PORT[,...]", help=f"Kafka's bootstrap servers ({BOOTSTRAP_VARIABLE})"
    )
    group.add_argument("--registry", metavar="URL", help=f"the schema registry's URL ({REGISTRY_VARIABLE})")
    group.add_argument(
        "-X",
        dest=properties_dest,
        metavar="KEY=VALUE",
        action="append",
        type=librdkafka_property,
        help=f"a librdkafka property of every Kafka client, repeatable: -X client.rack=az1 ({PROPERTIES_VARIABLE})",
    )
    group.add_argument(
        "--profile",
        metavar="NAME",
        help=f"the settings of [profiles.NAME] in the config file ({PROFILE_VARIABLE}; the file: OMS_CONFIG, "
        "or ~/.config/oms/config.toml)",
    )
    return options


def flag_environment(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """The `OMS_` variables the flags in `args` set. `-X` properties add to those `OMS_KAFKA_PROPERTIES` has
    already (when it is JSON: when it is not, it is left alone to be reported as it is)."""
    variables: dict[str, str] = {}
    if hasattr(args, "bootstrap_server"):
        variables[BOOTSTRAP_VARIABLE] = args.bootstrap_server
    if hasattr(args, "registry"):
        variables[REGISTRY_VARIABLE] = args.registry
    if hasattr(args, "profile"):
        variables[PROFILE_VARIABLE] = args.profile
    given = [*getattr(args, "properties", []), *getattr(args, "verb_properties", [])]
    if given:
        try:
            existing = json.loads(environ.get(PROPERTIES_VARIABLE) or "{}")
        except json.JSONDecodeError:
            return variables
        if isinstance(existing, dict):
            variables[PROPERTIES_VARIABLE] = json.dumps({**existing, **dict(given)})
    return variables
