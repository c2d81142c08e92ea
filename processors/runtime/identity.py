"""Which instance of its processor this process is: the one id its transactional id, static group membership,
state folder and metrics port derive from.

Two live processes of one processor with the same id fence each other in a loop (the newer transactional
producer fences the older, which crashes, restarts and fences back), so the id must be unique per process
and stable across its restarts: `OMS_INSTANCE_ID` when set (any string; `oms run all` sets it for its
children), else the ordinal of a Kubernetes StatefulSet pod's name (`oms-payments-2` -> `2`), else the host
name.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping

# A StatefulSet names its pods `<set name>-<ordinal>`: stable across restarts and rescheduling.
_STATEFUL_SET_POD = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?-(?P<ordinal>\d+)$")
# Ids go into Kafka ids and file names: keep them to characters both accept.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def instance_id(environ: Mapping[str, str] = os.environ, hostname: Callable[[], str] = socket.gethostname) -> str:
    given = environ.get("OMS_INSTANCE_ID", "").strip()
    if given:
        return _safe(given)
    host = hostname()
    pod = _STATEFUL_SET_POD.match(host)
    return pod["ordinal"] if pod else _safe(host)


def instance_number(instance: str) -> int | None:
    """The instance's number when its id is one (`0`, `7`): numbered instances on one machine get ports apart."""
    return int(instance) if instance.isdigit() else None


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text)[:100] or "0"
