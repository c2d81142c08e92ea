"""A setting that does not parse ends any command with one line naming it and exit status 78 (EX_CONFIG), which
`oms run all` takes as a reason to leave the processor stopped rather than restart it into the same error."""

from __future__ import annotations

import pytest

from ops.cli import main
from processors.runtime.errors import CONFIG_EXIT_CODE
from topology.settings import get_settings


def test_a_setting_that_does_not_parse_is_named_in_one_line_with_exit_78(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMS_ORDER_PARTITIONS", "zero")
    get_settings.cache_clear()
    try:
        status = main(["status"])
    finally:
        get_settings.cache_clear()

    assert status == CONFIG_EXIT_CODE
    error = capsys.readouterr().err
    assert error.startswith("oms: settings that do not parse: OMS_ORDER_PARTITIONS: ")
    assert len(error.strip().splitlines()) == 1
