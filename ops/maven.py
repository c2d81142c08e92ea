"""Fetch the servers' jars from Maven Central with the machine's `mvn`, once, into the cache folder."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import xml.etree.ElementTree as ElementTree
from functools import cache
from pathlib import Path

POM = Path(__file__).resolve().parent / "pom.xml"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


class FetchError(RuntimeError):
    pass


@cache
def pinned_versions() -> dict[str, str]:
    """The `<properties>` of ops/pom.xml: the single place where server versions are pinned."""
    properties = ElementTree.parse(POM).getroot().find("m:properties", _POM_NS)
    assert properties is not None, f"{POM} has no <properties>"
    return {child.tag.split("}", 1)[1]: (child.text or "").strip() for child in properties}


def kafka_libs(cache_dir: Path) -> Path:
    """A folder with the Kafka broker's jars and their dependencies (fetched on first use)."""
    libs = cache_dir / f"kafka-{pinned_versions()['kafka.version']}" / "libs"
    if not (libs / ".complete").exists():
        _mvn("dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={libs}")
        (libs / ".complete").touch()
    return libs


def registry_app(cache_dir: Path) -> Path:
    """The unpacked Apicurio Registry Quarkus app; returns the path of `quarkus-run.jar`."""
    version = pinned_versions()["apicurio.version"]
    home = cache_dir / f"apicurio-registry-{version}"
    jar = home / "quarkus-run.jar"
    if not (home / ".complete").exists():
        download = cache_dir / "downloads"
        artifact = f"io.apicurio:apicurio-registry-app:{version}:tar.gz:all"
        _mvn("dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={download}")
        archive = download / f"apicurio-registry-app-{version}-all.tar.gz"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(home, filter="data")
        if not jar.exists():
            raise FetchError(f"{archive} holds no quarkus-run.jar")
        (home / ".complete").touch()
    return jar


def _mvn(*arguments: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise FetchError("Maven (`mvn`) is needed to fetch the Kafka and registry jars; install it first")
    command = [mvn, "-B", "-q", "-f", str(POM), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FetchError(f"{' '.join(command)} failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
