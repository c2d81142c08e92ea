"""What `oms track ORDER` prints of an order's trace: its id on the first line, and in the JSON."""

from __future__ import annotations

import datetime

from ops.tracking import summary, timeline_lines
from processors.tracking.timeline import fold
from tests.factories import a_valid_order

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def test_the_order_s_trace_id_is_printed_when_it_has_one() -> None:
    order = a_valid_order("o-1")
    traced, untraced = fold(None, order, trace_id=TRACE_ID), fold(None, order)
    assert traced is not None and untraced is not None

    assert timeline_lines(traced, datetime.timedelta(seconds=30))[0].endswith(f"; trace {TRACE_ID}")
    assert summary(traced)["trace_id"] == TRACE_ID
    assert "trace" not in timeline_lines(untraced, datetime.timedelta(seconds=30))[0]
