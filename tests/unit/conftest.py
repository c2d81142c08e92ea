"""Fixtures of the broker-free tests: tracing as a process has it without the OTEL_* variables, or exporting
to memory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from processors.runtime.tracing import configure_tracing


def without_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test sees none of the OTEL_* variables of the shell that runs it."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def untraced(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No exporter: spans are only their ids."""
    without_otel_variables(monkeypatch)
    configure_tracing("test", "0")
    yield
    configure_tracing("test", "0")


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The SDK's spans of a process named `oms.intake`, each exported to memory as it ends."""
    without_otel_variables(monkeypatch)
    exported = InMemorySpanExporter()
    configure_tracing("intake", "0").add_span_processor(SimpleSpanProcessor(exported))
    yield exported
    without_otel_variables(monkeypatch)
    configure_tracing("test", "0")
