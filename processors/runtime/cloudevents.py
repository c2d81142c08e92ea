"""CloudEvents binary-mode headers, so that any consumer can dispatch, count and deduplicate unread bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from processors.runtime.records import Headers
from schemas.models import AvroRecord

SPEC_VERSION = b"1.0"
CONTENT_TYPE = b"application/avro"


def type_of(avro_name: str) -> str:
    """`oms.OrderCreated` for `oms.orders.OrderCreated`."""
    return f"oms.{avro_name.rsplit('.', 1)[-1]}"


def event_type(record: AvroRecord) -> str:
    return type_of(record.AVRO_NAME)


def cloudevent_headers(avro_name: str, fields: Mapping[str, Any], source: str) -> Headers:
    """The headers of a record of type `avro_name` whose fields (`model_dump()`) are `fields`."""
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", str(fields["event_id"]).encode()),
        ("ce_type", type_of(avro_name).encode()),
        ("ce_source", source.encode()),
        ("ce_time", fields["occurred_at"].isoformat().encode()),
        ("content-type", CONTENT_TYPE),
    ]
    if "order_id" in fields:
        headers.append(("ce_subject", str(fields["order_id"]).encode()))
    return tuple(headers)


def header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    """The last value of header `name`, decoded, or None."""
    for key, value in reversed(headers or ()):
        if key == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return None
