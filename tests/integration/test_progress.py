"""Long commands draw a progress bar on a terminal's stderr, and nothing but their summary elsewhere."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

from confluent_kafka import Producer

from topology.settings import Settings

RECORDS = 300


def replay(topic: str, stderr_on_terminal: bool) -> tuple[str, str]:
    """`oms replay topic` of the topic's records, its stdout piped; (stdout, stderr as the terminal got it)."""
    command = [sys.executable, "-m", "ops.cli", "replay", "topic", topic, "--partition", "0", "--from-offset", "0"]
    command += ["--to-offset", str(RECORDS)]
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    if not stderr_on_terminal:
        done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120, check=True)
        return done.stdout, done.stderr
    screen, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=terminal, env=environment)
    os.close(terminal)
    drawn = b""
    while True:
        try:
            chunk = os.read(screen, 4096)
        except OSError:  # the terminal's other end closed: the command is done
            break
        if not chunk:
            break
        drawn += chunk
    os.close(screen)
    assert process.stdout is not None
    stdout = process.stdout.read().decode()
    assert process.wait(timeout=120) == 0, drawn.decode(errors="replace")
    return stdout, drawn.decode(errors="replace")


def test_replay_draws_a_bar_on_a_terminal_and_nothing_on_a_pipe(settings: Settings, topic: str) -> None:
    producer = Producer(settings.kafka_config())
    for index in range(RECORDS):
        producer.produce(topic, key=f"k-{index}".encode(), value=b"v")
    assert producer.flush(30) == 0
    summary = f"re-produced {RECORDS} records of {topic}[0] from offset 0\n"

    stdout, drawn = replay(topic, stderr_on_terminal=True)
    assert stdout == summary
    assert f"replaying {topic}[0]" in drawn and f"{RECORDS}/{RECORDS}" in drawn
    assert "\x1b[" in drawn

    stdout, stderr = replay(topic, stderr_on_terminal=False)
    assert stdout == summary
    assert stderr == ""
