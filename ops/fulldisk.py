"""A disk that a chaos run can fill: the simulators' ledgers on a small tmpfs of their own for the run, filled to
the last byte for a while and freed again, as a disk that ran full would be.

Mounting needs root (or CAP_SYS_ADMIN). Without it the run goes on without this fault and says why. The ledgers'
files are copied onto the tmpfs before any processor opens them and back afterwards, so that the ledgers go on
from where the run left them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

HEADROOM_BYTES = 64 * 2**20
"""Room for the run's own ledger writes, beyond twice what the ledgers hold already."""
FILLER = ".chaos-filler"


class LedgerDisk:
    """The folder `path` on a tmpfs of its own while entered (`with LedgerDisk(path) as disk:`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mounted = False
        self.why_not = ""
        """Why the folder is not on a disk of its own (empty when it is)."""

    def __enter__(self) -> LedgerDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            self.why_not = "mounting a tmpfs needs root"
            return self
        size = 2 * _bytes_in(self.path) + HEADROOM_BYTES
        with _copied_aside(self.path) as saved:
            mount = ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "oms-ledgers", str(self.path)]
            result = subprocess.run(mount, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                self.why_not = f"`{' '.join(mount)}` failed: {result.stderr.strip()}"
                return self
            self.mounted = True
            shutil.copytree(saved, self.path, dirs_exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        """Every process using the ledgers must have stopped: the tmpfs goes, its files back onto the folder."""
        if not self.mounted:
            return
        self.free()
        with _copied_aside(self.path) as saved:
            subprocess.run(["umount", str(self.path)], check=True, capture_output=True)
            self.mounted = False
            # A mirror, not a merge: a stale `-wal` beside a newer database would be replayed onto it.
            shutil.rmtree(self.path)
            shutil.copytree(saved, self.path)

    def fill(self) -> int:
        """Write until no byte is left; the bytes written."""
        written = 0
        descriptor = os.open(self.path / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (2**20, 2**12, 1):
                chunk = bytes(size)
                while True:
                    try:
                        written += os.write(descriptor, chunk)
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(descriptor)
        return written

    def free(self) -> None:
        (self.path / FILLER).unlink(missing_ok=True)


def _bytes_in(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


@contextlib.contextmanager
def _copied_aside(folder: Path) -> Iterator[Path]:
    """A copy of `folder`'s files in a temporary folder, removed after."""
    saved = Path(tempfile.mkdtemp(prefix="oms-ledgers-"))
    try:
        shutil.copytree(folder, saved, dirs_exist_ok=True, ignore=shutil.ignore_patterns(FILLER))
        yield saved
    finally:
        shutil.rmtree(saved, ignore_errors=True)
