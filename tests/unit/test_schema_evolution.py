"""Schema evolution: which changes keep old and new producers and consumers working, without a registry."""

from __future__ import annotations

import argparse
import copy
import io
from collections.abc import Callable
from typing import Any

import fastavro
import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from ops.cli import cmd_schemas_check
from schemas import registry as registry_module
from schemas.catalog import RecordSchema, record
from schemas.evolution import breaking_changes
from schemas.registry import COMPATIBILITY_LEVEL, Subject, check, patiently, register, subject_name
from schemas.serde import MAGIC_BYTE, RecordCodec, UndecodableRecord
from tests.factories import a_valid_order
from topology.settings import Settings
from topology.topics import ORDERS_COMMANDS

Fields = list[dict[str, Any]]
PLACE_ORDER = "oms.orders.PlaceOrder"


def evolved(fullname: str, *edits: Callable[[Fields], None]) -> RecordSchema:
    """A copy of a record's schema with its fields edited; the `.avsc` files stay as they are."""
    original = record(fullname)
    definition = copy.deepcopy(original.definition)
    for edit in edits:
        edit(definition["fields"])
    return RecordSchema(fullname, definition, original.path)


def removing(name: str) -> Callable[[Fields], None]:
    return lambda fields: fields.remove(next(field for field in fields if field["name"] == name))


def adding(field: dict[str, Any]) -> Callable[[Fields], None]:
    return lambda fields: fields.append(field)


def retyping(name: str, avro_type: Any) -> Callable[[Fields], None]:
    return lambda fields: next(field for field in fields if field["name"] == name).update(type=avro_type)


def defaulting(name: str, default: Any) -> Callable[[Fields], None]:
    return lambda fields: next(field for field in fields if field["name"] == name).update(default=default)


def changes(new: RecordSchema, *registered: RecordSchema, level: str = COMPATIBILITY_LEVEL) -> list[str]:
    versions = {number: schema.to_json() for number, schema in enumerate(registered, start=1)}
    return breaking_changes(new.to_json(), versions, level)


def test_the_contract_is_full_transitive() -> None:
    assert COMPATIBILITY_LEVEL == "FULL_TRANSITIVE"


def test_adding_a_field_with_a_default_is_compatible() -> None:
    new = evolved(PLACE_ORDER, adding({"name": "loyalty_tier", "type": "string", "default": "none"}))

    assert changes(new, record(PLACE_ORDER)) == []


def test_removing_a_field_that_has_a_default_is_compatible() -> None:
    assert changes(evolved(PLACE_ORDER, removing("is_gift")), record(PLACE_ORDER)) == []


def test_removing_a_required_field_breaks_old_consumers_and_names_the_field() -> None:
    assert changes(evolved(PLACE_ORDER, removing("customer_email")), record(PLACE_ORDER)) == [
        "against version 1: field 'customer_email': removed, but version 1 has no default for it, "
        "so consumers still on version 1 cannot read new records"
    ]


def test_removing_a_required_field_passed_under_the_old_backward_level() -> None:
    """Why the level changed: BACKWARD alone lets old consumers break."""
    new = evolved(PLACE_ORDER, removing("customer_email"))

    assert changes(new, record(PLACE_ORDER), level="BACKWARD_TRANSITIVE") == []


def test_adding_a_field_without_a_default_breaks_new_consumers_of_old_records() -> None:
    new = evolved(PLACE_ORDER, adding({"name": "loyalty_tier", "type": "string"}))

    assert changes(new, record(PLACE_ORDER)) == [
        "against version 1: field 'loyalty_tier': added without a default, "
        "so records written with version 1 cannot be read"
    ]


def test_a_type_change_breaks_both_sides_and_names_the_field() -> None:
    new = evolved("oms.orders.CancelOrder", retyping("reason", "int"))

    assert changes(new, record("oms.orders.CancelOrder")) == [
        "against version 1: field 'reason': type changed from string to int, "
        "so neither version 1 nor the new schema can read the other's records"
    ]


def test_a_widening_type_change_breaks_old_consumers_only() -> None:
    new = evolved("oms.inventory.StockRequest", retyping("quantity", "long"))
    [reason] = changes(new, record("oms.inventory.StockRequest"))

    assert reason.startswith("against version 1: field 'quantity': type changed from int to long")
    assert reason.endswith("consumers still on version 1 cannot read new records")
    assert changes(new, record("oms.inventory.StockRequest"), level="BACKWARD") == []


def test_a_change_inside_a_nested_record_names_its_path() -> None:
    def quantity_as_string(fields: Fields) -> None:
        lines = next(field for field in fields if field["name"] == "lines")
        retyping("quantity", "string")(lines["type"]["items"]["fields"])

    [reason] = changes(evolved(PLACE_ORDER, quantity_as_string), record(PLACE_ORDER))

    assert reason.startswith("against version 1: field 'lines[].quantity': type changed from int to string")


