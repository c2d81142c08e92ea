"""Which schema changes keep producers and consumers that upgrade independently working.

Avro reads a record with two schemas, the writer's and the reader's. A change is safe in one direction when
that resolution succeeds: BACKWARD, the new schema reads records written with an old one (a consumer upgraded
before the data); FORWARD, an old schema reads records written with the new one (a consumer not upgraded yet).
FULL is both; `_TRANSITIVE` asks it of every registered version, not only the latest. The level names are
the Confluent registry's: this module asks the registry's question locally, so that the answer names the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)


class Direction(Enum):
    BACKWARD = "the new schema reads old records"
    FORWARD = "old schemas read new records"


def directions(level: str) -> frozenset[Direction]:
    if level not in LEVELS:
        raise ValueError(f"unknown compatibility level {level!r}; one of {', '.join(LEVELS)}")
    base = level.removesuffix("_TRANSITIVE")
    return frozenset(
        {
            "NONE": (),
            "BACKWARD": (Direction.BACKWARD,),
            "FORWARD": (Direction.FORWARD,),
            "FULL": (Direction.BACKWARD, Direction.FORWARD),
        }[base]
    )


def versions_checked(level: str, versions: list[int]) -> list[int]:
    """Every version for a transitive level, else the latest alone."""
    return sorted(versions) if level.endswith("_TRANSITIVE") else sorted(versions)[-1:]


def breaking_changes(new_json: str, registered: Mapping[int, str], level: str) -> list[str]:
    """Why the schema `new_json` cannot follow the `registered` versions (JSON by version) under `level`.

    Empty when it can. Each reason names the version and the field, e.g.
    `against version 1: field 'customer_email': removed, ...`.
    """
    wanted = directions(level)
    new = avro.schema.parse(new_json)
    reasons = []
    for version in versions_checked(level, list(registered)):
        old = avro.schema.parse(registered[version])
        reasons += [f"against version {version}: {reason}" for reason in _breaks(new, old, version, wanted)]
    return reasons


@dataclass
class _FieldBreak:
    """A field that one side cannot read from the other's records."""

    path: str
    old: avro.schema.Schema | None  # None: the field is new
    new: avro.schema.Schema | None  # None: the field was removed
    broken: set[Direction] = field(default_factory=set)
    messages: set[str] = field(default_factory=set)

    def why(self, version: int) -> str:
        if self.old is None:
            return f"added without a default, so records written with version {version} cannot be read"
        if self.new is None:
            return (
                f"removed, but version {version} has no default for it, "
                f"so consumers still on version {version} cannot read new records"
            )
        if self.broken == {Direction.BACKWARD}:
            who = f"records written with version {version} cannot be read"
        elif self.broken == {Direction.FORWARD}:
            who = f"consumers still on version {version} cannot read new records"
        else:
            who = f"neither version {version} nor the new schema can read the other's records"
        before, after = type_name(self.old), type_name(self.new)
        if before != after:
            return f"type changed from {before} to {after}, so {who}"
        return f"{before} changed ({'; '.join(sorted(self.messages))}), so {who}"


def _breaks(new: avro.schema.Schema, old: avro.schema.Schema, version: int, wanted: frozenset[Direction]) -> list[str]:
    found: dict[str, _FieldBreak] = {}
    if Direction.BACKWARD in wanted:
        for path, reader_type, writer_type, messages in _unreadable(new, old):
            broken = found.setdefault(path, _FieldBreak(path, old=writer_type, new=reader_type))
            broken.broken.add(Direction.BACKWARD)
            broken.messages.update(messages)
    if Direction.FORWARD in wanted:
        for path, reader_type, writer_type, messages in _unreadable(old, new):
            broken = found.setdefault(path, _FieldBreak(path, old=reader_type, new=writer_type))
            broken.broken.add(Direction.FORWARD)
            broken.messages.update(messages)
    if found:
        return [f"field '{path}': {broken.why(version)}" for path, broken in found.items()]
    # Nothing field by field: what remains is the record itself (a rename), said as Avro says it.
    pairs = [(new, old)] if Direction.BACKWARD in wanted else []
    pairs += [(old, new)] if Direction.FORWARD in wanted else []
    return sorted(
        {f"the record: {message}" for reader, writer in pairs for message in _incompatibilities(reader, writer)}
    )


_Unreadable = tuple[str, avro.schema.Schema, avro.schema.Schema | None, list[str]]


def _unreadable(reader: avro.schema.Schema, writer: avro.schema.Schema, prefix: str = "") -> Iterator[_Unreadable]:
    """The fields of `reader` it cannot fill from a record written with `writer`, by dotted path: each with its
    reader type, its writer type (None when the writer lacks the field) and Avro's messages."""
    if not isinstance(reader, avro.schema.RecordSchema) or not isinstance(writer, avro.schema.RecordSchema):
        return
    for wanted in reader.fields:
        path = f"{prefix}{wanted.name}"
        source = writer.fields_dict.get(wanted.name)
        if source is None:
            if not wanted.has_default:
                yield path, wanted.type, None, []
            continue
        nested = _same_record(wanted.type, source.type)
        if nested is not None:
            yield from _unreadable(*nested, prefix=f"{path}{_nesting(wanted.type)}.")
            continue
        messages = _incompatibilities(wanted.type, source.type)
        if messages:
            yield path, wanted.type, source.type, messages


def _same_record(
    reader: avro.schema.Schema, writer: avro.schema.Schema
) -> tuple[avro.schema.RecordSchema, avro.schema.RecordSchema] | None:
    """The two records to compare field by field, when both types are (collections of) one record type."""
    if isinstance(reader, avro.schema.ArraySchema) and isinstance(writer, avro.schema.ArraySchema):
        return _same_record(reader.items, writer.items)
    if isinstance(reader, avro.schema.MapSchema) and isinstance(writer, avro.schema.MapSchema):
        return _same_record(reader.values, writer.values)
    if (
        isinstance(reader, avro.schema.RecordSchema)
        and isinstance(writer, avro.schema.RecordSchema)
        and reader.fullname == writer.fullname
    ):
        return reader, writer
    return None


def _nesting(schema: avro.schema.Schema) -> str:
    if isinstance(schema, avro.schema.ArraySchema):
        return "[]" + _nesting(schema.items)
    if isinstance(schema, avro.schema.MapSchema):
        return "{}" + _nesting(schema.values)
    return ""


def _incompatibilities(reader: avro.schema.Schema, writer: avro.schema.Schema) -> list[str]:
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return sorted(result.messages)


def type_name(schema: avro.schema.Schema) -> str:
    """A short name for an Avro type: `string`, `long (timestamp-millis)`, `array of oms.common.Money`."""
    if isinstance(schema, avro.schema.NamedSchema):
        return schema.fullname
    if isinstance(schema, avro.schema.ArraySchema):
        return f"array of {type_name(schema.items)}"
    if isinstance(schema, avro.schema.MapSchema):
        return f"map of {type_name(schema.values)}"
    if isinstance(schema, avro.schema.UnionSchema):
        return " or ".join(type_name(branch) for branch in schema.schemas)
    logical = schema.get_prop("logicalType")
    return f"{schema.type} ({logical})" if logical else str(schema.type)
