"""`oms config`: every setting as the processes will see it, where it comes from (a flag, the environment, a
profile or the default), and no secret in clear."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from pydantic import SecretStr

from ops.connection_options import FLAGS
from processors.runtime.identity import instance_id
from topology.profiles import CONFIG_VARIABLE, PROFILE_VARIABLE, Profile, config_path
from topology.settings import Settings

HIDDEN = "********"
# librdkafka properties whose values are secrets (`sasl.password`, `ssl.key.pem`, `...client.secret`).
_SECRET_PROPERTY_PARTS = ("password", "secret", ".pem", "sasl.oauthbearer.config", "jaas")


def setting_source(field: str, environ: Mapping[str, str], flagged: frozenset[str], profile: Profile | None) -> str:
    """ "flag", "environment", "profile NAME" or "default": the highest of the layers that gives `field`."""
    variable = f"OMS_{field.upper()}"
    if variable in flagged:
        return "flag"
    if variable in {name.upper() for name in environ}:
        return "environment"
    if profile is not None and field in profile.values:
        return f"profile {profile.name}"
    return "default"


def where_given(field: str, environ: Mapping[str, str], flagged: frozenset[str], profile: Profile | None) -> str:
    """How to name the place a wrong value of `field` is to be fixed."""
    variable = f"OMS_{field.upper()}"
    source = setting_source(field, environ, flagged, profile)
    if source == "flag":
        return f"{FLAGS.get(variable, variable)} ({variable})"
    if source.startswith("profile") and profile is not None:
        return f"{field} of profile {profile.name!r} in {profile.path}"
    return variable


def shown_properties(properties: Mapping[str, str]) -> str:
    hidden = {
        key: HIDDEN if any(part in key.lower() for part in _SECRET_PROPERTY_PARTS) else value
        for key, value in properties.items()
    }
    return json.dumps(hidden)


def shown_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return HIDDEN
    if value is None:
        return "unset"
    if isinstance(value, dict):
        return shown_properties(value)
    return str(value)


def settings_rows(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    flagged: frozenset[str] = frozenset(),
    profile: Profile | None = None,
) -> list[tuple[str, str, str]]:
    """(variable, value, source) for every setting, in declaration order; see `setting_source`."""
    environ = dict(os.environ) if environ is None else environ
    rows = [
        (f"OMS_{name.upper()}", shown_value(getattr(settings, name)), setting_source(name, environ, flagged, profile))
        for name in Settings.model_fields
    ]
    # Not a setting of the object: each process derives it (processors/runtime/identity.py).
    instance = instance_id(dict(environ))
    given = "OMS_INSTANCE_ID" in {name.upper() for name in environ}
    rows.append(("OMS_INSTANCE_ID", instance, "environment" if given else "pod or host name"))
    # Where the settings above came from, themselves.
    rows.append((CONFIG_VARIABLE, str(config_path(environ)), setting_source("config", environ, flagged, None)))
    chosen = profile.name if profile is not None else "unset"
    rows.append((PROFILE_VARIABLE, chosen, setting_source("profile", environ, flagged, None)))
    return rows


def settings_json(rows: list[tuple[str, str, str]]) -> str:
    return json.dumps([{"variable": name, "value": value, "source": source} for name, value, source in rows], indent=2)
