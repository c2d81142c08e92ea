"""The ledgers' own disk of a chaos run: filled to the last byte and freed, its files kept across the run."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pytest

from ops.fulldisk import LedgerDisk


def test_a_full_ledger_disk_refuses_writes_until_freed_and_the_ledger_outlives_the_run(tmp_path: Path) -> None:
    folder = tmp_path / "simulators"
    folder.mkdir()
    before = sqlite3.connect(folder / "ledger.sqlite")
    before.execute("CREATE TABLE effects (key TEXT PRIMARY KEY)")
    before.execute("INSERT INTO effects VALUES ('before the run')")
    before.commit()
    before.close()

    with LedgerDisk(folder) as disk:
        if os.geteuid() != 0:
            assert not disk.mounted and "root" in disk.why_not
            return
        assert disk.mounted, disk.why_not
        ledger = sqlite3.connect(folder / "ledger.sqlite")
        assert ledger.execute("SELECT key FROM effects").fetchall() == [("before the run",)]

        assert disk.fill() > 0
        with pytest.raises(OSError) as full:
            (folder / "more").write_bytes(b"x" * 65536)
        assert full.value.errno == errno.ENOSPC
        with pytest.raises(sqlite3.OperationalError, match="full"):
            ledger.execute("INSERT INTO effects VALUES (?)", ("x" * 200_000,))
            ledger.commit()
        ledger.rollback()

        disk.free()
        ledger.execute("INSERT INTO effects VALUES ('during the run')")
        ledger.commit()
        ledger.close()

    assert not disk.mounted
    assert not os.path.ismount(folder)
    after = sqlite3.connect(folder / "ledger.sqlite")
    assert sorted(after.execute("SELECT key FROM effects").fetchall()) == [("before the run",), ("during the run",)]
    after.close()
