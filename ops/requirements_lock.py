"""The image's lock file (`requirements.lock`): every dependency of the project, direct and indirect, and the
build backend that installs the project itself, each pinned to one version with the hashes of its wheels. The
Dockerfile installs it with `--require-hashes`; `make lock` writes it (`python -m ops.requirements_lock`), keeping
every version pyproject.toml leaves free, so that locking again changes only what pyproject.toml changed
(`make lock UPGRADE=1`, `--upgrade`: every free one at its newest).

pip resolves it from pyproject.toml for the image's Python (CPython 3.11) on Linux (glibc up to the base
image's), once per architecture a Docker host builds for; the versions must agree, and each pin carries the
hashes of both wheels. Wheels only: the slim image has no compiler. Neither the `local` extra (the Java that
only `oms up` needs) nor the development tools are in it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topology.settings import PROJECT_ROOT

LOCK_FILE = PROJECT_ROOT / "requirements.lock"
PYPROJECT = PROJECT_ROOT / "pyproject.toml"
# The Dockerfile's base image, `python:<PYTHON_VERSION>.<patch>-slim-<BASE_DEBIAN>`: the wheels must suit it.
PYTHON_VERSION = "3.11"
BASE_DEBIAN = "bookworm"
GLIBC_MINOR = 36  # bookworm's glibc is 2.36
ARCHITECTURES = ("x86_64", "aarch64")
# manylinux_2_5, _2_12 and _2_17 under the names older wheels carry.
LEGACY_MANYLINUX = {"x86_64": ("manylinux1", "manylinux2010", "manylinux2014"), "aarch64": ("manylinux2014",)}
HEADER = (
    "# The image's dependencies, direct and indirect, and its build backend: written by `make lock` from\n"
    "# pyproject.toml (ops/requirements_lock.py), not by hand. CPython 3.11 on Linux x86_64 and aarch64, wheels only.\n"
)
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)$")
_HASH = re.compile(r"^--hash=sha256:(?P<digest>[0-9a-f]{64})$")


class LockError(RuntimeError):
    pass


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: frozenset[str]


def canonical(name: str) -> str:
    """A distribution's name as package indexes compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def image_requirements(pyproject: dict[str, Any]) -> list[str]:
    """What the image installs: the project's dependencies and its build backend's."""
    return [*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]]


def platform_tags(architecture: str) -> list[str]:
    """Every manylinux tag a wheel for the base image may carry, newest glibc first."""
    modern = [f"manylinux_2_{minor}_{architecture}" for minor in range(GLIBC_MINOR, 4, -1)]
    return [*modern, *(f"{legacy}_{architecture}" for legacy in LEGACY_MANYLINUX[architecture])]


def pins_from_report(report: dict[str, Any]) -> dict[str, Pin]:
    """The pins of one resolution, from pip's installation report (`pip install --dry-run --report`)."""
    pins = {}
    for item in report["install"]:
        metadata, download = item["metadata"], item["download_info"]
        digest = download.get("archive_info", {}).get("hashes", {}).get("sha256")
        if digest is None:
            raise LockError(f"the index gave no sha256 for {download.get('url')}")
        name = canonical(metadata["name"])
        pins[name] = Pin(name, metadata["version"], frozenset({digest}))
    return pins


def merged(resolutions: dict[str, dict[str, Pin]]) -> list[Pin]:
    """One pin per package with the hashes of every architecture's wheel; the architectures must agree."""
    names = {name for pins in resolutions.values() for name in pins}
    result = []
    for name in sorted(names):
        found = {architecture: pins.get(name) for architecture, pins in resolutions.items()}
        versions = {pin.version if pin else None for pin in found.values()}
        if len(versions) != 1:
            described = ", ".join(f"{arch}: {pin.version if pin else 'absent'}" for arch, pin in found.items())
            raise LockError(f"{name} resolves differently per architecture ({described})")
        hashes = frozenset(digest for pin in found.values() if pin for digest in pin.hashes)
        result.append(Pin(name, versions.pop() or "", hashes))
    return result


def render(pins: list[Pin]) -> str:
    lines = [HEADER.rstrip("\n")]
    for pin in pins:
        hashes = [f"    --hash=sha256:{digest}" for digest in sorted(pin.hashes)]
        lines.append(" \\\n".join([f"{pin.name}=={pin.version}", *hashes]))
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, Pin]:
    """The pins of a lock file, by canonical name; anything but `name==version` with sha256 hashes is refused."""
    pins = {}
    for line in text.replace("\\\n", " ").splitlines():
        requirement = line.strip()
        if not requirement or requirement.startswith("#"):
            continue
        pin, *options = requirement.split()
        matched = _PIN.match(pin)
        digests = [_HASH.match(option) for option in options]
        if matched is None or not digests or None in digests:
            raise LockError(f"not a pin with sha256 hashes: {requirement}")
        name = canonical(matched["name"])
        pins[name] = Pin(name, matched["version"], frozenset(d["digest"] for d in digests if d))
    return pins


def kept(previous: dict[str, Pin], requirements: list[str]) -> list[str]:
    """The previous lock's pins, as constraints, but for what pyproject.toml pins exactly: locking again keeps
    every version it is free to keep (indirect dependencies, a range such as the build backend's)."""
    pinned = {
        canonical(re.split(r"[\[=<>~!; ]", requirement, maxsplit=1)[0])
        for requirement in requirements
        if "==" in requirement
    }
    return [f"{pin.name}=={pin.version}" for name, pin in sorted(previous.items()) if name not in pinned]


def resolve(requirements: list[str], architecture: str, constraints: list[str]) -> dict[str, Pin]:
    """pip's resolution of `requirements` for the image on `architecture`, within `constraints` (asks the
    package index)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        constraints_file = Path(scratch) / "constraints.txt"
        constraints_file.write_text("".join(f"{constraint}\n" for constraint in constraints))
        platforms = [option for tag in platform_tags(architecture) for option in ("--platform", tag)]
        abis = [option for abi in ("cp" + PYTHON_VERSION.replace(".", ""), "abi3", "none") for option in ("--abi", abi)]
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
            "--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp",
            *abis, *platforms, "--constraint", str(constraints_file), "--report", str(report), *requirements,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            hint = " (a kept pin may conflict with a new one: --upgrade resolves afresh)" if constraints else ""
            raise LockError(f"pip could not resolve for {architecture}{hint}:\n{done.stderr}")
        return pins_from_report(json.loads(report.read_text()))


def write(upgrade: bool = False) -> Path:
    """Lock pyproject.toml's dependencies, keeping the free versions the lock has unless `upgrade`."""
    requirements = image_requirements(tomllib.loads(PYPROJECT.read_text()))
    previous = parse(LOCK_FILE.read_text()) if LOCK_FILE.exists() and not upgrade else {}
    constraints = kept(previous, requirements)
    resolutions = {architecture: resolve(requirements, architecture, constraints) for architecture in ARCHITECTURES}
    LOCK_FILE.write_text(render(merged(resolutions)))
    return LOCK_FILE


if __name__ == "__main__":
    print(f"wrote {write(upgrade='--upgrade' in sys.argv[1:])}")
