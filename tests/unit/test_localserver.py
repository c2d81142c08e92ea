"""The pid-file discipline of `oms up`/`oms down`, with a small Python HTTP server standing in for a JVM."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.localserver import LocalServer, PlatformError, port_is_open


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_server(run_dir: Path, port: int, command: list[str] | None = None) -> LocalServer:
    return LocalServer(
        name="web",
        host="127.0.0.1",
        port=port,
        run_dir=run_dir,
        cmdline_marker="http.server",
        build_command=lambda: command or [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        is_ready=lambda: port_is_open("127.0.0.1", port),
        start_timeout_s=20,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    server = http_server(tmp_path, free_port())
    yield server
    server.stop()


def test_start_twice_keeps_the_first_process(server: LocalServer) -> None:
    first = server.start()
    pid = server.running_pid()
    second = server.start()

    assert "started" in first and pid is not None
    assert second == f"web already running (pid {pid}) on {server.address}"
    assert server.status().answering


def test_stop_ends_the_process_and_removes_the_pid_file(server: LocalServer) -> None:
    server.start()

    message = server.stop()

    assert message.startswith("web stopped")
    assert not server.pid_file.exists()
    assert not port_is_open("127.0.0.1", server.port)
    assert server.stop() == "web is not running"


def test_stale_pid_file_is_removed_and_said(server: LocalServer) -> None:
    server.run_dir.mkdir(parents=True, exist_ok=True)
    server.pid_file.write_text("999999\n")
    assert server.status().note == f"stale pid file {server.pid_file}"

    message = server.start()

    assert "removed a stale pid file" in message
    assert server.running_pid() is not None


def test_port_taken_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = http_server(tmp_path, squatter.getsockname()[1])

        with pytest.raises(PlatformError, match="is taken by another process"):
            server.start()
        assert server.status().note.endswith("is taken by a process that is not ours")


def test_a_server_that_dies_while_starting_shows_its_log(tmp_path: Path) -> None:
    crash = [sys.executable, "-c", "import sys; print('http.server cannot bind: bad config'); sys.exit(3)"]
    server = http_server(tmp_path, free_port(), command=crash)

    with pytest.raises(PlatformError, match="exited while starting") as failure:
        server.start()

    assert "bad config" in str(failure.value)
    assert not server.pid_file.exists()
