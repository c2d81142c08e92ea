"""The lock's pure steps: pip's reports per architecture become one pin per package with every wheel's hash."""

from __future__ import annotations

from typing import Any

import pytest

from ops.requirements_lock import LockError, Pin, kept, merged, parse, pins_from_report, platform_tags, render

X86_WHEEL = "a" * 64
ARM_WHEEL = "b" * 64


def report(*packages: tuple[str, str, str | None]) -> dict[str, Any]:
    return {
        "install": [
            {
                "metadata": {"name": name, "version": version},
                "download_info": {
                    "url": f"https://index.example/{name}-{version}.whl",
                    "archive_info": {"hashes": {"sha256": digest}} if digest else {},
                },
            }
            for name, version, digest in packages
        ]
    }


def test_each_pin_carries_the_wheel_hash_of_every_architecture() -> None:
    pins = merged(
        {
            "x86_64": pins_from_report(report(("Typing_Extensions", "4.16.0", X86_WHEEL))),
            "aarch64": pins_from_report(report(("typing-extensions", "4.16.0", ARM_WHEEL))),
        }
    )
    assert pins == [Pin("typing-extensions", "4.16.0", frozenset({X86_WHEEL, ARM_WHEEL}))]


@pytest.mark.parametrize(
    "aarch64",
    [report(("cffi", "2.1.0", ARM_WHEEL)), report()],
    ids=["another version", "absent"],
)
def test_architectures_that_resolve_differently_are_refused(aarch64: dict[str, Any]) -> None:
    with pytest.raises(LockError, match="cffi"):
        merged({"x86_64": pins_from_report(report(("cffi", "2.1.1", X86_WHEEL))), "aarch64": pins_from_report(aarch64)})


def test_a_wheel_the_index_gave_no_hash_for_is_refused() -> None:
    with pytest.raises(LockError):
        pins_from_report(report(("cffi", "2.1.1", None)))


def test_the_written_lock_reads_back_as_the_same_pins() -> None:
    pins = [Pin("cffi", "2.1.1", frozenset({X86_WHEEL, ARM_WHEEL})), Pin("idna", "3.21", frozenset({X86_WHEEL}))]
    assert parse(render(pins)) == {pin.name: pin for pin in pins}


def test_the_platform_tags_reach_from_the_base_images_glibc_down_to_the_oldest_manylinux() -> None:
    tags = platform_tags("aarch64")
    assert tags[0] == "manylinux_2_36_aarch64"
    assert {"manylinux_2_17_aarch64", "manylinux2014_aarch64"} <= set(tags)
    assert not [tag for tag in tags if "x86_64" in tag]


def test_locking_again_keeps_every_version_pyproject_leaves_free() -> None:
    previous = {
        "fastavro": Pin("fastavro", "1.13.0", frozenset({X86_WHEEL})),
        "idna": Pin("idna", "3.10", frozenset({X86_WHEEL})),
        "setuptools": Pin("setuptools", "80.0.0", frozenset({X86_WHEEL})),
    }
    constraints = kept(previous, ["fastavro==1.13.1", "quixstreams[avro]==3.28.1", "setuptools>=69"])
    assert constraints == ["idna==3.10", "setuptools==80.0.0"]
