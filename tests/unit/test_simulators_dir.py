"""Every simulator keeps its ledger in one folder: `<run_dir>/simulators`, or `OMS_SIMULATORS_DIR`."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.adapters.fulfillment_simulators import default_fulfillment_ledger
from processors.adapters.notification_channel import notifications_file
from processors.adapters.payment_gateway import default_ledger_path
from topology.settings import Settings

LEDGERS = (default_fulfillment_ledger, default_ledger_path, notifications_file)


def test_the_ledgers_live_under_the_run_folder_by_default(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path)

    assert {ledger(settings).parent for ledger in LEDGERS} == {tmp_path / "simulators"}


def test_the_simulators_folder_moves_every_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_SIMULATORS_DIR", str(tmp_path / "fresh"))
    settings = Settings(run_dir=tmp_path / "run")

    assert {ledger(settings).parent for ledger in LEDGERS} == {tmp_path / "fresh"}