def test_a_new_enum_symbol_needs_the_enum_default_for_old_readers() -> None:
    def enum_of(symbols: list[str], **default: str) -> dict[str, Any]:
        return {
            "type": "record",
            "name": "Parcel",
            "namespace": "oms.test",
            "fields": [{"name": "carrier", "type": {"type": "enum", "name": "Carrier", "symbols": symbols, **default}}],
        }

    def as_record(definition: dict[str, Any]) -> RecordSchema:
        return RecordSchema("oms.test.Parcel", definition, record(PLACE_ORDER).path)

    without_default = changes(as_record(enum_of(["DHL", "UPS"])), as_record(enum_of(["DHL"])))
    with_default = changes(
        as_record(enum_of(["DHL", "UPS", "OTHER"], default="OTHER")),
        as_record(enum_of(["DHL", "OTHER"], default="OTHER")),
    )

    assert len(without_default) == 1 and without_default[0].startswith("against version 1: field 'carrier': ")
    assert "consumers still on version 1 cannot read new records" in without_default[0]
    assert with_default == []


def test_every_registered_version_is_checked_not_only_the_latest() -> None:
    with_email = record(PLACE_ORDER)
    email_optional = evolved(PLACE_ORDER, defaulting("customer_email", ""))
    without_email = evolved(PLACE_ORDER, removing("customer_email"))

    # Against the latest version alone (a field with a default) the removal is fine ...
    assert changes(without_email, email_optional, level="FULL") == []
    # ... but consumers still on version 1 require the field.
    assert changes(without_email, with_email, email_optional) != []
    assert all(
        reason.startswith("against version 1: ") for reason in changes(without_email, with_email, email_optional)
    )


def test_a_renamed_record_is_reported_as_the_record() -> None:
    renamed = copy.deepcopy(record("oms.orders.CancelOrder").definition)
    renamed["name"] = "CancelOrderRequest"

    reasons = changes(
        RecordSchema("oms.orders.CancelOrderRequest", renamed, record(PLACE_ORDER).path),
        record("oms.orders.CancelOrder"),
    )

    assert reasons and all(reason.startswith("against version 1: the record: ") for reason in reasons)


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="BACKWARDS"):
        changes(record(PLACE_ORDER), record(PLACE_ORDER), level="BACKWARDS")


class ReadOnlyRegistry:
    """A registry in memory that fails the test on any call but the reads `check` may make."""

    READS = frozenset({"get_versions", "get_version", "get_latest_version", "get_schema", "get_compatibility"})

    def __init__(self, inner: SchemaRegistryClient) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def test_compatibility_all_versions(self, subject: str, schema: Schema) -> bool:
        self.calls.append("test_compatibility_all_versions")
        return True

    def __getattr__(self, name: str) -> Any:
        if name not in self.READS:
            raise AssertionError(f"a check must only read; it called {name}")
        self.calls.append(name)
        return getattr(self._inner, name)


class LevelsRegistry:
    """The in-memory registry, plus the per-subject levels confluent-kafka's mock lacks; records writes in order."""

    def __init__(self) -> None:
        self._inner = SchemaRegistryClient.new_client({"url": "mock://evolution"})
        self.levels: dict[str, str] = {}
        self.writes: list[tuple[str, str]] = []

    def get_compatibility(self, subject_name: str | None = None) -> str:
        if subject_name not in self.levels:
            raise SchemaRegistryError(404, 40401, f"Subject '{subject_name}' not found.")
        return self.levels[subject_name]

    def set_compatibility(self, subject_name: str | None = None, level: str | None = None) -> str:
        assert subject_name is not None and level is not None
        self.writes.append(("set_compatibility", subject_name))
        self.levels[subject_name] = level
        return level

    def register_schema(self, subject_name: str, schema: Schema, normalize_schemas: bool = False) -> int:
        self.writes.append(("register_schema", subject_name))
        return self._inner.register_schema(subject_name, schema, normalize_schemas)


@pytest.fixture
def memory() -> SchemaRegistryClient:
    return SchemaRegistryClient.new_client({"url": "mock://evolution"})


def place_order_subject(schema: RecordSchema | None = None) -> Subject:
    return Subject(subject_name(ORDERS_COMMANDS.name, PLACE_ORDER), ORDERS_COMMANDS, schema or record(PLACE_ORDER))


def test_check_only_reads_the_registry(memory: SchemaRegistryClient) -> None:
    memory.register_schema(place_order_subject().name, place_order_subject().to_registry_schema())
    read_only = ReadOnlyRegistry(memory)

    result = check(read_only, place_order_subject(evolved(PLACE_ORDER, removing("customer_email"))))

    assert not result.compatible
    assert "get_versions" in read_only.calls


