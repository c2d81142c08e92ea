"""docs/producing.md: its rules table is what intake answers today, and its example order is one intake accepts."""

from __future__ import annotations

from ops.producing import CASES, DOC, answer, example_fields, rules_rows, rules_table
from processors.intake_rules import RejectionCode


def test_the_guide_shows_the_table_intake_gives_today() -> None:
    assert rules_table() in DOC.read_text(), "docs/producing.md is out of date: run `oms intake rules --write`"


def test_the_example_order_is_accepted() -> None:
    assert answer(example_fields("ord-1")) == ([], [])


def test_every_row_is_a_rejection_and_every_code_has_a_row() -> None:
    rows = rules_rows()
    assert len(rows) == len(CASES) + 1
    assert all(codes != "(accepted)" and reasons for _, codes, reasons in rows)
    shown = {code.strip() for _, codes, _ in rows for code in codes.split(",")}
    assert shown == {code.value for code in RejectionCode}
