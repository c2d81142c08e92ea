"""How processes log: text for people at a terminal, or one JSON object a line (`OMS_LOG_FORMAT=json`) for a
log pipeline, with the order, event and trace of the message being handled on every line logged while it is."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from processors.runtime.tracing import current_trace_id

TEXT_FORMAT = "[%(asctime)s] [%(levelname)s] [%(name)s] : %(message)s"

_message: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("oms_message", default=None)


@contextmanager
def about_message(**fields: str | None) -> Iterator[None]:
    """Log lines within carry these fields (e.g. `order_id`, `event_id`) in the JSON format."""
    token = _message.set({name: value for name, value in fields.items() if value is not None})
    try:
        yield
    finally:
        _message.reset(token)


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
            **(_message.get() or {}),
        }
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
