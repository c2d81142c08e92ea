"""Generate `schemas/models.py`, pydantic models of every Avro record, from the `.avsc` files.

The Avro schemas are the contract; the models are derived from them so that nothing is kept twice by hand.
`oms schemas codegen` rewrites the module and a test fails when it is out of date.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from schemas.catalog import SCHEMA_DIR, RecordSchema, records

MODELS_PATH = SCHEMA_DIR / "models.py"

HEADER = '''"""Pydantic models of the Avro records in schemas/; made by `oms schemas codegen`, do not edit."""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class AvroRecord(BaseModel):
    """A record of the wire contract; `AVRO_NAME` is its Avro full name."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    AVRO_NAME: ClassVar[str]


class Event(AvroRecord):
    """An event or command: unique per message, and when its fact happened."""

    event_id: uuid.UUID
    occurred_at: datetime.datetime


class OrderEvent(Event):
    """An event or command about one order."""

    order_id: str
'''

# The common fields that make a record an `Event` or an `OrderEvent`, as the schemas declare them.
EVENT_FIELDS = {"event_id": "uuid.UUID", "occurred_at": "datetime.datetime"}
ORDER_EVENT_FIELDS = {**EVENT_FIELDS, "order_id": "str"}

PRIMITIVES = {
    "string": "str",
    "int": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "boolean": "bool",
    "bytes": "bytes",
    "null": "None",
}
LOGICAL = {
    "uuid": "uuid.UUID",
    "timestamp-millis": "datetime.datetime",
    "timestamp-micros": "datetime.datetime",
}


class _Module:
    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.defined: dict[str, dict[str, Any]] = {}

    def type_of(self, node: Any, namespace: str | None) -> str:
        """The Python annotation of an Avro type, emitting named types on first sight."""
        if isinstance(node, str):
            if node in PRIMITIVES:
                return PRIMITIVES[node]
            return self._reference(node, namespace)
        if isinstance(node, list):
            branches = [self.type_of(branch, namespace) for branch in node]
            # `X | None` reads better than Avro's customary `["null", X]` order.
            return " | ".join(sorted(branches, key=lambda branch: branch == "None"))
        kind = node["type"]
        if "logicalType" in node and node["logicalType"] in LOGICAL:
            return LOGICAL[node["logicalType"]]
        if kind == "array":
            return f"list[{self.type_of(node['items'], namespace)}]"
        if kind == "map":
            return f"dict[str, {self.type_of(node['values'], namespace)}]"
        if kind in ("record", "enum"):
            return self.define(node, namespace)
        return self.type_of(kind, namespace)

    def _reference(self, name: str, namespace: str | None) -> str:
        fullname = name if "." in name or namespace is None else f"{namespace}.{name}"
        if fullname not in self.defined:
            raise ValueError(f"Avro type {fullname} is used before it is defined")
        return fullname.rsplit(".", 1)[-1]

    def define(self, node: dict[str, Any], namespace: str | None) -> str:
        namespace = node.get("namespace", namespace)
        name = node["name"]
        fullname = f"{namespace}.{name}" if namespace else name
        if fullname in self.defined:
            if self.defined[fullname] != node:
                raise ValueError(f"{fullname} has two different definitions")
            return name
        self.defined[fullname] = node
        if node["type"] == "enum":
            self.blocks.append(_enum_block(name, node))
            return name
        fields = [(field, self.type_of(field["type"], namespace)) for field in node["fields"]]
        self.blocks.append(_record_block(name, fullname, node.get("doc"), fields))
        return name


def _enum_block(name: str, node: dict[str, Any]) -> str:
    symbols = "".join(f'    {symbol} = "{symbol}"\n' for symbol in node["symbols"])
    return f"\n\nclass {name}(enum.StrEnum):\n{symbols}"


def _base(fields: list[tuple[dict[str, Any], str]]) -> str:
    """The most specific common base whose fields the record has, with the same types."""
    annotations = {field["name"]: annotation for field, annotation in fields}
    for base, common in (("OrderEvent", ORDER_EVENT_FIELDS), ("Event", EVENT_FIELDS)):
        if all(annotations.get(name) == annotation for name, annotation in common.items()):
            return base
    return "AvroRecord"


def _record_block(name: str, fullname: str, doc: str | None, fields: list[tuple[dict[str, Any], str]]) -> str:
    lines = [f"\n\nclass {name}({_base(fields)}):"]
    if doc:
        lines.append(f'    """{doc}"""\n')
    lines.append(f'    AVRO_NAME: ClassVar[str] = "{fullname}"')
    for field, annotation in fields:
        lines.append(f"    {field['name']}: {annotation}{_default(field, annotation)}")
    return "\n".join(lines) + "\n"


def _default(field: dict[str, Any], annotation: str) -> str:
    """The field's `= Field(...)`: its default, its `maxLength` (the most a string field may carry), its doc."""
    description = f"description={json.dumps(field['doc'])}" if "doc" in field else ""
    max_length = f"max_length={field['maxLength']}" if "maxLength" in field else ""
    if "default" not in field:
        options = ", ".join(filter(None, [max_length, description]))
        return f" = Field({options})" if options else ""
    value = field["default"]
    if isinstance(value, list):
        default = "default_factory=list"
    elif isinstance(value, dict):
        default = "default_factory=dict"
    elif isinstance(value, str) and annotation.isidentifier() and annotation not in PRIMITIVES.values():
        default = f"default={annotation}.{value}"  # an enum symbol
    else:
        literal = json.dumps(value) if isinstance(value, str) else repr(value)
        default = f"default={literal}"
    return f" = Field({', '.join(filter(None, [default, max_length, description]))})"


def render(schemas: Iterable[RecordSchema]) -> str:
    module = _Module()
    top_level = []
    for schema in schemas:
        module.define(schema.definition, None)
        top_level.append(schema)
    registry = "".join(f'    "{schema.fullname}": {schema.name},\n' for schema in top_level)
    footer = f"\n\nRECORD_TYPES: dict[str, type[AvroRecord]] = {{\n{registry}}}\n"
    return HEADER + "".join(module.blocks) + footer


def write(path: Path = MODELS_PATH) -> Path:
    path.write_text(render(records().values()))
    return path
