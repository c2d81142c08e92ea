"""Every row of the cancellation rules (`processors/sagas/rules.py`, the table in docs/sagas.md) holds in the
saga's transition table."""

from __future__ import annotations

import uuid

import pytest

from ops.sagas import DOCS
from processors.sagas.cancellation import CancellationSaga, Cause, Phase, advance
from processors.sagas.rules import RULES, Rule, rules_table
from schemas.models import OrderCancellationRejected
from tests.factories import NOW


@pytest.mark.parametrize("rule", RULES, ids=[rule.situation for rule in RULES])
def test_each_rule_is_what_the_saga_does(rule: Rule) -> None:
    first = str(uuid.uuid4())
    saga = CancellationSaga(phase=rule.phase, saga_id=None if rule.phase == Phase.IDLE else first)
    cause = Cause(str(uuid.uuid4()), "o-1", str(rule.trigger))

    advanced = advance(rule.facts, saga, rule.trigger, cause, NOW)

    assert advanced.saga.phase == rule.then
    refusals = [emit.record for emit in advanced.emits if isinstance(emit.record, OrderCancellationRejected)]
    assert [refusal.code for refusal in refusals] == ([rule.code] if rule.code else [])


def test_the_table_in_the_docs_is_the_rules_own() -> None:
    assert rules_table() in DOCS.read_text(), "run `oms sagas rules --write` to refresh docs/sagas.md"
