"""What the processors' own code costs per order, without Kafka: `oms bench --in-process`.

Every declared stream processor runs in this one process (processors/runtime/inprocess.py) over the bench's
order mix, the order-keyed ones as one engine unless `OMS_COLOCATED=false` (as `oms run all` runs them; the
engine's own work besides their stages is charged to `oms.orders`): the same stages (topic contract, decode,
decision, encode, dead letters), codecs and simulators as on the broker, with state and schema registry in
memory. Each processor's CPU time inside its stages, and the writing of what the simulators deferred (once
per commit, every `COMMANDS_PER_COMMIT` commands), per order, is what our code costs. `oms bench` measures
the same processors on Kafka; the difference is the per-message floor beneath our code (Quix Streams,
librdkafka, RocksDB state and its changelogs, transactions, polling). The timers and the fleet's gauges are no
stream processors and are not run here.

Orders are placed one at a time, each followed by everything it leads to, and a planned cancellation comes
after its order and up to three more (so most find their order delivered). Without a broker the figures
move by a few per cent between runs, which makes this the place to compare two versions of a handler or a
codec; the broker run says what the system as a whole gains.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ops.chaos import stock_for
from ops.orders import OrderMix, generate_orders
from ops.produce import CancellationPlan
from ops.stock import level_records
from processors.runtime.heap import freeze_startup_heap
from processors.runtime.inprocess import InProcessRunner
from processors.runtime.records import Emit
from processors.services import STREAM_PROCESSORS
from topology.settings import Settings
from topology.topics import INVENTORY_STOCK, ORDERS_COMMANDS

DEFAULT_ORDERS = 2000
SPARE_UNITS = 10
# Commands between two commits: what an engine instance takes in a quarter-second commit interval at 40
# orders a second, about what each of two does at full speed on a 2-core machine.
COMMANDS_PER_COMMIT = 10


def measure(
    settings: Settings,
    orders: int = DEFAULT_ORDERS,
    seed: int = 1,
    mix: OrderMix | None = None,
    cancel_rate: float = 0.1,
) -> dict[str, Any]:
    """Run `orders` orders through every stream processor in this process; CPU per order by processor."""
    generated = generate_orders(orders, seed, prefix=f"in-process-{seed}", mix=mix or OrderMix())
    with tempfile.TemporaryDirectory(prefix="oms-in-process-") as run_dir:
        # The simulators' ledgers go to a scratch folder: this run is no business of the local platform's.
        runner = InProcessRunner(
            STREAM_PROCESSORS, settings.model_copy(update={"run_dir": Path(run_dir)}), colocated=settings.colocated
        )
        levels = level_records(stock_for(generated, spare=SPARE_UNITS))
        runner.send(*(Emit(INVENTORY_STOCK, level.sku, level) for level in levels))
        runner.run()
        runner.cpu_s.clear()
        runner.handled.clear()
        freeze_startup_heap()  # as `oms run` does (processors/services.py); unfrozen after, for the caller
        try:
            placed = [(float(index), order.order_id, order.record) for index, order in enumerate(generated)]
            cancels = CancellationPlan(cancel_rate, seed).commands(placed) if cancel_rate else []
            started_cpu, started_wall = time.thread_time(), time.perf_counter()
            commands = sorted([*placed, *cancels], key=lambda entry: entry[0])
            for index, (_, order_id, record) in enumerate(commands, start=1):
                runner.send(Emit(ORDERS_COMMANDS, order_id, record))
                runner.run(commit=index % COMMANDS_PER_COMMIT == 0)
            runner.commit()
            cpu_s, wall_s = time.thread_time() - started_cpu, time.perf_counter() - started_wall
        finally:
            gc.unfreeze()
    per_order = {name: round(seconds * 1000 / orders, 3) for name, seconds in sorted(runner.cpu_s.items())}
    return {
        "benchmark": "in-process",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count()},
        "orders": orders,
        "mix": (mix or OrderMix()).weights(),
        "cancel_rate": cancel_rate,
        "cancellations": len(cancels),
        "colocated": settings.colocated,
        "stage_cpu_ms_per_order": {"each": per_order, "total": round(sum(per_order.values()), 3)},
        "messages_per_order": {
            "each": {name: round(count / orders, 2) for name, count in sorted(runner.handled.items())},
            "total": round(sum(runner.handled.values()) / orders, 2),
        },
        "stage_us_per_message": {
            name: round(runner.cpu_s[name] * 1e6 / count) for name, count in sorted(runner.handled.items()) if count
        },
        "run_cpu_ms_per_order": round(cpu_s * 1000 / orders, 3),
        "wall_s": round(wall_s, 1),
    }


def report_lines(result: dict[str, Any]) -> list[str]:
    cost, messages = result["stage_cpu_ms_per_order"], result["messages_per_order"]
    lines = [
        f"{result['orders']} orders in process, no broker ({result['cancellations']} cancellations), "
        f"{'order-keyed processors together' if result.get('colocated') else 'every processor alone'}, "
        f"{result['wall_s']} s",
        "processor       stage CPU ms/order   messages/order   us/message",
    ]
    for name, ms in cost["each"].items():
        if name in messages["each"]:
            lines.append(
                f"  {name:<14}{ms:>10.3f}{messages['each'][name]:>19.2f}{result['stage_us_per_message'][name]:>13}"
            )
        else:  # the adapters' deferred writes, flushed once per commit
            lines.append(f"  {name:<14}{ms:>10.3f}")
    lines.append(f"  {'total':<14}{cost['total']:>10.3f}{messages['total']:>19.2f}")
    lines.append(
        f"whole run, with the runner's own delivery and decoding: {result['run_cpu_ms_per_order']:.3f} CPU ms/order"
    )
    return lines
