"""The local registry is called ready only once it has read its store back, as its readiness check says."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from ops.registry import HOST, _storage_loaded, management_port, plaintext_options
from topology.settings import Settings


class Health(http.server.BaseHTTPRequestHandler):
    status: ClassVar[str] = "DOWN"

    def do_GET(self) -> None:
        body = json.dumps({"status": Health.status, "checks": []}).encode()
        self.send_response(200 if Health.status == "UP" else 503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def management() -> Iterator[int]:
    """A management interface whose readiness the test sets; the API port it belongs to."""
    server = http.server.ThreadingHTTPServer((HOST, 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1] - 1
    finally:
        server.shutdown()


def test_a_registry_still_loading_its_store_is_not_ready(management: int) -> None:
    Health.status = "DOWN"
    assert not _storage_loaded(management)

    Health.status = "UP"
    assert _storage_loaded(management)


def test_a_registry_without_a_management_interface_is_not_ready() -> None:
    assert not _storage_loaded(1)


def test_the_management_interface_binds_loopback_on_the_port_after_the_api() -> None:
    options = plaintext_options(Settings(local_registry_port=18081))

    assert options["quarkus.management.host"] == HOST == "127.0.0.1"
    assert options["quarkus.management.port"] == str(management_port(18081)) == "18082"
