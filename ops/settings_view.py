"""`oms config`: every setting as the processes will see it, where it comes from, and no secret in clear."""

from __future__ import annotations

import os

from pydantic import SecretStr

from processors.runtime.identity import instance_id
from topology.settings import Settings

HIDDEN = "********"


def settings_rows(settings: Settings, environ: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(variable, value, "environment" or "default") for every setting, in declaration order."""
    environ = dict(os.environ) if environ is None else environ
    given = {name.upper() for name in environ}
    rows = []
    for field in Settings.model_fields:
        value = getattr(settings, field)
        variable = f"OMS_{field.upper()}"
        shown = HIDDEN if isinstance(value, SecretStr) else ("unset" if value is None else str(value))
        rows.append((variable, shown, "environment" if variable in given else "default"))
    # Not a setting of the object: each process derives it (processors/runtime/identity.py).
    instance = instance_id(environ)
    rows.append(("OMS_INSTANCE_ID", instance, "environment" if "OMS_INSTANCE_ID" in given else "pod or host name"))
    return rows
