"""`oms sagas retry`: which failed sagas it resumes, by name or in bulk."""

from __future__ import annotations

from ops.sagas import retry_choice
from processors.tracking.timeline import new_timeline
from schemas.models import OrderTimeline
from tests.factories import NOW


def saga(order_id: str, state: str | None, reason: str | None = None) -> OrderTimeline:
    return new_timeline(order_id, NOW).model_copy(update={"saga": state, "saga_reason": reason})


VIEW = {
    "o-1": saga("o-1", "Failed", "refund: gateway down after 5 attempts"),
    "o-2": saga("o-2", "Failed", "release inventory: timed out"),
    "o-3": saga("o-3", "Cancelled"),
    "o-4": saga("o-4", None),
}


def test_every_failed_saga_in_bulk_and_only_those() -> None:
    chosen, refused = retry_choice(VIEW, [], "Failed", None)
    assert chosen == [("o-1", VIEW["o-1"].saga_reason), ("o-2", VIEW["o-2"].saga_reason)]
    assert refused == []


def test_bulk_narrowed_by_the_failure_reason() -> None:
    chosen, _ = retry_choice(VIEW, [], "Failed", "GATEWAY")
    assert [order_id for order_id, _ in chosen] == ["o-1"]


def test_named_orders_that_did_not_fail_are_refused_with_why_unless_forced() -> None:
    chosen, refused = retry_choice(VIEW, ["o-2", "o-3", "o-9"], None, None)
    assert [order_id for order_id, _ in chosen] == ["o-2"]
    assert refused == [("o-3", "has Cancelled"), ("o-9", "is not in the view")]
    forced, refused = retry_choice(VIEW, ["o-3"], None, None, force=True)
    assert [order_id for order_id, _ in forced] == ["o-3"] and refused == []


def test_named_and_bulk_together_resume_each_once() -> None:
    chosen, _ = retry_choice(VIEW, ["o-1"], "Failed", None)
    assert [order_id for order_id, _ in chosen] == ["o-1", "o-2"]
