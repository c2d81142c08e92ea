"""`oms bench --in-process`: our code's CPU per order, every stream processor in one process, no broker."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from ops import code_cost
from ops.cli import main
from processors.runtime.colocated import CHAIN_PROCESSOR
from processors.runtime.inprocess import DEFERRED_WRITES
from processors.services import STREAM_PROCESSORS
from topology.settings import Settings

ORDERS = 30


@pytest.mark.parametrize("colocated", [False, True])
def test_every_stream_processor_is_charged_for_the_messages_its_stages_handled(tmp_path: Path, colocated: bool) -> None:
    settings = Settings(run_dir=tmp_path, colocated=colocated)
    result = code_cost.measure(settings, orders=ORDERS, seed=3, cancel_rate=0.2)

    charged = result["stage_cpu_ms_per_order"]["each"]
    engine = {CHAIN_PROCESSOR} if colocated else set()
    assert set(charged) == {spec.name for spec in STREAM_PROCESSORS} | engine | {DEFERRED_WRITES}
    assert all(ms > 0 for ms in charged.values())
    assert result["stage_cpu_ms_per_order"]["total"] == pytest.approx(sum(charged.values()), abs=0.01)
    # intake reads every command once: each order and each planned cancellation
    assert result["cancellations"] > 0
    assert result["messages_per_order"]["each"]["intake"] == round((ORDERS + result["cancellations"]) / ORDERS, 2)
    assert result["messages_per_order"]["each"]["sagas"] > result["messages_per_order"]["each"]["intake"]
    assert not list(tmp_path.iterdir()), "the simulators' ledgers go to a scratch folder, not the run folder"
    assert gc.get_freeze_count() == 0, "the heap frozen for the run is given back to the collector"


def test_the_report_names_every_processor_and_the_total(tmp_path: Path) -> None:
    result = code_cost.measure(Settings(run_dir=tmp_path), orders=5, seed=4, cancel_rate=0.0)

    lines = code_cost.report_lines(result)

    for name in result["stage_cpu_ms_per_order"]["each"]:
        assert any(line.strip().startswith(name) for line in lines), name
    assert any(line.strip().startswith("total") for line in lines)


def test_in_process_takes_no_rate_nor_other_checkout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--in-process", "--steady-rate", "10"]) == 2
    assert "--in-process" in capsys.readouterr().err
