"""A command whose broker or registry is down ends with one plain line and exit status 69, not a traceback."""

from __future__ import annotations

import pytest

from ops.cli import UNAVAILABLE, main
from topology.settings import get_settings


def test_a_registry_that_does_not_answer_gives_a_plain_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMS_SCHEMA_REGISTRY_URL", "http://127.0.0.1:1/apis/ccompat/v7")
    get_settings.cache_clear()
    try:
        status = main(["schemas", "check"])
    finally:
        get_settings.cache_clear()

    assert status == UNAVAILABLE
    error = capsys.readouterr().err
    assert "the schema registry (http://127.0.0.1:1/apis/ccompat/v7) did not answer" in error
    assert "Traceback" not in error
