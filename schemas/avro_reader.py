"""Avro readers compiled from a schema: Python code made once per record type, reading what fastavro's
`schemaless_reader` reads, about three times faster, as the fields pydantic validates into a model.

The counterpart of `schemas/avro_writer.py`, for a record written with the local schema (the usual case; a
writer schema that needs resolving is read by fastavro). It covers what the contract uses (records, enums,
arrays, maps, unions of a type and null, strings, booleans, ints and longs, the `uuid` and
`timestamp-millis` logical types); a `uuid` is left a string and an enum its symbol, for pydantic to turn
into the model's types. `tests/unit/test_avro_reader.py` checks that every record the processors emit reads
back equal to fastavro's reading, and that bytes fastavro cannot read are refused too.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from schemas.avro_writer import UnsupportedSchema

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
# Logical types read as their plain type: a `uuid` is left a string, for pydantic to make it a UUID.
_PLAIN_LOGICAL_TYPES: Mapping[str, tuple[str | None, ...]] = {
    "string": (None, "uuid"),
    "int": (None,),
    "long": (None,),
    "boolean": (None,),
}

Reader = Callable[[bytes, int], dict[str, Any]]
"""Reads a record's fields from the bytes, starting at the position given."""


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """Base-128 varint, then zig-zag: Avro's `int` and `long`."""
    byte = data[pos]
    pos += 1
    value = byte & 0x7F
    shift = 7
    while byte & 0x80:
        if shift > 63:
            raise ValueError("a varint longer than a long")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
    return (value >> 1) ^ -(value & 1), pos


def _string(data: bytes, pos: int) -> tuple[str, int]:
    size, pos = _long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise EOFError(f"a string of {size} bytes where {len(data) - pos} are left")
    return data[pos:end].decode(), end


def _boolean(data: bytes, pos: int) -> tuple[bool, int]:
    byte = data[pos]
    if byte > 1:
        raise ValueError(f"{byte} is not an Avro boolean")
    return byte == 1, pos + 1


def _millis(data: bytes, pos: int) -> tuple[datetime.datetime, int]:
    millis, pos = _long(data, pos)
    return EPOCH + datetime.timedelta(milliseconds=millis), pos


def _count(data: bytes, pos: int) -> tuple[int, int]:
    """The item count of an array or map block; a negative count is followed by the block's size in bytes."""
    count, pos = _long(data, pos)
    if count < 0:
        count = -count
        _, pos = _long(data, pos)
    if count > len(data) - pos:  # every item takes a byte at least
        raise EOFError(f"{count} items where {len(data) - pos} bytes are left")
    return count, pos


def _symbol(symbols: tuple[str, ...], data: bytes, pos: int) -> tuple[str, int]:
    index, pos = _long(data, pos)
    if not 0 <= index < len(symbols):
        raise IndexError(f"enum index {index} of {len(symbols)} symbols")
    return symbols[index], pos


class _Compiler:
    def __init__(self, named: Mapping[str, Any]) -> None:
        self._named = named
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self._names = 0

    def fresh(self, stem: str) -> str:
        self._names += 1
        return f"{stem}{self._names}"

    def emit(self, schema: Any, target: str, indent: int) -> None:
        """Lines that read a value of `schema` at `pos` into the variable `target`, advancing `pos`."""
        pad = "    " * indent
        if isinstance(schema, str):
            if schema in self._named:
                self.emit(self._named[schema], target, indent)
            elif schema in ("string", "boolean"):
                self.lines.append(f"{pad}{target}, pos = _{schema}(data, pos)")
            elif schema in ("int", "long"):
                self.lines.append(f"{pad}{target}, pos = _long(data, pos)")
            elif schema == "null":
                self.lines.append(f"{pad}{target} = None")
            else:
                raise UnsupportedSchema(f"type {schema!r}")
            return
        if isinstance(schema, list):
            self._union(schema, target, indent)
            return
        kind, logical = schema["type"], schema.get("logicalType")
        if kind == "record":
            fields = []
            for field in schema["fields"]:
                item = self.fresh("v")
                self.emit(field["type"], item, indent)
                fields.append(f"{field['name']!r}: {item}")
            self.lines.append(f"{pad}{target} = {{{', '.join(fields)}}}")
        elif kind == "enum":
            symbols = self.fresh("symbols")
            self.constants[symbols] = tuple(schema["symbols"])
            self.lines.append(f"{pad}{target}, pos = _symbol({symbols}, data, pos)")
        elif kind in ("array", "map"):
            self._collection(schema, target, indent)
        elif kind == "long" and logical == "timestamp-millis":
            self.lines.append(f"{pad}{target}, pos = _millis(data, pos)")
        elif kind in ("string", "int", "long", "boolean") and logical in _PLAIN_LOGICAL_TYPES[kind]:
            self.emit(kind, target, indent)
        else:
            raise UnsupportedSchema(f"type {kind!r} with logical type {logical!r}")

    def _union(self, branches: list[Any], target: str, indent: int) -> None:
        pad = "    " * indent
        if len(branches) != 2 or "null" not in branches:
            raise UnsupportedSchema(f"union {branches!r}: only a type and null")
        null_index = branches.index("null")
        branch = self.fresh("branch")
        self.lines.append(f"{pad}{branch}, pos = _long(data, pos)")
        self.lines.append(f"{pad}if {branch} == {null_index}:")
        self.lines.append(f"{pad}    {target} = None")
        self.lines.append(f"{pad}elif {branch} == {1 - null_index}:")
        self.emit(branches[1 - null_index], target, indent + 1)
        self.lines.append(f"{pad}else:")
        self.lines.append(f"{pad}    raise IndexError(f'union branch {{{branch}}} of 2')")

    def _collection(self, schema: Mapping[str, Any], target: str, indent: int) -> None:
        pad = "    " * indent
        count, item = self.fresh("count"), self.fresh("item")
        array = schema["type"] == "array"
        self.lines.append(f"{pad}{target} = {'[]' if array else '{}'}")
        self.lines.append(f"{pad}{count}, pos = _count(data, pos)")
        self.lines.append(f"{pad}while {count}:")
        self.lines.append(f"{pad}    for _ in range({count}):")
        if array:
            self.emit(schema["items"], item, indent + 2)
            self.lines.append(f"{pad}        {target}.append({item})")
        else:
            key = self.fresh("key")
            self.lines.append(f"{pad}        {key}, pos = _string(data, pos)")
            self.emit(schema["values"], item, indent + 2)
            self.lines.append(f"{pad}        {target}[{key}] = {item}")
        self.lines.append(f"{pad}    {count}, pos = _count(data, pos)")


def compile_reader(parsed_schema: Mapping[str, Any]) -> Reader:
    """A function reading a record written with `parsed_schema` (as `fastavro.parse_schema` gives it) from
    bytes, from a position on (after the Confluent frame): its fields, as pydantic validates them."""
    compiler = _Compiler(parsed_schema.get("__named_schemas", {}))
    compiler.emit(dict(parsed_schema), "fields", 1)
    source = "\n".join(["def read(data, pos):", *compiler.lines, "    return fields"])
    namespace: dict[str, Any] = {
        "_long": _long,
        "_string": _string,
        "_boolean": _boolean,
        "_millis": _millis,
        "_count": _count,
        "_symbol": _symbol,
        **compiler.constants,
    }
    exec(compile(source, f"<avro reader of {parsed_schema.get('name', '?')}>", "exec"), namespace)
    reader: Reader = namespace["read"]
    return reader
