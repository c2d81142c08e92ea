from __future__ import annotations

import copy
import datetime
import uuid
from io import BytesIO

import fastavro
import pytest

from schemas.catalog import inline_shared_types, record, records, shared_types
from schemas.codegen import MODELS_PATH, render
from schemas.models import RECORD_TYPES, CancelOrder
from schemas.registry import declared_subjects
from topology.topics import WORKFLOW_TOPICS, TopicSpec


def test_models_module_is_generated_from_the_current_schemas() -> None:
    assert MODELS_PATH.read_text() == render(records().values()), "run `oms schemas codegen`"


def test_every_record_has_a_model_and_every_model_a_record() -> None:
    assert set(RECORD_TYPES) == set(records())


@pytest.mark.parametrize("topic", [t for t in WORKFLOW_TOPICS if t.key == "order_id"], ids=lambda t: t.name)
def test_order_keyed_records_carry_event_id_order_id_and_occurred_at(topic: TopicSpec) -> None:
    for fullname in topic.records:
        fields = {field["name"]: field["type"] for field in record(fullname).definition["fields"]}
        assert fields["event_id"] == {"type": "string", "logicalType": "uuid"}, fullname
        assert fields["order_id"] == "string", fullname
        assert fields["occurred_at"] == {"type": "long", "logicalType": "timestamp-millis"}, fullname


def _string_fields(node: object, owner: str) -> list[tuple[str, dict[str, object]]]:
    """Every field of a string type (or a string or null) in `node`, records nested in it included."""
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(node, list):
        for branch in node:
            found += _string_fields(branch, owner)
    elif isinstance(node, dict):
        if node.get("type") == "record":
            for field in node["fields"]:
                kinds = field["type"] if isinstance(field["type"], list) else [field["type"]]
                if "string" in kinds:
                    found.append((f"{node['name']}.{field['name']}", field))
                found += _string_fields(field["type"], owner)
        else:
            found += _string_fields(node.get("items"), owner) + _string_fields(node.get("values"), owner)
    return found


@pytest.mark.parametrize("fullname", sorted(records()))
def test_every_string_field_declares_the_most_it_may_carry(fullname: str) -> None:
    fields = _string_fields(record(fullname).definition, fullname)
    unbounded = [name for name, field in fields if not isinstance(field.get("maxLength"), int)]
    assert not unbounded, f"declare a maxLength for {unbounded}"


def test_a_declared_maximum_is_enforced_by_the_model() -> None:
    cancel = CancelOrder(
        event_id=uuid.uuid4(),
        order_id="o" * 128,
        occurred_at=datetime.datetime.now(datetime.UTC),
        reason="changed my mind",
        requested_by="customer",
    )
    with pytest.raises(ValueError, match="order_id"):
        CancelOrder.model_validate(cancel.model_dump() | {"order_id": "o" * 129})


def test_every_record_schema_is_carried_by_a_declared_topic() -> None:
    carried = {subject.schema.fullname for subject in declared_subjects()}
    assert carried == set(records())


def test_subjects_follow_topic_record_name_strategy() -> None:
    subjects = {subject.name for subject in declared_subjects()}
    assert "oms.orders.events-oms.orders.OrderCreated" in subjects
    assert "oms.orders.commands-oms.orders.CancelOrder" in subjects


def test_shared_types_are_inlined_once_per_schema() -> None:
    definition = record("oms.orders.OrderCreated").to_json()
    assert definition.count('"name":"Money"') == 1, "a named type is defined once, then referenced"
    fastavro.parse_schema(record("oms.orders.OrderCreated").definition)


def test_inlining_leaves_unknown_names_to_the_avro_parser() -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "x", "type": "oms.common.Nope"}]}

    assert inline_shared_types(schema, shared_types()) == schema


def test_model_values_encode_with_the_avro_schema() -> None:
    cancel = CancelOrder(
        event_id=uuid.uuid4(),
        order_id="o-9",
        occurred_at=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        reason="changed my mind",
    )
    parsed = fastavro.parse_schema(copy.deepcopy(record(cancel.AVRO_NAME).definition))

    buffer = BytesIO()
    fastavro.schemaless_writer(buffer, parsed, cancel.model_dump())
    buffer.seek(0)

    assert CancelOrder.model_validate(fastavro.schemaless_reader(buffer, parsed)) == cancel
