"""Load the Avro schemas under `schemas/` into self-contained record schemas, one per event or command."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro

SCHEMA_DIR = Path(__file__).resolve().parent
SHARED_DIR = SCHEMA_DIR / "common"

AvroType = Any  # A parsed Avro JSON type: str, list (union) or dict.


@dataclass(frozen=True)
class RecordSchema:
    """One event or command type as it goes on the wire."""

    fullname: str
    definition: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        return self.fullname.rsplit(".", 1)[-1]

    def to_json(self) -> str:
        return json.dumps(self.definition, separators=(",", ":"))


def fullname_of(definition: dict[str, Any]) -> str:
    namespace = definition.get("namespace")
    return f"{namespace}.{definition['name']}" if namespace else definition["name"]


@cache
def shared_types() -> dict[str, dict[str, Any]]:
    """Named types of `schemas/common/`, by full name."""
    types = {}
    for path in sorted(SHARED_DIR.glob("*.avsc")):
        definition = json.loads(path.read_text())
        types[fullname_of(definition)] = definition
    return types


@cache
def records() -> dict[str, RecordSchema]:
    """Every event and command schema, by full name (e.g. `oms.orders.OrderCreated`)."""
    found: dict[str, RecordSchema] = {}
    for path in sorted(SCHEMA_DIR.glob("*/*.avsc")):
        if path.parent == SHARED_DIR:
            continue
        definition = inline_shared_types(json.loads(path.read_text()), shared_types())
        fastavro.parse_schema(copy.deepcopy(definition))  # fail early, naming nothing on the wire
        record = RecordSchema(fullname_of(definition), definition, path)
        if record.fullname in found:
            raise ValueError(f"{record.fullname} is defined twice: {found[record.fullname].path} and {path}")
        found[record.fullname] = record
    return found


def record(fullname: str) -> RecordSchema:
    try:
        return records()[fullname]
    except KeyError:
        raise KeyError(f"no Avro schema for {fullname!r} under {SCHEMA_DIR}") from None


def inline_shared_types(schema: AvroType, shared: dict[str, dict[str, Any]]) -> AvroType:
    """Replace the first reference to each shared named type with its definition.

    Avro allows a named type to be defined once per schema; later references stay names.
    """
    defined: set[str] = set()

    def visit(node: AvroType, namespace: str | None) -> AvroType:
        if isinstance(node, str):
            if node in shared and node not in defined:
                return visit(copy.deepcopy(shared[node]), None)
            return node
        if isinstance(node, list):
            return [visit(branch, namespace) for branch in node]
        kind = node.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            namespace = node.get("namespace", namespace)
            defined.add(f"{namespace}.{node['name']}" if namespace else node["name"])
        if kind in ("record", "error"):
            return {**node, "fields": [{**f, "type": visit(f["type"], namespace)} for f in node["fields"]]}
        if kind == "array":
            return {**node, "items": visit(node["items"], namespace)}
        if kind == "map":
            return {**node, "values": visit(node["values"], namespace)}
        if isinstance(kind, (str, list, dict)) and kind not in ("enum", "fixed"):
            return {**node, "type": visit(kind, namespace)}
        return node

    return visit(schema, None)
