"""CloudEvents binary-mode headers, so that any consumer can dispatch, count and deduplicate unread bodies."""

from __future__ import annotations

from processors.runtime.records import Headers
from schemas.models import AvroRecord

SPEC_VERSION = b"1.0"
CONTENT_TYPE = b"application/avro"


def event_type(record: AvroRecord) -> str:
    """`oms.OrderCreated` for `oms.orders.OrderCreated`."""
    return f"oms.{record.AVRO_NAME.rsplit('.', 1)[-1]}"


def cloudevent_headers(record: AvroRecord, source: str) -> Headers:
    fields = record.model_dump()
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", str(fields["event_id"]).encode()),
        ("ce_type", event_type(record).encode()),
        ("ce_source", source.encode()),
        ("ce_time", fields["occurred_at"].isoformat().encode()),
        ("content-type", CONTENT_TYPE),
    ]
    if "order_id" in fields:
        headers.append(("ce_subject", str(fields["order_id"]).encode()))
    return tuple(headers)


def header(headers: Headers | list[tuple[str, bytes]] | None, name: str) -> str | None:
    """The last value of header `name`, decoded, or None."""
    for key, value in reversed(headers or ()):
        if key == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return None
