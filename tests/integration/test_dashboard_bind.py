"""`oms dashboard` serves on `OMS_DASHBOARD_HOST`, and answers to that address only (and to loopback's names)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from ops.dashboard.server import serve
from topology.settings import Settings

ANOTHER_LOOPBACK = "127.0.0.2"  # an address of this machine that is not 127.0.0.1


def test_the_dashboard_binds_the_address_its_setting_names(settings: Settings) -> None:
    server = serve(settings.model_copy(update={"dashboard_host": ANOTHER_LOOPBACK}), 0)
    try:
        port = server.server_address[1]

        assert server.server_address[0] == ANOTHER_LOOPBACK
        assert server.url == f"http://{ANOTHER_LOOPBACK}:{port}/"
        with urllib.request.urlopen(f"http://{ANOTHER_LOOPBACK}:{port}/api/fleet", timeout=10) as answer:
            assert answer.status == 200
        rebound = urllib.request.Request(f"http://{ANOTHER_LOOPBACK}:{port}/api/fleet", headers={"Host": f"oms:{port}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=10)
        assert refused.value.code == 403
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, "not on 127.0.0.1 as well"
    finally:
        server.shutdown()