def test_oms_schemas_check_fails_naming_the_removed_field_and_writes_nothing(
    memory: SchemaRegistryClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    memory.register_schema(place_order_subject().name, place_order_subject().to_registry_schema())
    read_only = ReadOnlyRegistry(memory)
    monkeypatch.setattr(registry_module, "registry_client", lambda settings: read_only)
    monkeypatch.setattr(
        registry_module,
        "declared_subjects",
        lambda: iter([place_order_subject(evolved(PLACE_ORDER, removing("customer_email")))]),
    )

    exit_code = cmd_schemas_check(argparse.Namespace(json=False), Settings())

    output = capsys.readouterr().out
    assert exit_code == 1
    assert "INCOMPATIBLE  oms.orders.commands-oms.orders.PlaceOrder (schemas/orders/PlaceOrder.avsc)" in output
    assert "field 'customer_email': removed" in output


def test_oms_schemas_check_passes_a_field_added_with_a_default(
    memory: SchemaRegistryClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    memory.register_schema(place_order_subject().name, place_order_subject().to_registry_schema())
    monkeypatch.setattr(registry_module, "registry_client", lambda settings: ReadOnlyRegistry(memory))
    added = evolved(PLACE_ORDER, adding({"name": "loyalty_tier", "type": "string", "default": "none"}))
    monkeypatch.setattr(registry_module, "declared_subjects", lambda: iter([place_order_subject(added)]))

    assert cmd_schemas_check(argparse.Namespace(json=False), Settings()) == 0
    assert "ok            oms.orders.commands-oms.orders.PlaceOrder (compatible)" in capsys.readouterr().out


def test_register_sets_each_subject_level_before_its_schema_and_only_when_it_differs() -> None:
    client = LevelsRegistry()
    subject = place_order_subject()

    register(client, [subject])
    register(client, [subject])

    assert client.levels == {subject.name: "FULL_TRANSITIVE"}
    assert client.writes == [
        ("set_compatibility", subject.name),
        ("register_schema", subject.name),
        ("register_schema", subject.name),
    ]


class SlowRegistry(LevelsRegistry):
    """Does not answer the first `timeouts` registrations in time, then answers."""

    def __init__(self, timeouts: int) -> None:
        super().__init__()
        self.timeouts = timeouts

    def register_schema(self, subject_name: str, schema: Schema, normalize_schemas: bool = False) -> int:
        if self.timeouts:
            self.timeouts -= 1
            raise httpx.ReadTimeout("The read operation timed out")
        return super().register_schema(subject_name, schema, normalize_schemas)


def test_register_asks_again_a_registry_that_did_not_answer_in_time() -> None:
    client = SlowRegistry(timeouts=2)
    subject = place_order_subject()

    ids = register(client, [subject], pauses=(0.0, 0.0, 0.0))

    assert ids == {subject.name: client._inner.get_latest_version(subject.name).schema_id}
    assert client.writes == [("set_compatibility", subject.name), ("register_schema", subject.name)]


def test_register_gives_up_when_the_registry_never_answers_and_never_asks_again_after_a_refusal() -> None:
    with pytest.raises(httpx.ReadTimeout):
        register(SlowRegistry(timeouts=3), [place_order_subject()], pauses=(0.0, 0.0))

    asked = 0

    def refuse() -> int:
        nonlocal asked
        asked += 1
        raise SchemaRegistryError(409, 409, "incompatible")

    with pytest.raises(SchemaRegistryError):
        patiently(refuse, pauses=(0.0, 0.0))
    assert asked == 1


def framed(schema_id: int, schema: RecordSchema, fields: dict[str, Any]) -> bytes:
    """A record as a producer on `schema` writes it: Confluent framing, then the Avro body."""
    buffer = io.BytesIO()
    buffer.write(bytes([MAGIC_BYTE]) + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(copy.deepcopy(schema.definition)), fields)
    return buffer.getvalue()


def test_an_old_consumer_reads_records_of_a_compatible_new_schema(memory: SchemaRegistryClient) -> None:
    new = evolved(
        PLACE_ORDER, adding({"name": "loyalty_tier", "type": "string", "default": "none"}), removing("is_gift")
    )
    assert changes(new, record(PLACE_ORDER)) == []
    new_id = memory.register_schema("producer-v2", Schema(new.to_json(), "AVRO"))
    order = a_valid_order(is_gift=True)
    fields = {**{k: v for k, v in order.model_dump().items() if k != "is_gift"}, "loyalty_tier": "gold"}

    read = RecordCodec(memory, ORDERS_COMMANDS.name).decode(framed(new_id, new, fields))

    assert read == order.model_copy(update={"is_gift": False})  # the old schema's default fills the removed field


def test_an_old_consumer_cannot_read_records_without_a_field_it_requires(memory: SchemaRegistryClient) -> None:
    new = evolved(PLACE_ORDER, removing("customer_email"))
    new_id = memory.register_schema("producer-v2", Schema(new.to_json(), "AVRO"))
    fields = {k: v for k, v in a_valid_order().model_dump().items() if k != "customer_email"}

    with pytest.raises(UndecodableRecord, match="customer_email"):
        RecordCodec(memory, ORDERS_COMMANDS.name).decode(framed(new_id, new, fields))
