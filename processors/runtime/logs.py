"""How processes log: text for people at a terminal, or one JSON object a line (`OMS_LOG_FORMAT=json`) for a
log pipeline, with the order, event and trace of the message being handled on every line logged while it is."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
from contextlib import AbstractContextManager

from processors.runtime.tracing import current_trace_id

TEXT_FORMAT = "[%(asctime)s] [%(levelname)s] [%(name)s] : %(message)s"

_message: contextvars.ContextVar[dict[str, str | None] | None] = contextvars.ContextVar("oms_message", default=None)


class about_message(AbstractContextManager[None]):  # used as a function: `with about_message(...)`
    """Log lines within carry these fields (e.g. `order_id`, `event_id`) in the JSON format; None ones are left out.

    A class rather than a generator: entered once per message, where every microsecond is paid again."""

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: str | None) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        self._token = _message.set(self._fields)

    def __exit__(self, *exc_info: object) -> None:
        _message.reset(self._token)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the message's fields, the trace id, the error."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in (_message.get() or {}).items():
            if value is not None:
                line[name] = value
        trace_id = current_trace_id()
        if trace_id is not None:
            line["trace_id"] = trace_id
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str, log_format: str, service: str) -> None:
    """The root logger's one handler, on stderr, in `log_format` (`text` or `json`)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service) if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
