"""What every processor's Quix application is configured with, where a default would cost memory."""

from __future__ import annotations

from pathlib import Path

from processors.runtime.app import make_application
from topology.settings import Settings


def test_a_processor_reads_ahead_megabytes_not_librdkafkas_default_64(tmp_path: Path) -> None:
    app = make_application("oms.example", Settings(run_dir=tmp_path))

    read_ahead_kb = app.config.consumer_extra_config["queued.max.messages.kbytes"]

    assert read_ahead_kb <= 16_384, "a processor behind holds this much of its input in memory"
